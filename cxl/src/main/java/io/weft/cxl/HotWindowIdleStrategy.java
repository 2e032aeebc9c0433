package io.weft.cxl;

import java.util.function.BooleanSupplier;
import org.agrona.concurrent.IdleStrategy;

/**
 * Idle strategy of the data-plane agents. For {@code hotWindowNs} after the last piece of work — and for as long as
 * {@code expectingWork} says a completion is due (client requests in flight) — it only spins and yields, because the
 * next request or completion usually arrives within microseconds and a park costs tens of microseconds of timer and
 * scheduler latency. After that it hands over to a back-off strategy (spin, yield, park up to a maximum), so an idle
 * agent costs ~0% CPU.
 */
final class HotWindowIdleStrategy implements IdleStrategy {
    private static final int SPINS_BEFORE_YIELD = 100;
    private final IdleStrategy backOff;
    private final long hotWindowNs;
    private final BooleanSupplier expectingWork;
    private long idleSinceNs;
    private int spins;

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
        if (now - idleSinceNs < hotWindowNs || expectingWork.getAsBoolean()) {
            if (++spins < SPINS_BEFORE_YIELD) {
                Thread.onSpinWait();
            } else {
                Thread.yield();
            }
        } else {
            backOff.idle();
        }
    }

    @Override
    public void reset() {
        idleSinceNs = 0;
        spins = 0;
        backOff.reset();
    }

    @Override
    public String alias() {
        return "hot-window";
    }
}
