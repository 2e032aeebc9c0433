package io.weft.core.nbd;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.DeviceInfo;
import io.weft.core.io.ForwardingBlockDevice;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoRequests;
import io.weft.core.io.IoStatus;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * Test device that presents another block size and maximum IO size than its delegate and enforces them as a strict
 * store would (a misaligned or oversized request fails with EINVAL and never reaches the delegate). It also records
 * every request it passed on, so a test can see how the server cut a request.
 */
final class GeometryDevice extends ForwardingBlockDevice {
    record Seen(IoOp op, long offset, int length) {
    }

    private final int blockSize;
    private final int maxIoSize;
    private final List<Seen> seen = new ArrayList<>();

    GeometryDevice(BlockDevice delegate, int blockSize, int maxIoSize) {
        super(delegate);
        this.blockSize = blockSize;
        this.maxIoSize = maxIoSize;
    }

    @Override
    public DeviceInfo info() {
        DeviceInfo d = delegate.info();
        return new DeviceInfo(d.size() - d.size() % blockSize, blockSize, Math.max(blockSize, 4096), maxIoSize,
                d.readOnly(), d.canFlush(), d.canFua(), d.canDiscard(), d.canWriteZeroes(), d.canFastZero(),
                d.rotational(), d.flushCoversAllConnections());
    }

    @Override
    public void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                       IoCompletion completion) {
        int status = IoRequests.check(info(), op, offset, length, flags);
        if (status != IoStatus.OK) {
            completion.onComplete(tag, status == IoStatus.EOVERFLOW ? IoStatus.EINVAL : status);
            return;
        }
        synchronized (seen) {
            seen.add(new Seen(op, offset, length));
        }
        delegate.submit(op, offset, length, flags, buffer, tag, completion);
    }

    List<Seen> seen(IoOp op) {
        synchronized (seen) {
            return seen.stream().filter(s -> s.op() == op).toList();
        }
    }

    void clearSeen() {
        synchronized (seen) {
            seen.clear();
        }
    }

    /** Leaves the delegate open, as before: the test that made it closes it. */
    @Override
    public void close() {
    }
}
