package io.weft.cxl;

import java.util.function.BooleanSupplier;
import org.agrona.concurrent.IdleStrategy;

/**
 * Idle strategy of the data-plane agents. For {@code hotWindowNs} after the last piece of work — and, while
 * {@code expectingWork} says a completion is due (client requests in flight), for up to 10 ms — it only spins and
 * yields: the next request or completion usually arrives within microseconds and a park costs tens of microseconds of
 * timer and scheduler latency. After that it hands over to a back-off strategy (spin, yield, park up to a maximum), so
 * an idle agent costs ~0% CPU and a dead peer does not cost a core. A producer in the same process that finds
 * {@link #mayPark()} set unparks the thread, so the first request after an idle spell does not wait for the park.
 */
final class HotWindowIdleStrategy implements IdleStrategy {
    private static final int SPINS_BEFORE_YIELD = 100;
    /** A completion later than this is slow anyway (or its backend is gone): stop burning a core waiting for it. */
    private static final long EXPECTING_LIMIT_NS = 10_000_000L;
    private final IdleStrategy backOff;
    private final long hotWindowNs;
    private final BooleanSupplier expectingWork;
    private long idleSinceNs;
    private int spins;
    /** True while the back-off stage may park this thread: a producer in the same JVM then unparks it. */
    private volatile boolean mayPark;

    HotWindowIdleStrategy(IdleStrategy backOff, long hotWindowNs, BooleanSupplier expectingWork) {
        this.backOff = backOff;
        this.hotWindowNs = hotWindowNs;
        this.expectingWork = expectingWork;
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
            if (++spins < SPINS_BEFORE_YIELD) {
                Thread.onSpinWait();
            } else {
                Thread.yield();
            }
        } else {
            mayPark = true;
            // Re-check after announcing: a request published just before the flag was set is seen now.
            if (expectingWork.getAsBoolean()) {
                mayPark = false;
                return;
            }
            backOff.idle();
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
        spins = 0;
        backOff.reset();
    }

    @Override
    public String alias() {
        return "hot-window";
    }
}
