package io.weft.cxl;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.DeviceInfo;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

/** A device that accepts requests and completes them only when the test says so (models a stuck store). */
final class HoldingDevice implements BlockDevice {
    private final DeviceInfo info;
    private final List<long[]> held = new ArrayList<>();
    private final List<IoCompletion> completions = new ArrayList<>();
    private final List<ByteBuffer> buffers = new ArrayList<>();
    final AtomicInteger submitted = new AtomicInteger();

    HoldingDevice(DeviceInfo info) {
        this.info = info;
    }

    @Override
    public DeviceInfo info() {
        return info;
    }

    @Override
    public synchronized void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                                    IoCompletion completion) {
        submitted.incrementAndGet();
        held.add(new long[] {tag, length});
        completions.add(completion);
        buffers.add(buffer);
    }

    synchronized int held() {
        return held.size();
    }

    synchronized void releaseAll(int status) {
        for (int i = 0; i < held.size(); i++) {
            completions.get(i).onComplete(held.get(i)[0], status);
        }
        held.clear();
        completions.clear();
        buffers.clear();
    }

    /** Completes every held request OK after filling each READ/WRITE payload (the shared data slot) with {@code fill}. */
    synchronized void releaseAllFilled(byte fill) {
        for (int i = 0; i < held.size(); i++) {
            ByteBuffer b = buffers.get(i);
            if (b != null) {
                for (int j = 0; j < (int) held.get(i)[1]; j++) {
                    b.put(b.position() + j, fill);
                }
            }
        }
        releaseAll(io.weft.core.io.IoStatus.OK);
    }

    @Override
    public void close() {
    }
}
