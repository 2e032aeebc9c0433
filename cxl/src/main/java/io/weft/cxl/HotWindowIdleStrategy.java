package io.weft.cxl;

import java.util.function.BooleanSupplier;
import org.agrona.concurrent.BackoffIdleStrategy;
import org.agrona.concurrent.IdleStrategy;

/**
 * Idle strategy of the data-plane agents, in stages after the last piece of work:
 * <ol>
 *   <li>hot window ({@code hotWindowNs}, and while {@code expectingWork} says a completion is due, up to 10 ms): spin,
 *       then yield. The next request or completion usually arrives within microseconds and a sleep costs tens of
 *       microseconds of scheduler latency.</li>
 *   <li>sleep: the {@link Sleeper} announces that the thread sleeps (a flag a producer checks after publishing),
 *       re-checks for work, then sleeps up to {@code deepSleepNs} (the heartbeat interval: the agent must still beat);
 *       a producer that finds the flag wakes it at once. An idle agent wakes ~10 times a second, not ~1000, and a
 *       busy peer on a 2-core machine gets the core instead of a timed park that returns to find nothing.</li>
 *   <li>while a completion is overdue (past 10 ms, or with no sleeper), the back-off strategy instead: spin, yield,
 *       park with growing periods up to {@code idleMaxPark}.</li>
 * </ol>
 */
final class HotWindowIdleStrategy implements IdleStrategy {
    /** Hot window: 99 spins, then yields for the rest of the window. */
    private static final int HOT_SPINS = 99;
    /** A completion later than this is slow anyway (or its backend is gone): stop burning a core waiting for it. */
    private static final long EXPECTING_LIMIT_NS = 10_000_000L;

    /** The deep-sleep stage: how the owning agent announces it sleeps, and how it sleeps until woken. */
    interface Sleeper {
        /** Publishes "asleep" (with a full fence) and re-checks for work; false = work arrived, do not sleep. */
        boolean announce();

        /** Sleeps up to {@code maxNs} or until a producer wakes it, then withdraws the announcement. */
        void sleep(long maxNs);
    }

    private final IdleStrategy backOff;
    private final long hotWindowNs;
    private final long deepSleepNs;
    private final BooleanSupplier expectingWork;
    private final Sleeper sleeper;
    /** The hot window's spin-then-yield ladder (never parks: the window's end moves the agent on). */
    private final IdleStrategy hot = new BackoffIdleStrategy(HOT_SPINS, Long.MAX_VALUE, 1, 1);
    private long idleSinceNs;
    /** True while the thread may be parked (back-off or deep sleep): a producer in the same JVM then unparks it. */
    private volatile boolean mayPark;

    HotWindowIdleStrategy(IdleStrategy backOff, long hotWindowNs, long deepSleepNs, BooleanSupplier expectingWork,
                          Sleeper sleeper) {
        this.backOff = backOff;
        this.hotWindowNs = hotWindowNs;
        this.deepSleepNs = deepSleepNs;
        this.expectingWork = expectingWork;
        this.sleeper = sleeper;
    }

    @Override
    public void idle(int workCount) {
        if (workCount > 0) {
            reset();
            return;
        }
        idle();
    }

    @Override
    public void idle() {
        long now = System.nanoTime();
        if (idleSinceNs == 0) {
            idleSinceNs = now;
        }
        long idleFor = now - idleSinceNs;
        if (idleFor < hotWindowNs || (idleFor < EXPECTING_LIMIT_NS && expectingWork.getAsBoolean())) {
            hot.idle();
            return;
        }
        mayPark = true;
        // Re-check after announcing: a request published just before the flag was set is seen now.
        if (expectingWork.getAsBoolean() || sleeper == null) {
            backOff.idle(); // a completion is overdue (slow device, dead peer): bounded parks, never a deep sleep
            return;
        }
        if (sleeper.announce()) {
            sleeper.sleep(deepSleepNs);
        }
    }

    /** Whether the owning thread may be parked (set before it parks; cleared when it has work again). */
    boolean mayPark() {
        return mayPark;
    }

    @Override
    public void reset() {
        mayPark = false;
        idleSinceNs = 0;
        hot.reset();
        backOff.reset();
    }

    @Override
    public String alias() {
        return "hot-window";
    }
}
