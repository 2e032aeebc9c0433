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
 */
public record MirrorOptions(int maxInFlight, long legTimeoutNanos, ReadPolicy readPolicy, long resyncBytesPerSecond,
                            boolean startWatchdog) {

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
    }

    /** 1024 slots, 500 ms leg timeout, min-inflight reads, resync at 200 MiB/s, own watchdog. */
    public static MirrorOptions defaults() {
        return new MirrorOptions(1024, DEFAULT_LEG_TIMEOUT_NANOS, ReadPolicy.MIN_INFLIGHT, 200L << 20, true);
    }

    public MirrorOptions withLegTimeoutNanos(long nanos) {
        return new MirrorOptions(maxInFlight, nanos, readPolicy, resyncBytesPerSecond, startWatchdog);
    }

    public MirrorOptions withReadPolicy(ReadPolicy policy) {
        return new MirrorOptions(maxInFlight, legTimeoutNanos, policy, resyncBytesPerSecond, startWatchdog);
    }

    public MirrorOptions withResyncBytesPerSecond(long rate) {
        return new MirrorOptions(maxInFlight, legTimeoutNanos, readPolicy, rate, startWatchdog);
    }

    public MirrorOptions withMaxInFlight(int slots) {
        return new MirrorOptions(slots, legTimeoutNanos, readPolicy, resyncBytesPerSecond, startWatchdog);
    }

    public MirrorOptions withWatchdog(boolean start) {
        return new MirrorOptions(maxInFlight, legTimeoutNanos, readPolicy, resyncBytesPerSecond, start);
    }
}
