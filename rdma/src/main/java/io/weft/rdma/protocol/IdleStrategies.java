package io.weft.rdma.protocol;

import io.weft.rdma.verbs.CompletionQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.agrona.concurrent.IdleStrategy;

/**
 * Optionally spin, then yield, then sleep on the completion queue, which wakes on incoming traffic or an explicit
 * wakeup from a submitter. An idle agent therefore costs ~0% CPU. The defaults do not spin at all: measured on the
 * shared 2-core machine (see docs/benchmarks-rdma.md), spinning agents of two JVMs starve each other and the rest
 * of the box (qd1 p50 9.7 us without spinning, 112 us with 200 spins + 20 yields, 1.1 ms with 2000 spins), while a
 * blocked agent is woken by epoll within microseconds. On a dedicated machine with spare cores a short spin can
 * shave the wake-up; set {@code weft.rdma.idle.spins}.
 */
public final class IdleStrategies {
    private IdleStrategies() {
    }

    public static IdleStrategy spinThenAwait(CompletionQueue cq, BooleanSupplier hasPendingWork, int spins, int yields,
                                             long maxSleepNanos) {
        return spinThenAwait(cq, hasPendingWork, spins, yields, () -> maxSleepNanos);
    }

    /**
     * As above with the longest sleep chosen at each sleep: an agent with timers only while requests are held sleeps
     * long when none is, so an idle agent wakes only when something arrives.
     */
    public static IdleStrategy spinThenAwait(CompletionQueue cq, BooleanSupplier hasPendingWork, int spins, int yields,
                                             java.util.function.LongSupplier maxSleepNanos) {
        return new IdleStrategy() {
            private int idleCount;

            @Override
            public void idle(int workCount) {
                if (workCount > 0) {
                    idleCount = 0;
                    return;
                }
                idle();
            }

            @Override
            public void idle() {
                idleCount++;
                if (idleCount <= spins) {
                    Thread.onSpinWait();
                } else if (idleCount <= spins + yields) {
                    Thread.yield();
                } else {
                    cq.await(maxSleepNanos.getAsLong(), hasPendingWork);
                }
            }

            @Override
            public void reset() {
                idleCount = 0;
            }

            @Override
            public String alias() {
                return "spin-yield-await";
            }
        };
    }

    /** Empty duty cycles spent spinning before yielding ({@code weft.rdma.idle.spins}). */
    public static final int SPINS = Integer.getInteger("weft.rdma.idle.spins", 0);
    /** Empty duty cycles spent yielding before sleeping on the queue ({@code weft.rdma.idle.yields}). */
    public static final int YIELDS = Integer.getInteger("weft.rdma.idle.yields", 0);

    public static final long DEFAULT_MAX_SLEEP_NANOS = TimeUnit.MILLISECONDS.toNanos(10);
    /** Longest sleep of an agent with nothing in flight: a safety net only, work always wakes it. */
    public static final long IDLE_MAX_SLEEP_NANOS = TimeUnit.SECONDS.toNanos(1);
}
