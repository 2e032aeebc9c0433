package io.weft.rdma.server;

import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoRequests;
import io.weft.core.io.IoStatus;
import io.weft.rdma.protocol.Immediate;
import io.weft.rdma.protocol.RequestHeader;
import io.weft.rdma.verbs.VerbsConnection;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import org.agrona.collections.IntArrayQueue;
import org.agrona.concurrent.UnsafeBuffer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The storage side of one IO connection: turns each request immediate into one {@link io.weft.core.io.BlockDevice}
 * call on the chunk's buffer, against the session device its header names, and answers with one write-with-immediate.
 * A device id the session does not hold open is answered with ESHUTDOWN and touches no device. Owned by one
 * {@link ServerAgent}; every field read from the chunk is checked before use, and a request the device cannot take gets
 * an error status rather than touching anything.
 */
final class ServerIoConnection implements IoCompletion {
    private static final Logger LOG = LoggerFactory.getLogger(ServerIoConnection.class);

    final int id;
    final ServerSession session;
    final ServerAgent agent;
    final int pathId;
    /** The client's generation of this path's IO connections (ConnectData); a FENCE names it. */
    final int generation;
    final InetSocketAddress listener;
    private VerbsConnection connection;
    private final ByteBuffer[] chunkViews;
    private final IoOp[] ops;
    private final int[] lengths;
    private final long[] readAddresses;
    private final int[] readRkeys;
    private final int[] statuses;
    private final IntArrayQueue unsent;
    private final RequestHeader header = new RequestHeader();
    private final UnsafeBuffer poolView;
    /**
     * Set by the control thread when this connection's path was fenced, closed or superseded: requests still buffered
     * on it are stale (the client retries them on a newer connection) and must not reach the device after the newer
     * ones. The agent acts on it ({@link #stopped}); the control thread never touches the connection's state itself.
     */
    volatile boolean fenceRequested;
    /**
     * Agent-owned: nothing received on this connection from now on reaches the device (set when a fence is acted on
     * or the connection failed; never cleared).
     */
    boolean stopped;
    /** Agent-owned: requests handed to the device and not yet completed (their chunks are in use). */
    int executing;
    /** Agent-owned: the connection reported its error (it delivers nothing more). */
    boolean closed;
    /**
     * Set by the agent once {@link #stopped} and no request of this connection is executing any more: nothing that
     * arrived on it can touch the device or the session's chunks again. The control thread acknowledges a fence then.
     */
    volatile boolean drained;

    ServerIoConnection(int id, ServerSession session, ServerAgent agent, int pathId, int generation,
                       InetSocketAddress listener) {
        this.id = id;
        this.session = session;
        this.agent = agent;
        this.pathId = pathId;
        this.generation = generation;
        this.listener = listener;
        int n = session.chunkCount;
        chunkViews = new ByteBuffer[n];
        for (int i = 0; i < n; i++) {
            int start = i * session.chunkSize + RequestHeader.LENGTH;
            chunkViews[i] = session.pool.duplicate().limit(start + session.maxIoSize).position(start).slice();
        }
        ops = new IoOp[n];
        lengths = new int[n];
        readAddresses = new long[n];
        readRkeys = new int[n];
        statuses = new int[n];
        unsent = new IntArrayQueue(Math.max(IntArrayQueue.MIN_CAPACITY, n), -1);
        poolView = new UnsafeBuffer(session.pool);
    }

    /** Connection setup: one zero-length receive per chunk, since every request immediate consumes one. */
    void prepare(VerbsConnection c) {
        this.connection = c;
        c.attach(this);
        for (int i = 0; i < session.chunkCount + 1; i++) {
            c.postReceive(session.poolRegion, 0, 0, 0);
        }
    }

    VerbsConnection connection() {
        return connection;
    }

    /** Any thread: asks the owning agent to stop executing this connection's requests and to close it. */
    void requestFence() {
        fenceRequested = true;
        agent.ring();
    }

    /** Agent: acts on a fence request (stops, closes). @return work done */
    int stopIfFenced() {
        if (!fenceRequested || stopped) {
            return 0;
        }
        stopped = true;
        if (connection != null) {
            connection.close(); // the agent polls it no further: nothing more is placed in the chunks from it
        }
        return 1;
    }

    /** Agent: publishes that nothing of this connection can run any more. @return true once, when it becomes so */
    boolean markDrainedIfIdle() {
        if (stopped && executing == 0 && !drained) {
            drained = true;
            return true;
        }
        return false;
    }

    /** Agent: the connection failed or was closed; it is dropped once its executing requests have finished. */
    void onClosed() {
        closed = true;
        stopped = true;
    }

    /** A request immediate arrived: {@code byteLength} bytes were written at the start of the chunk it names. */
    void onRequest(int immediate, int byteLength) {
        if (fenceRequested) {
            stopIfFenced(); // a fence requested before this agent's next scan of its connections
        }
        if (stopped) {
            return; // fenced: stale, the client retries it elsewhere once the fence is acknowledged
        }
        connection.postReceive(session.poolRegion, 0, 0, 0);
        int chunk = Immediate.chunk(immediate);
        if (Immediate.type(immediate) != Immediate.TYPE_REQUEST || Immediate.status(immediate) != 0
                || chunk >= session.chunkCount) {
            fence("malformed request immediate 0x" + Integer.toHexString(immediate));
            return;
        }
        if (byteLength < RequestHeader.LENGTH) {
            fence("request of " + byteLength + " bytes is shorter than its header");
            return;
        }
        session.requests.incrementAndGet();
        header.wrap(poolView, chunk * session.chunkSize);
        IoOp op = IoOp.fromCode(header.op());
        int length = header.length();
        long offset = header.offset();
        int flags = header.flags();
        SessionDevice target = session.device(header.deviceId());
        ops[chunk] = op;
        lengths[chunk] = length;
        if (target == null) {
            // Not open in this session (never opened, closed, or no longer served): touch nothing, say so.
            session.rejected.incrementAndGet();
            ops[chunk] = null;
            respond(chunk, IoStatus.ESHUTDOWN);
            return;
        }
        int status = IoRequests.check(target.device().info(), op, offset, length, flags);
        if (status == IoStatus.OK && (op == IoOp.READ || op == IoOp.WRITE) && length > session.maxIoSize) {
            status = IoStatus.EOVERFLOW;
        }
        if (status == IoStatus.OK) {
            int expected = RequestHeader.LENGTH + (op == IoOp.WRITE ? length : 0);
            if (byteLength != expected) {
                status = IoStatus.EINVAL;
            } else if (op == IoOp.READ && header.readLength() < length) {
                status = IoStatus.EINVAL;
            }
        }
        if (status != IoStatus.OK) {
            session.rejected.incrementAndGet();
            ops[chunk] = null;
            respond(chunk, status);
            return;
        }
        ByteBuffer payload = null;
        if (op == IoOp.READ || op == IoOp.WRITE) {
            payload = chunkViews[chunk];
            payload.clear().limit(length);
        }
        if (op == IoOp.READ) {
            readAddresses[chunk] = header.readAddress();
            readRkeys[chunk] = header.readRkey();
        }
        executing++;
        target.device().submit(op, offset, length, flags, payload, chunk, this);
    }

    /** Device completion: any thread. Answers inline on the agent thread, else hands the answer to the agent. */
    @Override
    public void onComplete(long tag, int status) {
        int chunk = (int) tag;
        if (agent.onAgentThread()) {
            completed(chunk, status);
        } else {
            agent.completeLater(id, chunk, status);
        }
    }

    /** Agent: the device finished a request of this connection. A stopped connection's answers go nowhere. */
    void completed(int chunk, int status) {
        executing--;
        if (!stopped) {
            respond(chunk, status);
        }
    }

    private void respond(int chunk, int status) {
        statuses[chunk] = status;
        if (!unsent.isEmpty() || !postResponse(chunk, status)) {
            unsent.addInt(chunk);
        }
    }

    private boolean postResponse(int chunk, int status) {
        int immediate = Immediate.response(chunk, status);
        if (status == IoStatus.OK && ops[chunk] == IoOp.READ) {
            return connection.postWriteWithImmediate(session.poolRegion,
                    chunk * session.chunkSize + RequestHeader.LENGTH, lengths[chunk], readAddresses[chunk],
                    readRkeys[chunk], immediate);
        }
        return connection.postWriteWithImmediate(session.poolRegion, 0, 0, 0, 0, immediate);
    }

    /** Retries answers that found the send queue full. */
    int sendUnsent() {
        int sent = 0;
        while (!unsent.isEmpty()) {
            int chunk = unsent.peekInt();
            if (!postResponse(chunk, statuses[chunk])) {
                break;
            }
            unsent.pollInt();
            sent++;
        }
        return sent;
    }

    boolean hasUnsent() {
        return !unsent.isEmpty();
    }

    /** A violation the protocol cannot answer (no valid chunk to answer in): the connection is closed. */
    private void fence(String reason) {
        session.rejected.incrementAndGet();
        LOG.warn("closing IO connection {} of session '{}': {}", connection.remoteAddress(), session.name, reason);
        connection.close();
    }
}
