package io.weft.actors.drill.harness;

import io.weft.core.mirror.MirrorBlockDevice;
import io.weft.core.mirror.MirrorListener;
import io.weft.core.mirror.ResyncProgress;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;

/**
 * When things happened during a drill: the fault's inject and recovery, the mirror's leg events (as its
 * {@link MirrorListener}), which legs the fault dropped and when each came back, and the typed event list the report
 * shows. Written by the drill's control thread and the mirror's event threads, read by the workload thread (the
 * "leg is out" window, the first drop) and by the control thread when it builds the report.
 */
final class DrillTimeline implements MirrorListener {
    private final MirrorBlockDevice mirror;
    private final List<DrillEventAt> events = new CopyOnWriteArrayList<>();
    private final AtomicLong firstDropNanos = new AtomicLong();
    /** Per leg: legs the fault dropped, and when each was last dropped / back in sync / its resync started. */
    private final FaultLegs faultLegs = new FaultLegs();
    private volatile long faultNanos;
    private volatile long recoverNanos;
    /** Drop event of the first fault leg, and when its resync started (0 = not yet): the "leg is out" window. */
    private volatile long outSinceNanos;
    private volatile long outUntilNanos;
    /** Set once recovery has returned: legs dropped later are not the fault's. */
    private volatile boolean resyncWaitStarted;

    /** @param mirror the mirror whose events are timed, or null for a plain device */
    DrillTimeline(MirrorBlockDevice mirror) {
        this.mirror = mirror;
    }

    // ---- the control thread's marks

    /** The fault is being injected now ({@code nanoTime}): time zero of every later event. */
    void faultInjected(long nanoTime, String faultName) {
        faultNanos = nanoTime;
        add(nanoTime, new DrillEvent.FaultInjected(faultName));
    }

    void recoverStarted(long nanoTime) {
        recoverNanos = nanoTime;
        add(nanoTime, new DrillEvent.RecoverStarted());
    }

    /** Recovery has returned: a leg dropped from now on is not the fault's. */
    void recoveryReturned() {
        resyncWaitStarted = true;
    }

    /** Adds an event that happened at {@code nanoTime} ({@link System#nanoTime()}). */
    void add(long nanoTime, DrillEvent event) {
        long f = faultNanos;
        events.add(new DrillEventAt(f == 0 ? null : (nanoTime - f) / 1e6, event));
    }

    /** Adds an event that happens now. */
    void add(DrillEvent event) {
        add(System.nanoTime(), event);
    }

    // ---- read by any thread

    long faultNanos() {
        return faultNanos;
    }

    long recoverNanos() {
        return recoverNanos;
    }

    /** The first leg-dropped event of a fault leg (the mirror's own event time); 0 = none yet. */
    long firstDropNanos() {
        return firstDropNanos.get();
    }

    long outSinceNanos() {
        return outSinceNanos;
    }

    long outUntilNanos() {
        return outUntilNanos;
    }

    /** When the last fault leg came back in sync after {@code since}, or 0 while any is still out. */
    long allFaultLegsBackAfter(long since) {
        return faultLegs.allBackAfter(since);
    }

    String pendingLegs() {
        return faultLegs.pending();
    }

    /** {regions dirty at the return, regions copied, bytes copied} summed over the fault legs back in sync. */
    long[] resyncCounts() {
        return faultLegs.resyncCounts(mirror != null);
    }

    List<DrillEventAt> events() {
        return List.copyOf(events);
    }

    // ---- the mirror's events (its threads)

    @Override
    public void legDropped(int leg, String reason, long nanoTime) {
        boolean byFault = faultNanos != 0 && faultLegs.dropped(leg, nanoTime, resyncWaitStarted);
        if (byFault) {
            // The mirror's own event time, not when this callback ran.
            firstDropNanos.compareAndSet(0, nanoTime);
            if (outSinceNanos == 0) {
                outSinceNanos = nanoTime;
            }
        }
        add(nanoTime, new DrillEvent.LegDropped(leg, reason, byFault));
    }

    @Override
    public void resyncStarted(int leg, long regions, boolean full, long nanoTime) {
        if (faultLegs.resyncStarted(leg, regions) && outUntilNanos == 0 && outSinceNanos != 0) {
            outUntilNanos = nanoTime;
        }
        add(nanoTime, new DrillEvent.ResyncStarted(leg, regions, full));
    }

    @Override
    public void legInSync(int leg, long nanoTime) {
        boolean faultLeg = faultLegs.inSync(leg, nanoTime, mirror.progress());
        add(nanoTime, new DrillEvent.LegInSync(leg, faultLeg));
    }

    @Override
    public void resyncFailed(int leg, String reason, long nanoTime) {
        add(nanoTime, new DrillEvent.ResyncFailed(leg, reason));
    }

    /**
     * Which legs the fault dropped (dropped after the inject, before recovery returned) and how each came back.
     * Updated from the mirror's event threads, read by the control thread; events are rare, so a lock is fine.
     */
    private static final class FaultLegs {
        private final long[] dropNanos = new long[MirrorBlockDevice.MAX_LEGS];
        private final long[] inSyncNanos = new long[MirrorBlockDevice.MAX_LEGS];
        private final long[] dirtyAtStart = new long[MirrorBlockDevice.MAX_LEGS];
        private final long[] regionsCopied = new long[MirrorBlockDevice.MAX_LEGS];
        private final long[] bytesCopied = new long[MirrorBlockDevice.MAX_LEGS];
        private final boolean[] resyncSinceDrop = new boolean[MirrorBlockDevice.MAX_LEGS];
        private int faultLegs;

        /** @return whether the leg counts as dropped by the fault */
        synchronized boolean dropped(int leg, long nanoTime, boolean afterRecovery) {
            if (!afterRecovery) {
                faultLegs |= 1 << leg;
            }
            dropNanos[leg] = nanoTime;
            inSyncNanos[leg] = 0;
            resyncSinceDrop[leg] = false;
            return (faultLegs & (1 << leg)) != 0 && !afterRecovery;
        }

        /** @return whether the leg is one the fault dropped */
        synchronized boolean resyncStarted(int leg, long regions) {
            dirtyAtStart[leg] = regions;
            resyncSinceDrop[leg] = true;
            return (faultLegs & (1 << leg)) != 0;
        }

        /** @return whether the leg is one the fault dropped */
        synchronized boolean inSync(int leg, long nanoTime, ResyncProgress progress) {
            inSyncNanos[leg] = nanoTime;
            if (resyncSinceDrop[leg] && progress.leg() == leg && !progress.running()) {
                regionsCopied[leg] = progress.regionsDone();
                bytesCopied[leg] = progress.bytesCopied();
            } else {
                // Made in sync without a copy (it was the last authoritative leg).
                dirtyAtStart[leg] = 0;
                regionsCopied[leg] = 0;
                bytesCopied[leg] = 0;
            }
            return (faultLegs & (1 << leg)) != 0;
        }

        synchronized long allBackAfter(long since) {
            long last = 0;
            for (int leg = 0; leg < dropNanos.length; leg++) {
                if ((faultLegs & (1 << leg)) != 0) {
                    long back = inSyncNanos[leg];
                    if (back == 0 || back < dropNanos[leg]) {
                        return 0;
                    }
                    last = Math.max(last, Math.max(back, since));
                }
            }
            return last;
        }

        synchronized String pending() {
            StringBuilder b = new StringBuilder();
            for (int leg = 0; leg < dropNanos.length; leg++) {
                if ((faultLegs & (1 << leg)) != 0 && inSyncNanos[leg] == 0) {
                    b.append(b.length() == 0 ? "" : ", ").append(leg);
                }
            }
            return b.toString();
        }

        synchronized long[] resyncCounts(boolean mirrored) {
            if (!mirrored || faultLegs == 0) {
                return new long[] {-1, -1, -1};
            }
            long[] sums = new long[3];
            boolean anyBack = false;
            for (int leg = 0; leg < dropNanos.length; leg++) {
                if ((faultLegs & (1 << leg)) != 0 && inSyncNanos[leg] != 0) {
                    anyBack = true;
                    sums[0] += dirtyAtStart[leg];
                    sums[1] += regionsCopied[leg];
                    sums[2] += bytesCopied[leg];
                }
            }
            return anyBack ? sums : new long[] {-1, -1, -1};
        }
    }
}
