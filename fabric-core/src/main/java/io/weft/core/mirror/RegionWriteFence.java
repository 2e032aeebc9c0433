package io.weft.core.mirror;

import io.weft.core.io.PerThreadIdleStrategy;
import java.util.concurrent.atomic.AtomicIntegerArray;
import org.agrona.concurrent.BackoffIdleStrategy;
import org.agrona.concurrent.IdleStrategy;

/**
 * Where foreground writes and the resync's copy meet: per bitmap region, how many writes have started and finished
 * (so the copy of a region can tell whether a write ran while it copied), and the one region the resync has fenced
 * as its last resort (new writes to it wait until the copy ends). {@link MirrorFanOut} calls
 * {@link #beginWrite}/{@link #endWrite} around every write-class request; {@link ResyncDriver} reads the counters and
 * sets the fence ({@code copyRegion}'s rule, docs/mirror.md "Resync").
 *
 * <p>Threads: the counters are atomics, written by submitting and completing threads; the fence is written by the
 * resync thread only. No allocation.
 */
final class RegionWriteFence {
    /**
     * A write waiting for the fence to lift (any submitting thread): 99 spins, no yield, then parks of 20 µs. Per
     * thread: Agrona's back-off counts in fields.
     */
    private static final PerThreadIdleStrategy FENCE_WAIT = new PerThreadIdleStrategy(
            () -> new BackoffIdleStrategy(99, 0, 20_000, 20_000));

    private final AtomicIntegerArray started;
    private final AtomicIntegerArray finished;
    private volatile long fencedRegion = -1;

    RegionWriteFence(long regionCount) {
        this.started = new AtomicIntegerArray((int) regionCount);
        this.finished = new AtomicIntegerArray((int) regionCount);
    }

    /**
     * Counts a write to regions {@code first..last} as started; if the resync has fenced one of them, backs out and
     * waits (spinning, then parking 20 µs) for that one region copy to end, then counts again.
     */
    void beginWrite(int first, int last) {
        while (true) {
            for (int r = first; r <= last; r++) {
                started.incrementAndGet(r);
            }
            long fenced = fencedRegion;
            if (fenced < first || fenced > last) {
                return;
            }
            // The resync is copying this region under a fence: back out and wait for it (one region copy).
            for (int r = first; r <= last; r++) {
                finished.incrementAndGet(r);
            }
            IdleStrategy idle = FENCE_WAIT.begin();
            while (fencedRegion == fenced) {
                idle.idle();
            }
        }
    }

    void endWrite(int first, int last) {
        for (int r = first; r <= last; r++) {
            finished.incrementAndGet(r);
        }
    }

    /** Writes to {@code region} started so far. */
    int started(int region) {
        return started.get(region);
    }

    /** Writes to {@code region} finished so far: equal to {@link #started} when none is in flight. */
    int finished(int region) {
        return finished.get(region);
    }

    /** Resync thread: new writes to {@code region} wait until {@link #unfence}. */
    void fence(int region) {
        fencedRegion = region;
    }

    void unfence() {
        fencedRegion = -1;
    }

    /** The fenced region, or -1. */
    long fencedRegion() {
        return fencedRegion;
    }
}
