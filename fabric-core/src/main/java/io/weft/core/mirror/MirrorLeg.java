package io.weft.core.mirror;

import io.weft.core.io.BlockDevice;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * One leg position of a mirror (0..{@value MirrorBlockDevice#MAX_LEGS} - 1): its device, its {@link LegState} and
 * the counters the fan-out and the resync share. The {@link LegMembership} owns the record and changes device, state
 * and epoch (under its lock); {@link MirrorFanOut} counts requests and read latency on it; {@link ResyncDriver}
 * waits on {@link #skippedWrites}. The records are created once per mirror and never replaced.
 */
final class MirrorLeg {
    final int index;
    volatile BlockDevice device;
    volatile LegState state = LegState.EMPTY;
    final AtomicInteger inFlight = new AtomicInteger();
    /** Writes in flight that skipped this leg because it was FAILED (see the resync's barrier on it). */
    final AtomicInteger skippedWrites = new AtomicInteger();
    volatile long readLatencyNanos;
    volatile CompletableFuture<ResyncProgress> resyncDone;
    /** Bumped (under the membership's lock) each time a resync of this leg is started. */
    volatile long resyncEpoch;

    MirrorLeg(int index) {
        this.index = index;
    }

    /** Takes writes: IN_SYNC or RESYNCING. */
    boolean isLive() {
        LegState st = state;
        return st == LegState.IN_SYNC || st == LegState.RESYNCING;
    }
}
