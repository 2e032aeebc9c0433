package io.weft.rdma.protocol;

import io.weft.rdma.verbs.Access;
import io.weft.rdma.verbs.ConnectionOptions;
import io.weft.rdma.verbs.MemoryRegion;
import io.weft.rdma.verbs.ProtectionDomain;
import io.weft.rdma.verbs.VerbsConnection;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * The buffers of one admin connection: a few receive slots and a few send slots of {@link ControlMessage#MAX_LENGTH}
 * bytes in one region registered for local access only (peers never write into it). Control path; used only by the
 * thread polling the connection's completion queue.
 */
public final class AdminChannel {
    /** Enough for every answer a peer may have outstanding (device ops, notices, heartbeat, fences). */
    public static final int RECEIVE_SLOTS = 16;
    public static final int SEND_SLOTS = 8;
    public static final ConnectionOptions OPTIONS =
            new ConnectionOptions(ControlMessage.MAX_LENGTH, SEND_SLOTS * 2, RECEIVE_SLOTS);

    private final ByteBuffer memory;
    private final MemoryRegion region;
    private final ControlMessage sending = new ControlMessage();
    private final ControlMessage receiving = new ControlMessage();
    private final Object owner;
    private VerbsConnection connection;
    private int sendSlot;
    private int nextSend;

    public AdminChannel(ProtectionDomain pd, Object owner) throws IOException {
        this.memory = ByteBuffer.allocateDirect((RECEIVE_SLOTS + SEND_SLOTS) * ControlMessage.MAX_LENGTH);
        this.region = pd.register(memory, Access.LOCAL_WRITE);
        this.owner = owner;
    }

    /** Connection setup: remember the connection and post every receive slot. */
    public void prepare(VerbsConnection c) {
        this.connection = c;
        c.attach(this);
        for (int i = 0; i < RECEIVE_SLOTS; i++) {
            c.postReceive(region, i * ControlMessage.MAX_LENGTH, ControlMessage.MAX_LENGTH, i);
        }
    }

    public Object owner() {
        return owner;
    }

    public VerbsConnection connection() {
        return connection;
    }

    /** The next send slot, wrapped for encoding; finish with {@link #send(int)}. */
    public ControlMessage beginSend() {
        sendSlot = RECEIVE_SLOTS + (nextSend++ % SEND_SLOTS);
        return sending.wrap(memory, sendSlot * ControlMessage.MAX_LENGTH);
    }

    public boolean send(int length) {
        return connection != null
                && connection.postSend(region, sendSlot * ControlMessage.MAX_LENGTH, length);
    }

    /**
     * Wraps a received message after checking the slot id and that the length covers the type's fixed part.
     *
     * @return the message, or null when it is malformed (the caller closes the connection)
     */
    public ControlMessage received(long wrId, int length) {
        if (wrId < 0 || wrId >= RECEIVE_SLOTS || length < 4 || length > ControlMessage.MAX_LENGTH) {
            return null;
        }
        ControlMessage m = receiving.wrap(memory, (int) wrId * ControlMessage.MAX_LENGTH);
        int min = ControlMessage.minimumLength(m.type());
        if (min < 0 || length < min || m.version() != ControlMessage.VERSION) {
            return null;
        }
        return m;
    }

    public void repost(long wrId) {
        if (connection != null && wrId >= 0 && wrId < RECEIVE_SLOTS) {
            connection.postReceive(region, (int) wrId * ControlMessage.MAX_LENGTH, ControlMessage.MAX_LENGTH, wrId);
        }
    }

    public void close() {
        if (connection != null) {
            connection.close();
        }
        region.close();
    }
}
