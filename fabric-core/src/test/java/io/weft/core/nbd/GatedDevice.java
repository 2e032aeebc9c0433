package io.weft.core.nbd;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.ForwardingBlockDevice;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * Test device that holds every request until {@link #open()}; then it performs the held ones (and all later ones)
 * on a thread of its own, so completions always arrive off the server's reader thread.
 */
final class GatedDevice extends ForwardingBlockDevice {
    private final List<Runnable> held = new ArrayList<>();
    private boolean open;
    private int submitted;

    GatedDevice(BlockDevice delegate) {
        super(delegate);
    }

    @Override
    public void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                       IoCompletion completion) {
        Runnable work = () -> delegate.submit(op, offset, length, flags, buffer, tag, completion);
        synchronized (this) {
            submitted++;
            if (!open) {
                held.add(work);
                return;
            }
        }
        startThread(List.of(work));
    }

    synchronized int submittedCount() {
        return submitted;
    }

    void open() {
        List<Runnable> now;
        synchronized (this) {
            open = true;
            now = new ArrayList<>(held);
            held.clear();
        }
        startThread(now);
    }

    private static void startThread(List<Runnable> work) {
        Thread t = new Thread(() -> work.forEach(Runnable::run), "gated-device-completer");
        t.setDaemon(true);
        t.start();
    }

    /** Leaves the delegate open, as before: the test that made it closes it. */
    @Override
    public void close() {
    }
}
