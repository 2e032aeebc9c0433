package io.weft.core.mirror;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.ForwardingBlockDevice;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import java.nio.ByteBuffer;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A test leg: forwards to a real device, or fails every request with EIO, or never completes (a frozen node), or
 * holds requests until {@link #releaseHeld()} (a slow node), and optionally completes on its own thread (as a
 * transport would). Counts the writes that reach the inner device. Like a transport, it answers
 * {@link #cancel} of a request it has not executed (hung, held, or still queued for its thread) with ECANCELED at
 * once, and never executes it afterwards: a frozen node's transport retires the slot locally.
 */
public final class FaultyBlockDevice extends ForwardingBlockDevice {
    public enum Mode { PASS, FAIL, HANG, HOLD }

    private final ExecutorService executor;
    private volatile Mode mode = Mode.PASS;
    private final AtomicLong session = new AtomicLong();
    public final AtomicLong writes = new AtomicLong();
    public final AtomicLong writtenBytes = new AtomicLong();
    public final AtomicLong reads = new AtomicLong();
    public final AtomicLong hung = new AtomicLong();
    public final AtomicLong flushes = new AtomicLong();
    public final AtomicLong fuaWrites = new AtomicLong();
    private final java.util.concurrent.ConcurrentLinkedQueue<Parked> held =
            new java.util.concurrent.ConcurrentLinkedQueue<>();
    /**
     * Requests accepted and not executed: still queued for the private thread, or never to be executed (HANG, a
     * discarded session: answered only by a cancel). One collection, which a request leaves only when it is claimed
     * (by its execution or a cancel): moving it between two let a cancel look in both while it was in neither, and a
     * request so missed was never answered (the mirror cancels a part once, then waits for its answer).
     */
    private final java.util.concurrent.ConcurrentLinkedQueue<Parked> unexecuted =
            new java.util.concurrent.ConcurrentLinkedQueue<>();
    public final AtomicLong cancelled = new AtomicLong();

    /** A request not executed yet; whoever claims it first (execution or cancel) completes it. */
    private final class Parked {
        final long tag;
        final IoCompletion completion;
        final Runnable run;
        final java.util.concurrent.atomic.AtomicBoolean claimed = new java.util.concurrent.atomic.AtomicBoolean();

        Parked(long tag, IoCompletion completion, Runnable run) {
            this.tag = tag;
            this.completion = completion;
            this.run = run;
        }

        boolean claim() {
            return claimed.compareAndSet(false, true);
        }
    }

    /** @param async complete on a private thread instead of inline */
    public FaultyBlockDevice(BlockDevice inner, boolean async) {
        super(inner);
        this.executor = async ? Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "faulty-leg");
            t.setDaemon(true);
            return t;
        }) : null;
    }

    /**
     * Changes the mode. Requests queued before the change are discarded without completing, as a torn-down
     * transport session would (the mirror has failed them over): nothing from an old session lands later.
     */
    public void mode(Mode m) {
        session.incrementAndGet();
        mode = m;
    }

    /** Requests held in HOLD mode, not yet released. */
    public int heldCount() {
        return held.size();
    }

    /** Switches to PASS and runs every held request, in arrival order, on the calling thread (a slow leg answers). */
    public void releaseHeld() {
        mode = Mode.PASS;
        Parked p;
        while ((p = held.poll()) != null) {
            if (p.claim()) {
                p.run.run();
            }
        }
    }

    @Override
    public void cancel(long tag, IoCompletion completion) {
        if (cancel(held, tag, completion) || cancel(unexecuted, tag, completion)) {
            cancelled.incrementAndGet();
            completion.onComplete(tag, IoStatus.ECANCELED);
        }
    }

    private static boolean cancel(java.util.Queue<FaultyBlockDevice.Parked> queue, long tag, IoCompletion completion) {
        for (FaultyBlockDevice.Parked p : queue) {
            if (p.tag == tag && p.completion == completion && p.claim()) {
                queue.remove(p);
                return true;
            }
        }
        return false;
    }

    public Mode mode() {
        return mode;
    }

    /** The wrapped device ({@link #delegate()}), by the name the mirror tests use. */
    public BlockDevice inner() {
        return delegate;
    }

    @Override
    public void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                       IoCompletion completion) {
        Mode m = mode;
        if (m == Mode.HANG) {
            hung.incrementAndGet();
            unexecuted.add(new Parked(tag, completion, null));
            return;
        }
        if (m == Mode.FAIL) {
            completion.onComplete(tag, IoStatus.EIO);
            return;
        }
        if (m == Mode.HOLD) {
            held.add(new Parked(tag, completion, () -> run(op, offset, length, flags, buffer, tag, completion)));
            return;
        }
        if (executor == null) {
            run(op, offset, length, flags, buffer, tag, completion);
        } else {
            long mySession = session.get();
            Parked p = new Parked(tag, completion, null);
            unexecuted.add(p);
            executor.execute(() -> {
                if (mode == Mode.HANG || session.get() != mySession) {
                    hung.incrementAndGet(); // stays unexecuted: a cancel answers it
                    return;
                }
                if (p.claim()) {
                    unexecuted.remove(p);
                    run(op, offset, length, flags, buffer, tag, completion);
                }
            });
        }
    }

    private void run(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                     IoCompletion completion) {
        if (op == IoOp.FLUSH) {
            flushes.incrementAndGet();
        }
        if (op == IoOp.WRITE) {
            if ((flags & io.weft.core.io.IoFlags.FUA) != 0) {
                fuaWrites.incrementAndGet();
            }
            writes.incrementAndGet();
            writtenBytes.addAndGet(length);
        } else if (op == IoOp.READ) {
            reads.incrementAndGet();
        }
        delegate.submit(op, offset, length, flags, buffer, tag, completion);
    }

    @Override
    public void close() {
        if (executor != null) {
            executor.shutdownNow();
        }
        delegate.close();
    }

    @Override
    public String toString() {
        return "Faulty[" + mode + "]";
    }
}
