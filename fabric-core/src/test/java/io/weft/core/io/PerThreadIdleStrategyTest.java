package io.weft.core.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicInteger;
import org.agrona.concurrent.IdleStrategy;
import org.junit.jupiter.api.Test;

class PerThreadIdleStrategyTest {

    /** Counts its idle and reset calls. */
    private static final class CountingIdleStrategy implements IdleStrategy {
        int idles;
        int resets;

        @Override
        public void idle(int workCount) {
            idles++;
        }

        @Override
        public void idle() {
            idles++;
        }

        @Override
        public void reset() {
            resets++;
        }
    }

    @Test
    void aThreadKeepsItsInstanceAndEachWaitStartsReset() {
        AtomicInteger made = new AtomicInteger();
        PerThreadIdleStrategy waits = new PerThreadIdleStrategy(() -> {
            made.incrementAndGet();
            return new CountingIdleStrategy();
        });

        IdleStrategy first = waits.begin();
        first.idle();
        first.idle();
        IdleStrategy second = waits.begin();

        assertSame(first, second, "one thread reuses its instance");
        assertEquals(1, made.get(), "made once for this thread");
        assertEquals(2, ((CountingIdleStrategy) second).resets, "every begin resets");
        assertEquals(2, ((CountingIdleStrategy) second).idles);
    }

    @Test
    void anotherThreadGetsItsOwnInstance() throws Exception {
        PerThreadIdleStrategy waits = new PerThreadIdleStrategy(CountingIdleStrategy::new);
        IdleStrategy mine = waits.begin();

        IdleStrategy theirs = CompletableFuture.supplyAsync(waits::begin).get();

        assertNotSame(mine, theirs);
    }
}
