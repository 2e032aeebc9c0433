package io.weft.actors;

import com.typesafe.config.Config;
import java.io.Closeable;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import org.apache.pekko.actor.Cancellable;
import org.apache.pekko.actor.Scheduler;
import org.apache.pekko.actor.SchedulerException;
import org.apache.pekko.event.LoggingAdapter;
import scala.concurrent.ExecutionContext;
import scala.concurrent.duration.FiniteDuration;

/**
 * Pekko's scheduler for Weft nodes ({@code pekko.scheduler.implementation}): one thread that sleeps until the
 * earliest due timer instead of waking every tick like Pekko's {@code LightArrayRevolverScheduler}. An idle node
 * has few timers and most are seconds apart, so the thread wakes only when one is due (issue 12: the 33 ms tick
 * alone woke every node 30 times a second).
 *
 * <p>Timers wait in a set ordered by deadline, then by the order they were scheduled (equal deadlines run in that
 * order). A due timer is handed to its {@link ExecutionContext}; the user's task never runs on this thread unless the
 * context itself runs tasks in the caller. A timer fires no earlier than its delay.
 *
 * <p>Slack: a node's timers are many and unrelated (cluster gossip and heartbeats, Artery, the Receptionist, leases,
 * asks), ~45 deadlines a second on an idle node; one wake-up each would cost as much as the tick did. So each timer
 * may fire up to a tenth of its delay (or period) late, at most {@code pekko.scheduler.deadline-scheduler.max-slack}
 * (33 ms, what the old tick allowed every timer). The thread wakes at the earliest "latest" moment of any pending
 * timer and then runs every timer already due: timers close together share one wake-up, and fixed-delay timers
 * drift into step with each other. Scheduling a timer wakes the thread only when it must run before the planned
 * wake-up.
 *
 * <p>Semantics follow Pekko's scheduler so the two are interchangeable: a repeated task is rescheduled after it has
 * run (fixed rate: at the previous deadline plus the interval, fixed delay: at its end plus the delay), so a repeated
 * task that throws runs no more; the failure goes to the context's {@code reportFailure}. {@code cancel()} is true
 * only for the call that stopped the timer before it ran (for a once-timer) or before its next run (repeated).
 * {@link #close()} stops the thread, runs the pending tasks that are {@link Scheduler.TaskRunOnClose} on the
 * closing thread, drops the rest, and every later schedule call throws an {@link IllegalStateException} caused by a
 * {@link SchedulerException}, as Pekko's does.
 */
public final class DeadlineScheduler implements Scheduler, Closeable {
    /** Reported as {@link #maxFrequency()}: one timer per millisecond is as fine as Weft asks for. */
    private static final double MAX_FREQUENCY_HZ = 1000.0;
    /** The setting bounding how late a timer may run so that it shares a wake-up with others. */
    public static final String MAX_SLACK = "pekko.scheduler.deadline-scheduler.max-slack";
    private static final long DEFAULT_MAX_SLACK_NANOS = TimeUnit.MILLISECONDS.toNanos(33);
    /** A timer's slack is its delay (or period) divided by this, up to the maximum. */
    private static final long SLACK_DIVISOR = 10;

    private final LoggingAdapter log;
    private final ReentrantLock lock = new ReentrantLock();
    /** Signalled when the first deadline moves earlier or the scheduler closes. */
    private final Condition firstChanged = lock.newCondition();
    /** Pending timers, earliest first; guarded by {@link #lock}. */
    private final TreeSet<Timer> pending = new TreeSet<>();
    private long nextSequence; // guarded by lock: ties between equal deadlines
    private boolean closed; // guarded by lock
    /** When the thread means to wake next (nanoTime), Long.MAX_VALUE while it waits for a timer; guarded by lock. */
    private long plannedWake = Long.MAX_VALUE;
    private long dispatchRounds; // guarded by lock: wake-ups that handed timers on (tests)
    private final long maxSlackNanos;
    private final Thread thread;

    /** The constructor Pekko calls for {@code pekko.scheduler.implementation}. */
    public DeadlineScheduler(Config config, LoggingAdapter log, ThreadFactory threadFactory) {
        this.log = log;
        this.maxSlackNanos = config.hasPath(MAX_SLACK) ? config.getDuration(MAX_SLACK).toNanos()
                : DEFAULT_MAX_SLACK_NANOS;
        if (maxSlackNanos < 0) {
            throw new IllegalArgumentException(MAX_SLACK + " must not be negative");
        }
        this.thread = threadFactory.newThread(this::runDueTimers);
        thread.setDaemon(true); // stopped by close(); a system never terminated must not keep the JVM alive
        thread.start();
    }

    @Override
    public double maxFrequency() {
        return MAX_FREQUENCY_HZ;
    }

    @Override
    public Cancellable scheduleOnce(FiniteDuration delay, Runnable runnable, ExecutionContext executor) {
        return enqueue(new Timer(runnable, executor, Repeat.NONE, 0, slack(delay.toNanos())), delay.toNanos());
    }

    /** Fixed rate (Pekko's {@code scheduleAtFixedRate} calls this). */
    @Override
    public Cancellable schedule(FiniteDuration initialDelay, FiniteDuration interval, Runnable runnable,
                                ExecutionContext executor) {
        long period = checkPeriod(interval);
        return enqueue(new Timer(runnable, executor, Repeat.FIXED_RATE, period, slack(period)),
                initialDelay.toNanos());
    }

    @Override
    public Cancellable scheduleWithFixedDelay(FiniteDuration initialDelay, FiniteDuration delay, Runnable runnable,
                                              ExecutionContext executor) {
        long period = checkPeriod(delay);
        return enqueue(new Timer(runnable, executor, Repeat.FIXED_DELAY, period, slack(period)),
                initialDelay.toNanos());
    }

    private long slack(long delayNanos) {
        return Math.min(maxSlackNanos, Math.max(0, delayNanos) / SLACK_DIVISOR);
    }

    /** Wake-ups that handed at least one timer on (tests: timers close together share one). */
    long dispatchRounds() {
        lock.lock();
        try {
            return dispatchRounds;
        } finally {
            lock.unlock();
        }
    }

    private static long checkPeriod(FiniteDuration period) {
        if (period.toNanos() <= 0) {
            throw new IllegalArgumentException("a repeated task needs a period greater than 0, got " + period);
        }
        return period.toNanos();
    }

    private Timer enqueue(Timer timer, long delayNanos) {
        long now = System.nanoTime();
        lock.lock();
        try {
            if (closed) {
                // As Pekko's scheduler does: its dispatchers catch IllegalStateException when they schedule their
                // own shutdown after the scheduler has closed.
                String why = "cannot enqueue after timer shutdown";
                throw new IllegalStateException(why, new SchedulerException(why));
            }
            add(timer, saturatedAdd(now, Math.max(0, delayNanos)));
        } finally {
            lock.unlock();
        }
        return timer;
    }

    /**
     * Puts a repeated timer back after a run; false when the scheduler has closed meanwhile. The state is checked
     * under the lock so a cancel() racing with this either sees the timer back in the set or keeps it out.
     */
    private boolean requeue(Timer timer, long deadline) {
        lock.lock();
        try {
            if (closed || timer.state.get() != Timer.PENDING) {
                return false;
            }
            add(timer, deadline);
            return true;
        } finally {
            lock.unlock();
        }
    }

    /** Under the lock: queue {@code timer}; wake the thread only if the timer must run before its planned wake-up. */
    private void add(Timer timer, long deadline) {
        timer.deadline = deadline;
        timer.latest = saturatedAdd(deadline, timer.slackNanos);
        timer.sequence = nextSequence++;
        pending.add(timer);
        if (plannedWake == Long.MAX_VALUE || timer.latest - plannedWake < 0) {
            firstChanged.signal();
        }
    }

    /**
     * Under the lock: the earliest moment any pending timer must run by. Only timers due before the best found so far
     * can lower it (a timer's latest is never before its deadline), so the scan stops within one slack of the first.
     */
    private long nextWake() {
        long wake = Long.MAX_VALUE;
        for (Timer t : pending) {
            if (wake != Long.MAX_VALUE && t.deadline - wake >= 0) {
                break;
            }
            if (wake == Long.MAX_VALUE || t.latest - wake < 0) {
                wake = t.latest;
            }
        }
        return wake;
    }

    private void remove(Timer timer) {
        lock.lock();
        try {
            // No signal: the thread then wakes once at the old deadline, finds nothing due and parks again; cheaper
            // than waking it now to re-park.
            pending.remove(timer);
        } finally {
            lock.unlock();
        }
    }

    private static long saturatedAdd(long a, long b) {
        long sum = a + b;
        return ((a ^ sum) & (b ^ sum)) < 0 ? Long.MAX_VALUE : sum;
    }

    /** The scheduler thread: sleep until the first deadline, hand every due timer to its context, repeat. */
    private void runDueTimers() {
        List<Timer> due = new ArrayList<>();
        while (true) {
            lock.lock();
            try {
                while (!closed && due.isEmpty()) {
                    if (pending.isEmpty()) {
                        plannedWake = Long.MAX_VALUE;
                        firstChanged.awaitUninterruptibly();
                        continue;
                    }
                    plannedWake = nextWake();
                    long now = System.nanoTime();
                    if (plannedWake - now > 0) {
                        firstChanged.awaitNanos(plannedWake - now);
                        continue;
                    }
                    while (!pending.isEmpty() && pending.first().deadline - now <= 0) {
                        due.add(pending.pollFirst());
                    }
                }
                if (closed) {
                    return;
                }
                dispatchRounds++;
                plannedWake = Long.MAX_VALUE; // timers scheduled while this round is handed on wake it again
            } catch (InterruptedException e) {
                // Only close() has a reason to interrupt; the loop sees `closed` next.
                continue;
            } finally {
                lock.unlock();
            }
            for (Timer t : due) {
                t.dispatch();
            }
            due.clear();
        }
    }

    /**
     * Stops the thread, runs the pending {@link Scheduler.TaskRunOnClose} tasks here (Pekko's dispatchers shut down
     * that way), drops the others; later schedule calls throw. A timer already handed to its context still runs.
     */
    @Override
    public void close() {
        List<Timer> left;
        lock.lock();
        try {
            if (closed) {
                return;
            }
            closed = true;
            left = new ArrayList<>(pending);
            pending.clear();
            firstChanged.signal();
        } finally {
            lock.unlock();
        }
        if (Thread.currentThread() != thread) {
            try {
                thread.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        for (Timer t : left) {
            if (t.task instanceof Scheduler.TaskRunOnClose && t.state.compareAndSet(Timer.PENDING, Timer.DONE)) {
                try {
                    t.task.run();
                } catch (SchedulerException e) {
                    // a terminated target: nothing to do, as in Pekko's scheduler
                } catch (RuntimeException e) {
                    log.error(e, "exception while running a timer task at scheduler close");
                }
            }
        }
    }

    private enum Repeat { NONE, FIXED_RATE, FIXED_DELAY }

    /** One scheduled task and the handle returned for it. */
    private final class Timer implements Cancellable, Runnable, Comparable<Timer> {
        static final int PENDING = 0; // waiting or running; may be cancelled
        static final int CANCELLED = 1;
        static final int DONE = 2; // a once-timer ran, a repeated one stopped by its failure or by close

        final Runnable task;
        final ExecutionContext executor;
        final Repeat repeat;
        final long periodNanos;
        final long slackNanos;
        final AtomicInteger state = new AtomicInteger(PENDING);
        long deadline; // guarded by lock while in `pending`; the thread that runs the timer owns it otherwise
        long latest; // deadline + slack; same
        long sequence; // same

        Timer(Runnable task, ExecutionContext executor, Repeat repeat, long periodNanos, long slackNanos) {
            this.task = task;
            this.executor = executor;
            this.repeat = repeat;
            this.periodNanos = periodNanos;
            this.slackNanos = slackNanos;
        }

        /** On the scheduler thread: hand the timer to its context; a failure there must not end the thread. */
        void dispatch() {
            if (state.get() != PENDING) {
                return;
            }
            try {
                executor.execute(this);
            } catch (Throwable e) {
                if (e instanceof VirtualMachineError) {
                    throw (VirtualMachineError) e;
                }
                state.compareAndSet(PENDING, DONE);
                reportFailure(e);
            }
        }

        /** On the context: the user's task, then the next deadline of a repeated timer. */
        @Override
        public void run() {
            if (repeat == Repeat.NONE) {
                if (state.compareAndSet(PENDING, DONE)) {
                    task.run();
                }
                return;
            }
            if (state.get() != PENDING) {
                return;
            }
            try {
                task.run();
            } catch (SchedulerException e) {
                state.compareAndSet(PENDING, DONE); // the target is gone, as in Pekko's scheduler
                return;
            } catch (RuntimeException | Error e) {
                state.compareAndSet(PENDING, DONE);
                throw e;
            }
            long next = repeat == Repeat.FIXED_RATE
                    // a late run does not shift later ones, but never runs them twice at once
                    ? Math.max(deadline + periodNanos, System.nanoTime() + 1)
                    : saturatedAdd(System.nanoTime(), periodNanos);
            if (!requeue(this, next)) {
                state.compareAndSet(PENDING, DONE);
            }
        }

        private void reportFailure(Throwable e) {
            try {
                executor.reportFailure(e);
            } catch (RuntimeException ignored) {
                log.error(e, "could not hand a due timer to its execution context");
            }
        }

        @Override
        public boolean cancel() {
            if (!state.compareAndSet(PENDING, CANCELLED)) {
                return false;
            }
            remove(this);
            return true;
        }

        @Override
        public boolean isCancelled() {
            return state.get() == CANCELLED;
        }

        @Override
        public int compareTo(Timer o) {
            int byDeadline = Long.compare(deadline - o.deadline, 0); // nanoTime order, overflow-safe
            return byDeadline != 0 ? byDeadline : Long.compare(sequence, o.sequence);
        }
    }
}
