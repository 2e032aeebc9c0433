package io.weft.core.nbd;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.ForwardingBlockDevice;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

/**
 * Test device that holds requests until {@code batch} of them have arrived (or {@link #release()} is called), then
 * performs and completes them in reverse arrival order on its own thread. So the server sees asynchronous,
 * out-of-order completions; the delegate does the real IO.
 */
final class ReorderingDevice extends ForwardingBlockDevice {
    private record Pending(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                           IoCompletion completion) {
    }

    private final ExecutorService completer = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "reordering-device-completer");
        t.setDaemon(true);
        return t;
    });
    private final List<Pending> held = new ArrayList<>();
    private final List<Long> completedOffsets = new ArrayList<>();
    private volatile int batch;
    private int submitted;

    ReorderingDevice(BlockDevice delegate, int batch) {
        super(delegate);
        this.batch = batch;
    }

    void setBatch(int batch) {
        this.batch = batch;
    }

    @Override
    public void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                       IoCompletion completion) {
        synchronized (this) {
            submitted++;
            held.add(new Pending(op, offset, length, flags, buffer, tag, completion));
            if (held.size() < batch) {
                return;
            }
        }
        release();
    }

    synchronized int submittedCount() {
        return submitted;
    }

    /** Completes everything held, newest first. */
    void release() {
        List<Pending> batchNow;
        synchronized (this) {
            batchNow = new ArrayList<>(held);
            held.clear();
        }
        completer.execute(() -> {
            for (int i = batchNow.size() - 1; i >= 0; i--) {
                Pending p = batchNow.get(i);
                synchronized (completedOffsets) {
                    completedOffsets.add(p.offset());
                }
                delegate.submit(p.op(), p.offset(), p.length(), p.flags(), p.buffer(), p.tag(), p.completion());
            }
        });
    }

    List<Long> completedOffsets() {
        synchronized (completedOffsets) {
            return new ArrayList<>(completedOffsets);
        }
    }

    @Override
    public void close() {
        completer.shutdown();
        try {
            completer.awaitTermination(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
