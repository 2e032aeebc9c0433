package io.weft.core.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.management.ManagementFactory;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicInteger;
import org.agrona.concurrent.BackoffIdleStrategy;
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

    @Test
    void waitsAfterAThreadsFirstAllocateNothing() {
        var threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        PerThreadIdleStrategy waits = new PerThreadIdleStrategy(() -> new BackoffIdleStrategy(1, 0, 1, 1));
        for (int i = 0; i < 20_000; i++) { // warm-up: this thread's instance made, code compiled
            waits.begin().idle();
        }
        long tid = Thread.currentThread().getId();
        long before = threads.getThreadAllocatedBytes(tid);
        for (int i = 0; i < 10_000; i++) {
            waits.begin().idle();
        }
        long allocated = threads.getThreadAllocatedBytes(tid) - before;
        // A strategy (or any object) per wait would be 10,000 objects of 16 bytes or more.
        assertTrue(allocated < 16 << 10, "allocated " + allocated + " bytes for 10,000 waits");
    }
}
