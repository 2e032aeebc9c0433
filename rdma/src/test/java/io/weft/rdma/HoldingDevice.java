package io.weft.rdma;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.DeviceInfo;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * Test device: does every request at once (so data lands when it arrives) but, while holding, keeps the
 * completions back until {@link #release()} — requests stay "in flight" for as long as a test needs, and their
 * answers come from another thread, like a slow asynchronous store.
 */
final class HoldingDevice implements BlockDevice {
    private final BlockDevice delegate;
    private final List<Runnable> held = new ArrayList<>();
    private volatile boolean holding;

    HoldingDevice(BlockDevice delegate) {
        this.delegate = delegate;
    }

    synchronized void hold() {
        holding = true;
    }

    /** Completions kept back right now. */
    synchronized int heldCount() {
        return held.size();
    }

    /** @return how many completions were released */
    int release() {
        List<Runnable> out;
        synchronized (this) {
            holding = false;
            out = new ArrayList<>(held);
            held.clear();
        }
        out.forEach(Runnable::run);
        return out.size();
    }

    @Override
    public DeviceInfo info() {
        return delegate.info();
    }

    @Override
    public void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                       IoCompletion completion) {
        if (!holding) {
            delegate.submit(op, offset, length, flags, buffer, tag, completion); // benchmark path: no wrapper
            return;
        }
        delegate.submit(op, offset, length, flags, buffer, tag, (t, status) -> {
            synchronized (this) {
                if (holding) {
                    held.add(() -> completion.onComplete(t, status));
                    return;
                }
            }
            completion.onComplete(t, status);
        });
    }

    @Override
    public void close() {
        delegate.close();
    }
}
