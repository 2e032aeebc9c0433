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
 * deadlock.
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

    /** Closes the session (and with it every path). */
    @Override
    public void close() {
        session.close();
    }
}
