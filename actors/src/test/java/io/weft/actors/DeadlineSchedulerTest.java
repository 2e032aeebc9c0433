package io.weft.actors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.atomic.AtomicReferenceArray;
import org.apache.pekko.actor.ActorSystem;
import org.apache.pekko.actor.Cancellable;
import org.apache.pekko.actor.Scheduler;
import org.apache.pekko.actor.SchedulerException;
import org.apache.pekko.event.NoLogging$;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import scala.concurrent.ExecutionContext;
import scala.concurrent.duration.FiniteDuration;

/** The {@link Scheduler} contract as Pekko's scheduler keeps it, against {@link DeadlineScheduler}. */
class DeadlineSchedulerTest {
    private static final long WAIT_S = 20;

    private final List<Thread> schedulerThreads = new CopyOnWriteArrayList<>();
    private final ThreadFactory threadFactory = r -> {
        Thread t = new Thread(r, "test-scheduler-1");
        schedulerThreads.add(t);
        return t;
    };
    private final DeadlineScheduler scheduler =
            new DeadlineScheduler(ConfigFactory.empty(), NoLogging$.MODULE$, threadFactory);
    private final ExecutorService pool = Executors.newFixedThreadPool(2, r -> new Thread(r, "test-context"));
    private final List<Throwable> reported = new CopyOnWriteArrayList<>();
    /** Runs tasks on its own threads, like a Pekko dispatcher. */
    private final ExecutionContext context = context(pool);
    /** Runs tasks on the scheduler thread itself: shows what that thread does with a task's failure. */
    private final ExecutionContext callingThread = context(Runnable::run);

    private ExecutionContext context(java.util.concurrent.Executor executor) {
        return new ExecutionContext() {
            @Override
            public void execute(Runnable runnable) {
                executor.execute(runnable);
            }

            @Override
            public void reportFailure(Throwable cause) {
                reported.add(cause);
            }
        };
    }

    @AfterEach
    void tearDown() {
        scheduler.close();
        pool.shutdownNow();
    }

    private static FiniteDuration ms(long millis) {
        return FiniteDuration.create(millis, TimeUnit.MILLISECONDS);
    }

    /** Waits until a once-task scheduled now after {@code delayMs} has run: every timer due earlier was handed on. */
    private void awaitTimerAfter(long delayMs, ExecutionContext on) throws InterruptedException {
        CountDownLatch marker = new CountDownLatch(1);
        scheduler.scheduleOnce(ms(delayMs), marker::countDown, on);
        assertTrue(marker.await(WAIT_S, TimeUnit.SECONDS), "marker timer did not fire");
    }

    @Test
    void onceRunsOnItsContextNoEarlierThanItsDelay() throws Exception {
        CountDownLatch ran = new CountDownLatch(1);
        AtomicLong ranAt = new AtomicLong();
        AtomicReference<String> ranOn = new AtomicReference<>();
        long start = System.nanoTime();
        Cancellable c = scheduler.scheduleOnce(ms(50), () -> {
            ranAt.set(System.nanoTime());
            ranOn.set(Thread.currentThread().getName());
            ran.countDown();
        }, context);
        assertTrue(ran.await(WAIT_S, TimeUnit.SECONDS));
        assertTrue(ranAt.get() - start >= TimeUnit.MILLISECONDS.toNanos(50), "ran before its delay");
        assertEquals("test-context", ranOn.get());
        assertFalse(c.cancel(), "a once-timer that ran cannot be cancelled");
        assertFalse(c.isCancelled());
    }

    @Test
    void zeroAndNegativeDelaysRunAtOnce() throws Exception {
        CountDownLatch ran = new CountDownLatch(2);
        scheduler.scheduleOnce(ms(0), ran::countDown, context);
        scheduler.scheduleOnce(ms(-5), ran::countDown, context);
        assertTrue(ran.await(WAIT_S, TimeUnit.SECONDS));
    }

    @Test
    void fixedRateKeepsToItsDeadlinesAndStopsWhenCancelledDuringARun() throws Exception {
        long intervalMs = 20;
        List<Long> runs = new CopyOnWriteArrayList<>();
        AtomicReference<Cancellable> handle = new AtomicReference<>();
        CountDownLatch fifth = new CountDownLatch(1);
        AtomicReference<Boolean> cancelResult = new AtomicReference<>();
        long start = System.nanoTime();
        handle.set(scheduler.scheduleAtFixedRate(ms(10), ms(intervalMs), () -> {
            runs.add(System.nanoTime());
            if (runs.size() == 5) {
                while (handle.get() == null) {
                    Thread.onSpinWait(); // the first runs may beat the assignment
                }
                cancelResult.set(handle.get().cancel());
                fifth.countDown();
            }
        }, context));
        assertTrue(fifth.await(WAIT_S, TimeUnit.SECONDS));
        assertTrue(cancelResult.get(), "cancel during a run stops the next ones");
        assertTrue(handle.get().isCancelled());
        assertFalse(handle.get().cancel(), "only the first cancel counts");
        for (int k = 0; k < runs.size(); k++) {
            long earliest = start + TimeUnit.MILLISECONDS.toNanos(10 + k * intervalMs);
            assertTrue(runs.get(k) >= earliest, "run " + k + " came before its deadline");
        }
        awaitTimerAfter(5 * intervalMs, context);
        assertEquals(5, runs.size(), "ran after it was cancelled");
    }

    @Test
    void fixedDelayWaitsItsDelayAfterEachRunEnds() throws Exception {
        long delayMs = 15;
        List<long[]> runs = new CopyOnWriteArrayList<>(); // {start, end}
        CountDownLatch four = new CountDownLatch(4);
        Cancellable c = scheduler.scheduleWithFixedDelay(ms(0), ms(delayMs), () -> {
            long begin = System.nanoTime();
            // Some work, so a fixed rate would be told apart from a fixed delay.
            long spinUntil = begin + TimeUnit.MILLISECONDS.toNanos(5);
            while (System.nanoTime() < spinUntil) {
                Thread.onSpinWait();
            }
            runs.add(new long[] {begin, System.nanoTime()});
            four.countDown();
        }, context);
        assertTrue(four.await(WAIT_S, TimeUnit.SECONDS));
        assertTrue(c.cancel());
        for (int k = 1; k < 4; k++) {
            assertTrue(runs.get(k)[0] - runs.get(k - 1)[1] >= TimeUnit.MILLISECONDS.toNanos(delayMs),
                    "run " + k + " started before the delay after run " + (k - 1) + " ended");
        }
    }

    @Test
    void cancelBeforeDueMeansItNeverRuns() throws Exception {
        AtomicInteger ran = new AtomicInteger();
        Cancellable once = scheduler.scheduleOnce(ms(30), ran::incrementAndGet, context);
        Cancellable repeated = scheduler.scheduleAtFixedRate(ms(30), ms(10), ran::incrementAndGet, context);
        assertTrue(once.cancel());
        assertTrue(repeated.cancel());
        assertTrue(once.isCancelled());
        assertFalse(once.cancel());
        awaitTimerAfter(80, context);
        assertEquals(0, ran.get());
    }

    @Test
    void equalDelaysRunInTheOrderTheyWereScheduled() throws Exception {
        int n = 500;
        List<Integer> order = new CopyOnWriteArrayList<>();
        for (long delay : new long[] {0, 30}) {
            CountDownLatch round = new CountDownLatch(n);
            for (int i = 0; i < n; i++) {
                int id = i;
                scheduler.scheduleOnce(ms(delay), () -> {
                    order.add(id);
                    round.countDown();
                }, callingThread);
            }
            assertTrue(round.await(WAIT_S, TimeUnit.SECONDS));
        }
        List<Integer> expected = new ArrayList<>();
        for (int round = 0; round < 2; round++) {
            for (int i = 0; i < n; i++) {
                expected.add(i);
            }
        }
        assertEquals(expected, order);
    }

    @Test
    void aTaskThatThrowsIsReportedAndTheThreadGoesOn() throws Exception {
        RuntimeException boom = new IllegalStateException("boom");
        scheduler.scheduleOnce(ms(0), () -> {
            throw boom;
        }, callingThread);
        AtomicInteger repeatedRuns = new AtomicInteger();
        scheduler.scheduleAtFixedRate(ms(0), ms(5), () -> {
            repeatedRuns.incrementAndGet();
            throw boom;
        }, callingThread);
        awaitTimerAfter(50, callingThread); // the thread still runs timers
        assertTrue(schedulerThreads.get(0).isAlive());
        assertEquals(List.of(boom, boom), reported);
        // As with Pekko's scheduler, a repeated task that throws is not run again.
        assertEquals(1, repeatedRuns.get());
    }

    @Test
    void aContextThatRefusesIsReportedAndTheThreadGoesOn() throws Exception {
        java.util.concurrent.RejectedExecutionException refused =
                new java.util.concurrent.RejectedExecutionException("shut down");
        ExecutionContext refusing = new ExecutionContext() {
            @Override
            public void execute(Runnable runnable) {
                throw refused;
            }

            @Override
            public void reportFailure(Throwable cause) {
                reported.add(cause);
            }
        };
        scheduler.scheduleOnce(ms(0), () -> { }, refusing);
        awaitTimerAfter(20, context);
        assertEquals(List.of(refused), reported);
    }

    @Test
    void closeRunsTheTaskRunOnCloseTasksDropsTheRestAndRefusesNewOnes() throws Exception {
        AtomicReference<Thread> ranOnCloseIn = new AtomicReference<>();
        AtomicInteger others = new AtomicInteger();
        scheduler.scheduleOnce(ms(3_600_000), (Scheduler.TaskRunOnClose) () ->
                ranOnCloseIn.set(Thread.currentThread()), context);
        scheduler.scheduleOnce(ms(3_600_000), others::incrementAndGet, context);
        scheduler.scheduleAtFixedRate(ms(3_600_000), ms(1000), others::incrementAndGet, context);
        scheduler.close();
        assertSame(Thread.currentThread(), ranOnCloseIn.get(), "TaskRunOnClose runs in close()");
        assertEquals(0, others.get());
        assertFalse(schedulerThreads.get(0).isAlive(), "close() ends the scheduler thread");
        // Pekko's contract: IllegalStateException caused by a SchedulerException (its dispatchers catch the former).
        IllegalStateException refused = assertThrows(IllegalStateException.class,
                () -> scheduler.scheduleOnce(ms(1), () -> { }, context));
        assertInstanceOf(SchedulerException.class, refused.getCause());
        assertThrows(IllegalStateException.class, () -> scheduler.scheduleOnce(ms(0), () -> { }, context));
        assertThrows(IllegalStateException.class,
                () -> scheduler.scheduleWithFixedDelay(ms(1), ms(1), () -> { }, context));
        scheduler.close(); // a second close is a no-op
    }

    @Test
    void aRepeatedTimerStopsQuietlyWhenTheSchedulerClosesDuringItsRun() throws Exception {
        CountDownLatch running = new CountDownLatch(1);
        CountDownLatch closed = new CountDownLatch(1);
        AtomicInteger runs = new AtomicInteger();
        scheduler.scheduleWithFixedDelay(ms(0), ms(1), () -> {
            runs.incrementAndGet();
            running.countDown();
            try {
                closed.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }, context);
        assertTrue(running.await(WAIT_S, TimeUnit.SECONDS));
        scheduler.close();
        closed.countDown();
        pool.shutdown();
        assertTrue(pool.awaitTermination(WAIT_S, TimeUnit.SECONDS));
        assertEquals(1, runs.get());
        assertEquals(List.of(), reported);
    }

    @Test
    void timersWithinOnesSlackShareOneWakeUp() throws Exception {
        awaitTimerAfter(0, callingThread);
        long roundsBefore = scheduler.dispatchRounds();
        // Slack is a tenth of the delay: the first may run until 220 ms, by when the other two are due too.
        long start = System.nanoTime();
        List<Long> ranAt = new CopyOnWriteArrayList<>();
        CountDownLatch three = new CountDownLatch(3);
        for (long delay : new long[] {200, 205, 210}) {
            scheduler.scheduleOnce(ms(delay), () -> {
                ranAt.add(System.nanoTime() - start);
                three.countDown();
            }, callingThread);
        }
        assertTrue(three.await(WAIT_S, TimeUnit.SECONDS));
        assertEquals(roundsBefore + 1, scheduler.dispatchRounds(), "three timers within the first's slack");
        assertTrue(ranAt.get(2) >= TimeUnit.MILLISECONDS.toNanos(210), "none runs before its own delay");
    }

    @Test
    void noSlackMeansOneWakeUpPerDeadline() throws Exception {
        try (DeadlineScheduler exact = new DeadlineScheduler(
                ConfigFactory.parseString(DeadlineScheduler.MAX_SLACK + " = 0ms"), NoLogging$.MODULE$,
                threadFactory)) {
            CountDownLatch first = new CountDownLatch(1);
            exact.scheduleOnce(ms(0), first::countDown, callingThread);
            assertTrue(first.await(WAIT_S, TimeUnit.SECONDS));
            long roundsBefore = exact.dispatchRounds();
            CountDownLatch two = new CountDownLatch(2);
            exact.scheduleOnce(ms(50), two::countDown, callingThread);
            exact.scheduleOnce(ms(1000), two::countDown, callingThread);
            assertTrue(two.await(WAIT_S, TimeUnit.SECONDS));
            assertEquals(roundsBefore + 2, exact.dispatchRounds());
        }
    }

    @Test
    void repeatedTimersNeedAPositivePeriod() {
        assertThrows(IllegalArgumentException.class,
                () -> scheduler.scheduleAtFixedRate(ms(0), ms(0), () -> { }, context));
        assertThrows(IllegalArgumentException.class,
                () -> scheduler.scheduleWithFixedDelay(ms(0), ms(-1), () -> { }, context));
    }

    /** Many timers, some cancelled: each other one runs exactly once, none before its delay. Seed: weft.test.seed. */
    @Test
    void manyTimersEachRunOnceNoEarlierThanTheirDelay() throws Exception {
        long seed = Long.getLong("weft.test.seed", System.nanoTime());
        System.out.println("DeadlineSchedulerTest.manyTimers seed=" + seed + " (replay: -Dweft.test.seed=" + seed
                + ")");
        Random random = new Random(seed);
        int n = 5000;
        AtomicReferenceArray<Long> ranAt = new AtomicReferenceArray<>(n);
        AtomicInteger[] runs = new AtomicInteger[n];
        long[] earliest = new long[n];
        boolean[] cancelled = new boolean[n];
        Cancellable[] handles = new Cancellable[n];
        CountDownLatch allLive = new CountDownLatch(n);
        for (int i = 0; i < n; i++) {
            int id = i;
            runs[i] = new AtomicInteger();
            long delayMs = random.nextInt(300);
            earliest[i] = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(delayMs);
            handles[i] = scheduler.scheduleOnce(ms(delayMs), () -> {
                ranAt.set(id, System.nanoTime());
                runs[id].incrementAndGet();
                allLive.countDown();
            }, context);
            if (random.nextInt(4) == 0 && handles[i].cancel()) {
                cancelled[i] = true;
                allLive.countDown();
            }
        }
        assertTrue(allLive.await(WAIT_S, TimeUnit.SECONDS), "seed " + seed);
        awaitTimerAfter(350, context);
        for (int i = 0; i < n; i++) {
            assertEquals(cancelled[i] ? 0 : 1, runs[i].get(), "timer " + i + ", seed " + seed);
            if (!cancelled[i]) {
                assertTrue(ranAt.get(i) >= earliest[i], "timer " + i + " ran early, seed " + seed);
            }
        }
    }

    @Test
    void pekkoRunsOnItWhenConfigured() throws Exception {
        ActorSystem system = ActorSystem.create("deadline-test", ConfigFactory.parseString(
                "pekko.scheduler.implementation = io.weft.actors.DeadlineScheduler\n"
                        + "pekko.loggers = [] \n pekko.stdout-loglevel = off"));
        try {
            assertInstanceOf(DeadlineScheduler.class, system.scheduler());
            CountDownLatch ran = new CountDownLatch(1);
            AtomicReference<String> threadName = new AtomicReference<>();
            system.scheduler().scheduleOnce(ms(10), ran::countDown, system.dispatcher());
            assertTrue(ran.await(WAIT_S, TimeUnit.SECONDS));
            for (Thread t : Thread.getAllStackTraces().keySet()) {
                if (t.getName().startsWith("deadline-test-scheduler")) {
                    threadName.set(t.getName());
                }
            }
            // bench/scale and thread dumps find it under the name Pekko's scheduler thread had.
            assertEquals("deadline-test-scheduler-1", threadName.get());
        } finally {
            system.terminate();
            system.getWhenTerminated().toCompletableFuture().get(WAIT_S, TimeUnit.SECONDS);
        }
    }
}
