package io.weft.testkit;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.ForwardingBlockDevice;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * Does every request at once (so data lands when it arrives) but, while holding ({@link #hold}), keeps the
 * completions back until {@link #release()}: requests stay "in flight" for as long as a test needs, and their answers
 * come from another thread, like a slow asynchronous store. Not holding, requests pass straight through (no wrapper
 * completion, so a benchmark through it measures the delegate). Compare {@link ManuallyCompletedBlockDevice}, which
 * never does the request at all.
 */
public final class CompletionHoldingBlockDevice extends ForwardingBlockDevice {
    private final List<Runnable> held = new ArrayList<>();
    private volatile boolean holding;

    public CompletionHoldingBlockDevice(BlockDevice delegate) {
        super(delegate);
    }

    /** From now on, completions are kept back until {@link #release()}. */
    public synchronized void hold() {
        holding = true;
    }

    /** Completions kept back right now. */
    public synchronized int heldCount() {
        return held.size();
    }

    /**
     * Stops holding and runs every kept-back completion (on the calling thread).
     *
     * @return how many completions were released
     */
    public int release() {
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
    public void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                       IoCompletion completion) {
        if (!holding) {
            delegate.submit(op, offset, length, flags, buffer, tag, completion);
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
}
