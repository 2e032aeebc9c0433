package io.weft.cxl;

import java.time.Duration;
import org.agrona.concurrent.BackoffIdleStrategy;

/**
 * Timing knobs of one process's participation in a region.
 *
 * @param heartbeatInterval how often heartbeat counters are bumped (host agent and channel agents)
 * @param deadTimeout       a peer whose counter has not moved for this long (by the observer's own monotonic clock)
 *                          is dead; default 1 s
 * @param ioTimeout         a client channel with requests in flight and no completion for this long fails them
 *                          with ETIMEDOUT (covers a backend that never comes back)
 * @param idleMaxSpins      back-off idle strategy of the data-plane agents: busy spins before yielding
 * @param idleMaxYields     yields before parking
 * @param idleMinPark       first park period
 * @param idleMaxPark       longest park period of the back-off strategy, used only while a completion is overdue
 *                          or where no doorbell works (no futex); otherwise an idle agent sleeps up to one
 *                          heartbeat interval and the producer wakes it (futex doorbell across processes, unpark
 *                          within one)
 * @param hotWindow         after the last work agents only spin and yield for this long before they sleep
 *                          (and a client's completion agent keeps doing so while requests are in flight, up to
 *                          10 ms). Default 0: straight to the doorbell sleep. Measured on the shared 2-core
 *                          machine (docs/benchmarks-cxl.md, "Two-JVM NBD path"), a handler that spun 200 µs between
 *                          requests got the core later than one that slept on its futex and was woken by the
 *                          client: the scheduler favours a thread waking from sleep over one that kept spinning.
 * @param completionAgents  client side: completion agent threads of this process in the region, shared by every blkdev
 *                          it opens (each blkdev is served by one of them); started with the first blkdev. Default 1:
 *                          threads and idle wake-ups do not grow with the number of devices
 * @param handlerAgents     storage side: handler agent threads of this process in the region, shared by every backend
 *                          it serves (a backend's channels are spread over up to
 *                          {@link BackendOptions#handlerAgents()} of them); started with the first backend. Default 1
 */
public record CxlOptions(Duration heartbeatInterval, Duration deadTimeout, Duration ioTimeout, int idleMaxSpins,
                         int idleMaxYields, Duration idleMinPark, Duration idleMaxPark, Duration hotWindow,
                         int completionAgents, int handlerAgents) {
    /** Most agent threads of either kind one process runs in a region. */
    public static final int MAX_AGENTS = 64;

    /** One completion agent and one handler agent per process. */
    public CxlOptions(Duration heartbeatInterval, Duration deadTimeout, Duration ioTimeout, int idleMaxSpins,
                      int idleMaxYields, Duration idleMinPark, Duration idleMaxPark, Duration hotWindow) {
        this(heartbeatInterval, deadTimeout, ioTimeout, idleMaxSpins, idleMaxYields, idleMinPark, idleMaxPark,
                hotWindow, 1, 1);
    }

    public CxlOptions {
        if (completionAgents < 1 || completionAgents > MAX_AGENTS) {
            throw new IllegalArgumentException("completionAgents must be in [1, " + MAX_AGENTS + "]: "
                    + completionAgents);
        }
        if (handlerAgents < 1 || handlerAgents > MAX_AGENTS) {
            throw new IllegalArgumentException("handlerAgents must be in [1, " + MAX_AGENTS + "]: " + handlerAgents);
        }
        if (heartbeatInterval.isNegative() || heartbeatInterval.isZero()) {
            throw new IllegalArgumentException("heartbeatInterval must be positive");
        }
        if (deadTimeout.compareTo(heartbeatInterval.multipliedBy(3)) < 0) {
            throw new IllegalArgumentException("deadTimeout must be at least 3 heartbeat intervals: " + deadTimeout);
        }
        if (ioTimeout.compareTo(deadTimeout) < 0) {
            throw new IllegalArgumentException("ioTimeout must be at least deadTimeout: " + ioTimeout);
        }
    }

    public static CxlOptions defaults() {
        return new CxlOptions(Duration.ofMillis(100), Duration.ofSeconds(1), Duration.ofSeconds(30), 200, 100,
                Duration.ofNanos(1_000), Duration.ofMillis(1), Duration.ZERO, 1, 1);
    }

    public CxlOptions withDeadTimeout(Duration heartbeat, Duration dead) {
        return new CxlOptions(heartbeat, dead, ioTimeout.compareTo(dead) < 0 ? dead : ioTimeout, idleMaxSpins,
                idleMaxYields, idleMinPark, idleMaxPark, hotWindow, completionAgents, handlerAgents);
    }

    /** The same options with another number of shared completion agents (client) and handler agents (storage). */
    public CxlOptions withAgents(int completion, int handler) {
        return new CxlOptions(heartbeatInterval, deadTimeout, ioTimeout, idleMaxSpins, idleMaxYields, idleMinPark,
                idleMaxPark, hotWindow, completion, handler);
    }

    /** The same options with another hot window (spin-then-yield time before an idle agent sleeps). */
    public CxlOptions withHotWindow(Duration window) {
        return new CxlOptions(heartbeatInterval, deadTimeout, ioTimeout, idleMaxSpins, idleMaxYields, idleMinPark,
                idleMaxPark, window, completionAgents, handlerAgents);
    }

    public CxlOptions withIoTimeout(Duration timeout) {
        return new CxlOptions(heartbeatInterval, deadTimeout, timeout, idleMaxSpins, idleMaxYields, idleMinPark,
                idleMaxPark, hotWindow, completionAgents, handlerAgents);
    }

    /**
     * Hot window, back-off (spin, yield, park up to {@code idleMaxPark}), then deep sleep through {@code sleeper} for
     * up to one heartbeat interval; see {@link HotWindowIdleStrategy}.
     */
    HotWindowIdleStrategy newIdleStrategy(java.util.function.BooleanSupplier expectingWork,
                                          HotWindowIdleStrategy.Sleeper sleeper) {
        return newIdleStrategy(hotWindow.toNanos(), expectingWork, sleeper);
    }

    /** The same with another hot window (0: straight to the sleep stage when no work is expected). */
    HotWindowIdleStrategy newIdleStrategy(long hotWindowNs, java.util.function.BooleanSupplier expectingWork,
                                          HotWindowIdleStrategy.Sleeper sleeper) {
        return new HotWindowIdleStrategy(
                new BackoffIdleStrategy(idleMaxSpins, idleMaxYields, idleMinPark.toNanos(), idleMaxPark.toNanos()),
                hotWindowNs, heartbeatInterval.toNanos(), expectingWork, sleeper);
    }
}
