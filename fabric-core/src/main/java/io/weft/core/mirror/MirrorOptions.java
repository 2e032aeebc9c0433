package io.weft.core.mirror;

/**
 * Tunables of a {@link MirrorBlockDevice}.
 *
 * @param maxInFlight          preallocated request slots; a request arriving when all are busy gets ENOMEM
 * @param legTimeoutNanos      a leg that has not completed a request within this time is dropped (default 500 ms)
 * @param readPolicy           how the leg serving a read is chosen
 * @param resyncBytesPerSecond resync throttle; 0 = unthrottled
 * @param startWatchdog        run the leg-timeout check on the device's own timer thread (every legTimeout/4);
 *                             false when the owner calls {@link MirrorBlockDevice#checkTimeouts(long)} itself
 * @param activityExtents      extents the {@link ActivityLog} keeps active
 *                             (1..{@link WriteIntentBitmap#ACTIVITY_SLOTS})
 * @param activityExtentSize   bytes per activity log extent (a power of two; at least the bitmap's region size)
 */
public record MirrorOptions(int maxInFlight, long legTimeoutNanos, ReadPolicy readPolicy, long resyncBytesPerSecond,
                            boolean startWatchdog, int activityExtents, int activityExtentSize) {

    public static final long DEFAULT_LEG_TIMEOUT_NANOS = 500_000_000L;

    public MirrorOptions {
        if (maxInFlight < 2 || maxInFlight > (1 << 24)) {
            throw new IllegalArgumentException("maxInFlight must be in 2..2^24: " + maxInFlight);
        }
        if (legTimeoutNanos < 1_000_000L) {
            throw new IllegalArgumentException("legTimeout must be >= 1 ms: " + legTimeoutNanos + " ns");
        }
        if (resyncBytesPerSecond < 0) {
            throw new IllegalArgumentException("resync rate must be >= 0: " + resyncBytesPerSecond);
        }
        if (readPolicy == null) {
            throw new IllegalArgumentException("readPolicy is required");
        }
        if (activityExtents < 1 || activityExtents > WriteIntentBitmap.ACTIVITY_SLOTS) {
            throw new IllegalArgumentException("activity extents must be 1.." + WriteIntentBitmap.ACTIVITY_SLOTS
                    + ": " + activityExtents);
        }
        if (activityExtentSize < WriteIntentBitmap.MIN_REGION_SIZE || Integer.bitCount(activityExtentSize) != 1) {
            throw new IllegalArgumentException("activity extent size must be a power of two >= 4096: "
                    + activityExtentSize);
        }
    }

    /** The activity log at its defaults ({@value ActivityLog#DEFAULT_EXTENTS} extents of 4 MiB). */
    public MirrorOptions(int maxInFlight, long legTimeoutNanos, ReadPolicy readPolicy, long resyncBytesPerSecond,
                         boolean startWatchdog) {
        this(maxInFlight, legTimeoutNanos, readPolicy, resyncBytesPerSecond, startWatchdog,
                ActivityLog.DEFAULT_EXTENTS, ActivityLog.DEFAULT_EXTENT_SIZE);
    }

    /** 1024 slots, 500 ms leg timeout, min-inflight reads, resync at 200 MiB/s, own watchdog, default activity log. */
    public static MirrorOptions defaults() {
        return new MirrorOptions(1024, DEFAULT_LEG_TIMEOUT_NANOS, ReadPolicy.MIN_INFLIGHT, 200L << 20, true);
    }

    public MirrorOptions withLegTimeoutNanos(long nanos) {
        return new MirrorOptions(maxInFlight, nanos, readPolicy, resyncBytesPerSecond, startWatchdog,
                activityExtents, activityExtentSize);
    }

    public MirrorOptions withReadPolicy(ReadPolicy policy) {
        return new MirrorOptions(maxInFlight, legTimeoutNanos, policy, resyncBytesPerSecond, startWatchdog,
                activityExtents, activityExtentSize);
    }

    public MirrorOptions withResyncBytesPerSecond(long rate) {
        return new MirrorOptions(maxInFlight, legTimeoutNanos, readPolicy, rate, startWatchdog,
                activityExtents, activityExtentSize);
    }

    public MirrorOptions withMaxInFlight(int slots) {
        return new MirrorOptions(slots, legTimeoutNanos, readPolicy, resyncBytesPerSecond, startWatchdog,
                activityExtents, activityExtentSize);
    }

    public MirrorOptions withWatchdog(boolean start) {
        return new MirrorOptions(maxInFlight, legTimeoutNanos, readPolicy, resyncBytesPerSecond, start,
                activityExtents, activityExtentSize);
    }

    /** The activity log's size: {@code extents} active extents of {@code extentSize} bytes. */
    public MirrorOptions withActivityLog(int extents, int extentSize) {
        return new MirrorOptions(maxInFlight, legTimeoutNanos, readPolicy, resyncBytesPerSecond, startWatchdog,
                extents, extentSize);
    }
}
