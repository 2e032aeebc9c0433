package io.weft.actors.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/**
 * ChannelWatcher notices a failed channel after its grace, or at its next poll when the transport's verdict is
 * definite (issue 17), and has no timer while nothing is watched (issue 12).
 */
class ChannelWatcherTest {
    private static final Duration GRACE = Duration.ofMillis(100);

    private static Set<Thread> watcherThreads() {
        return Thread.getAllStackTraces().keySet().stream()
                .filter(t -> t.getName().equals("weft-transport-watcher")).collect(Collectors.toSet());
    }

    /**
     * Polls until every thread in {@code threads} that is still alive waits without a timeout (parked with nothing
     * due: it will not wake by itself). A thread with a periodic task waits with a timeout between runs, forever.
     */
    private static void awaitNoTimerIn(Set<Thread> threads) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        List<String> states = List.of();
        while (System.nanoTime() < deadline) {
            states = threads.stream().filter(Thread::isAlive)
                    .map(t -> t.getName() + " " + t.getState()).collect(Collectors.toList());
            if (states.stream().allMatch(s -> s.endsWith(" " + Thread.State.WAITING))) {
                return;
            }
            Thread.sleep(10); // polling a condition with a deadline, not synchronising on time
        }
        throw new AssertionError("the watcher still has a timer while nothing is watched: " + states);
    }

    @Test
    void anIdleWatcherHasNoTimerAndStartsPollingAtTheFirstWatch() throws Exception {
        Set<Thread> before = watcherThreads();
        try (ChannelWatcher watcher = new ChannelWatcher(GRACE)) {
            Set<Thread> ours = new HashSet<>(watcherThreads());
            ours.removeAll(before);
            awaitNoTimerIn(ours);

            CountDownLatch polled = new CountDownLatch(3);
            watcher.watch("healthy", () -> {
                polled.countDown();
                return null;
            }, e -> { });
            assertTrue(polled.await(10, TimeUnit.SECONDS), "a watched channel is polled");
            assertTrue(watcher.polling());

            watcher.unwatch("healthy");
            assertEquals(false, watcher.polling(), "the poll stops with the last unwatch");
            ours = new HashSet<>(watcherThreads());
            ours.removeAll(before);
            awaitNoTimerIn(ours);
        }
    }

    @Test
    void aFailedChannelIsReportedNoEarlierThanItsGraceAndThenThePollStops() throws Exception {
        Set<Thread> before = watcherThreads();
        try (ChannelWatcher watcher = new ChannelWatcher(GRACE)) {
            AtomicLong firstBad = new AtomicLong();
            AtomicReference<Throwable> reported = new AtomicReference<>();
            AtomicLong reportedAt = new AtomicLong();
            CountDownLatch failed = new CountDownLatch(1);
            watcher.watch("broken", () -> {
                firstBad.compareAndSet(0, System.nanoTime());
                return ChannelWatcher.Problem.mayRecover("no path");
            }, e -> {
                reportedAt.set(System.nanoTime());
                reported.set(e);
                failed.countDown();
            });
            assertTrue(failed.await(10, TimeUnit.SECONDS), "the failed channel was not reported");
            assertEquals("no path", reported.get().getMessage());
            assertTrue(reportedAt.get() - firstBad.get() >= GRACE.toNanos(), "reported before its grace ran out");
            assertEquals(0, watcher.size());
            // The poll ends with the last watched channel; polled until then, since the report runs inside a poll.
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
            while (watcher.polling() && System.nanoTime() < deadline) {
                Thread.onSpinWait();
            }
            assertEquals(false, watcher.polling());
            Set<Thread> ours = new HashSet<>(watcherThreads());
            ours.removeAll(before);
            awaitNoTimerIn(ours);
        }
    }

    /** A grace no test waits out: a report within the test's wait can only come from a definite verdict. */
    private static final Duration LONG_GRACE = Duration.ofSeconds(60);

    @Test
    void aDefiniteFailureIsReportedAtTheNextPollNotAfterTheGrace() throws Exception {
        try (ChannelWatcher watcher = new ChannelWatcher(LONG_GRACE)) {
            AtomicReference<Throwable> reported = new AtomicReference<>();
            CountDownLatch failed = new CountDownLatch(1);
            watcher.watch("dead backend", () -> ChannelWatcher.Problem.definite("backend heartbeat still"), e -> {
                reported.set(e);
                failed.countDown();
            });
            assertTrue(failed.await(10, TimeUnit.SECONDS),
                    "a definite failure was not reported within 10 s (grace " + LONG_GRACE + ")");
            assertEquals("backend heartbeat still", reported.get().getMessage());
            assertEquals(0, watcher.size());
        }
    }

    @Test
    void aFlappingPathKeepsItsGraceAndADefiniteVerdictAfterItIsReportedAtOnce() throws Exception {
        try (ChannelWatcher watcher = new ChannelWatcher(LONG_GRACE)) {
            AtomicLong polls = new AtomicLong();
            CountDownLatch flapped = new CountDownLatch(1);
            AtomicReference<Throwable> reported = new AtomicReference<>();
            AtomicLong reportedAtPoll = new AtomicLong(-1);
            CountDownLatch failed = new CountDownLatch(1);
            // Polls 1-12: down, up on every fourth (a path that flaps and comes back); then definitely gone.
            watcher.watch("flapping", () -> {
                long n = polls.incrementAndGet();
                if (n <= 12) {
                    if (n == 12) {
                        flapped.countDown();
                    }
                    return n % 4 == 0 ? null : ChannelWatcher.Problem.mayRecover("path reconnecting");
                }
                return ChannelWatcher.Problem.definite("storage gone");
            }, e -> {
                reportedAtPoll.set(polls.get());
                reported.set(e);
                failed.countDown();
            });
            assertTrue(flapped.await(10, TimeUnit.SECONDS), "the watcher did not poll 12 times within 10 s");
            assertTrue(failed.await(10, TimeUnit.SECONDS), "the definite verdict after the flaps was not reported");
            assertEquals("storage gone", reported.get().getMessage(), "a flap was reported as a failure");
            assertEquals(13, reportedAtPoll.get(), "reported at the first definite poll");
        }
    }
}
