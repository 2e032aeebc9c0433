package io.weft.core.nbd;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.DeviceInfo;
import io.weft.core.io.ForwardingBlockDevice;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoFlags;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import java.nio.ByteBuffer;
import java.util.BitSet;

/**
 * Test device over a store device that supports DISCARD by zeroing the range and remembering it, at 4 KiB
 * granularity, as a hole that reads as zeros; {@link #describeExtents} reports those blocks as HOLE|ZERO and every
 * other block as data. It stands in for a hole-punching store so base:allocation can be checked end to end.
 */
final class HoleReportingDevice extends ForwardingBlockDevice {
    static final int GRANULE = 4096;
    private final BitSet holes = new BitSet();

    HoleReportingDevice(BlockDevice delegate) {
        super(delegate);
    }

    @Override
    public DeviceInfo info() {
        DeviceInfo d = delegate.info();
        return new DeviceInfo(d.size(), d.logicalBlockSize(), d.preferredBlockSize(), d.maxIoSize(), d.readOnly(),
                d.canFlush(), d.canFua(), true, d.canWriteZeroes(), d.canFastZero(), d.rotational(),
                d.flushCoversAllConnections());
    }

    @Override
    public void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                       IoCompletion completion) {
        if (op == IoOp.DISCARD) {
            delegate.submit(IoOp.WRITE_ZEROES, offset, length, flags & IoFlags.FUA, null, tag, (t, status) -> {
                if (status == IoStatus.OK) {
                    mark(offset, length, true);
                }
                completion.onComplete(t, status);
            });
            return;
        }
        if (op == IoOp.WRITE || op == IoOp.WRITE_ZEROES) {
            mark(offset, length, false);
        }
        delegate.submit(op, offset, length, flags, buffer, tag, completion);
    }

    private synchronized void mark(long offset, long length, boolean hole) {
        if (hole) {
            // Only whole granules inside the range become holes.
            long first = (offset + GRANULE - 1) / GRANULE;
            long end = (offset + length) / GRANULE;
            if (end > first) {
                holes.set((int) first, (int) end);
            }
        } else {
            long first = offset / GRANULE;
            long end = (offset + length + GRANULE - 1) / GRANULE;
            holes.clear((int) first, (int) end);
        }
    }

    @Override
    public synchronized long describeExtents(long offset, long length, ExtentConsumer consumer) {
        long pos = offset;
        long end = offset + length;
        while (pos < end) {
            boolean hole = holes.get((int) (pos / GRANULE));
            long next = pos / GRANULE + 1;
            while (next * GRANULE < end && holes.get((int) next) == hole) {
                next++;
            }
            long stop = Math.min(end, next * GRANULE);
            if (!consumer.accept(stop - pos, hole ? EXTENT_HOLE | EXTENT_ZERO : 0)) {
                return stop - offset;
            }
            pos = stop;
        }
        return length;
    }

    /** Leaves the delegate open, as before: the test that made it closes it. */
    @Override
    public void close() {
    }
}
