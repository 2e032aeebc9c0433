package io.weft.core.mirror;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * FLUSHes a set of leg devices in parallel and waits for all of them with a deadline: the control-path flush of the
 * activity log (before an extent leaves it), of a resync (before the leg is IN_SYNC) and of a clean close. One round
 * at a time (callers serialise on this object); a late answer from an earlier round is ignored by its tag
 * ({@code round << 2 | leg}), and a leg that did not answer in time, or that left the mirror meanwhile (dropped,
 * removed: see {@link LegWatch}), is cancelled (FLUSH has no buffer, so nothing below can touch memory of ours after
 * that either way). Not waiting for a leg that left matters: the resync's flush holds this object, and the
 * activity log's flush (which foreground writes can wait for) needs it.
 */
final class LegFlush implements IoCompletion {
    private static final int WAITING = Integer.MIN_VALUE;

    private final AtomicLong round = new AtomicLong();
    private final AtomicIntegerArray status = new AtomicIntegerArray(MirrorBlockDevice.MAX_LEGS);
    private volatile Thread waiter;

    /** Whether the flush of a leg is still wanted: the leg is still where it was when the flush was issued. */
    @FunctionalInterface
    interface LegWatch {
        boolean stillWanted(int leg);
    }

    /**
     * Flushes {@code devices[i]} for every bit i of {@code mask} and fills {@code out[i]} with its status
     * (ETIMEDOUT if it did not answer within {@code timeoutNanos}; ECANCELED if it was given up on earlier because
     * {@code watch} no longer wanted it).
     */
    synchronized void run(BlockDevice[] devices, int mask, long timeoutNanos, LegWatch watch, int[] out) {
        long r = round.incrementAndGet();
        waiter = Thread.currentThread();
        for (int i = 0; i < devices.length; i++) {
            status.set(i, (mask & (1 << i)) != 0 ? WAITING : IoStatus.OK);
        }
        for (int i = 0; i < devices.length; i++) {
            if ((mask & (1 << i)) == 0) {
                continue;
            }
            try {
                devices[i].submit(IoOp.FLUSH, 0, 0, 0, null, r << 2 | i, this);
            } catch (RuntimeException e) {
                status.compareAndSet(i, WAITING, IoStatus.EIO);
            }
        }
        long deadline = System.nanoTime() + timeoutNanos;
        int gaveUp = 0;
        while (true) {
            boolean waiting = false;
            for (int i = 0; i < devices.length; i++) {
                if (status.get(i) != WAITING) {
                    continue;
                }
                if (watch.stillWanted(i)) {
                    waiting = true;
                } else if (status.compareAndSet(i, WAITING, IoStatus.ECANCELED)) {
                    gaveUp |= 1 << i;
                }
            }
            long left = deadline - System.nanoTime();
            if (!waiting || left <= 0 || Thread.currentThread().isInterrupted()) {
                break; // interrupted (the device is closing): park would return at once; report what we have
            }
            // Not an idle strategy: onComplete unparks the waiter, the park never outlasts the deadline, and the
            // blocker names this wait in a thread dump.
            LockSupport.parkNanos(this, Math.min(left, 1_000_000L));
        }
        round.incrementAndGet(); // answers from now on belong to no round
        for (int i = 0; i < devices.length; i++) {
            int st = status.get(i);
            if (st == WAITING || (gaveUp & (1 << i)) != 0) {
                devices[i].cancel(r << 2 | i, this);
                st = st == WAITING ? IoStatus.ETIMEDOUT : st;
            }
            out[i] = st;
        }
    }

    @Override
    public void onComplete(long tag, int st) {
        if ((tag >>> 2) != round.get()) {
            return;
        }
        status.compareAndSet((int) (tag & 3), WAITING, st);
        Thread t = waiter;
        if (t != null) {
            LockSupport.unpark(t);
        }
    }
}
