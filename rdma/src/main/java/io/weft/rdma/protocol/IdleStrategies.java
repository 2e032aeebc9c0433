package io.weft.rdma.protocol;

import io.weft.rdma.verbs.CompletionQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.agrona.concurrent.IdleStrategy;

/**
 * Spin briefly (a reply is usually a few microseconds away), then yield, then sleep on the completion queue, which
 * wakes on incoming traffic or an explicit wakeup from a submitter. An idle agent therefore costs ~0% CPU while a
 * busy one never pays for a wake-up.
 */
public final class IdleStrategies {
    private IdleStrategies() {
    }

    public static IdleStrategy spinThenAwait(CompletionQueue cq, BooleanSupplier hasPendingWork, int spins, int yields,
                                             long maxSleepNanos) {
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
                    cq.await(maxSleepNanos, hasPendingWork);
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

    public static final long DEFAULT_MAX_SLEEP_NANOS = TimeUnit.MILLISECONDS.toNanos(10);
}
