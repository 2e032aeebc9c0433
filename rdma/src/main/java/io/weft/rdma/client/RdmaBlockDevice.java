package io.weft.rdma.client;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.DeviceInfo;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import java.nio.ByteBuffer;

/**
 * A remote device reached through an {@link RdmaSession}: asynchronous, no allocation per request. A WRITE's payload
 * is copied into the request's chunk on the submitting thread; a READ's data is copied into the caller's buffer on
 * the queue agent just before the completion runs there. Submitting more requests than the session's queue depth
 * makes {@code submit} wait for a free permit (up to the IO timeout), except on the session's own queue agent (a
 * completion callback submitting again), where a full queue completes the request with {@code ENOMEM} rather than
 * deadlock. {@link #cancel} completes a request early without ever touching its buffer afterwards.
 */
public final class RdmaBlockDevice implements BlockDevice {
    private final RdmaSession session;

    RdmaBlockDevice(RdmaSession session) {
        this.session = session;
    }

    public RdmaSession session() {
        return session;
    }

    @Override
    public DeviceInfo info() {
        return session.info();
    }

    @Override
    public void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                       IoCompletion completion) {
        session.submit(op, offset, length, flags, buffer, tag, completion);
    }

    /**
     * Completes the request at once with ECANCELED unless it was answered first; a late answer is dropped (never copied
     * into the buffer) and the request's chunk stays reserved until nothing can land in it any more.
     */
    @Override
    public void cancel(long tag, IoCompletion completion) {
        session.cancel(tag, completion);
    }

    /** Closes the session (and with it every path). */
    @Override
    public void close() {
        session.close();
    }
}
