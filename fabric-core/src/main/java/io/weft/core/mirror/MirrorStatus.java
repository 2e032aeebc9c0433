package io.weft.core.mirror;

import java.util.List;

/**
 * An immutable snapshot of a mirrored device for status tables, HTTP and JMX.
 *
 * @param legs          one entry per leg position (always {@link MirrorBlockDevice#MAX_LEGS})
 * @param dirtyRegions  regions marked in the write-intent bitmap
 * @param regionSize    bytes per bitmap region
 * @param resync        the current or last resync
 */
public record MirrorStatus(List<Leg> legs, long dirtyRegions, int regionSize, ResyncProgress resync) {

    /**
     * @param index           leg position
     * @param state           where it stands
     * @param inFlight        requests issued to it and not yet completed
     * @param readLatencyNanos smoothed read latency (0 before the first read)
     * @param description     the leg device's {@code toString()} (for people), or "" when empty
     */
    public record Leg(int index, LegState state, int inFlight, long readLatencyNanos, String description) {
    }

    /** Legs that take writes (in sync or resyncing). */
    public long liveLegs() {
        return legs.stream().filter(l -> l.state() == LegState.IN_SYNC || l.state() == LegState.RESYNCING).count();
    }

    /** True when some attached leg is not in sync. */
    public boolean degraded() {
        return legs.stream().anyMatch(l -> l.state() == LegState.FAILED || l.state() == LegState.RESYNCING);
    }
}
