package io.weft.core.mirror;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.DeviceInfo;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * A test leg that records the operations it was given (in order) and can fail every FLUSH with a chosen status
 * (ENOSPC on one leg, say). Completes inline.
 */
public final class RecordingBlockDevice implements BlockDevice {
    private final BlockDevice inner;
    private final List<IoOp> ops = new ArrayList<>();
    private volatile int flushStatus = IoStatus.OK;

    public RecordingBlockDevice(BlockDevice inner) {
        this.inner = inner;
    }

    /** Every later FLUSH completes with {@code status} (OK = forwarded). */
    public void failFlushesWith(int status) {
        flushStatus = status;
    }

    /** The operations so far, oldest first. */
    public synchronized List<IoOp> ops() {
        return List.copyOf(ops);
    }

    public BlockDevice inner() {
        return inner;
    }

    @Override
    public DeviceInfo info() {
        return inner.info();
    }

    @Override
    public void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                       IoCompletion completion) {
        synchronized (this) {
            ops.add(op);
        }
        int st = flushStatus;
        if (op == IoOp.FLUSH && st != IoStatus.OK) {
            completion.onComplete(tag, st);
            return;
        }
        inner.submit(op, offset, length, flags, buffer, tag, completion);
    }

    @Override
    public void close() {
        inner.close();
    }

    @Override
    public String toString() {
        return "Recording[" + inner + "]";
    }
}
