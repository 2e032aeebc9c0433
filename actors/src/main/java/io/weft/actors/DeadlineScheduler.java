package io.weft.actors;

import com.typesafe.config.Config;
import java.io.Closeable;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import java.util.concurrent.ThreadFactory;
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
 * order). The thread parks until the first deadline; scheduling a timer wakes it only when the new timer becomes the
 * first. A due timer is handed to its {@link ExecutionContext}; the user's task never runs on this thread unless the
 * context itself runs tasks in the caller. A timer fires no earlier than its delay, and late only by the operating
 * system's wake-up latency and the context's queue.
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

    private final LoggingAdapter log;
    private final ReentrantLock lock = new ReentrantLock();
    /** Signalled when the first deadline moves earlier or the scheduler closes. */
    private final Condition firstChanged = lock.newCondition();
    /** Pending timers, earliest first; guarded by {@link #lock}. */
    private final TreeSet<Timer> pending = new TreeSet<>();
    private long nextSequence; // guarded by lock: ties between equal deadlines
    private boolean closed; // guarded by lock
    private final Thread thread;

    /** The constructor Pekko calls for {@code pekko.scheduler.implementation}. */
    public DeadlineScheduler(Config config, LoggingAdapter log, ThreadFactory threadFactory) {
        this.log = log;
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
        return enqueue(new Timer(runnable, executor, Repeat.NONE, 0), delay.toNanos());
    }

    /** Fixed rate (Pekko's {@code scheduleAtFixedRate} calls this). */
    @Override
    public Cancellable schedule(FiniteDuration initialDelay, FiniteDuration interval, Runnable runnable,
                                ExecutionContext executor) {
        return enqueue(new Timer(runnable, executor, Repeat.FIXED_RATE, checkPeriod(interval)),
                initialDelay.toNanos());
    }

    @Override
    public Cancellable scheduleWithFixedDelay(FiniteDuration initialDelay, FiniteDuration delay, Runnable runnable,
                                              ExecutionContext executor) {
        return enqueue(new Timer(runnable, executor, Repeat.FIXED_DELAY, checkPeriod(delay)),
                initialDelay.toNanos());
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
            timer.deadline = saturatedAdd(now, Math.max(0, delayNanos));
            timer.sequence = nextSequence++;
            pending.add(timer);
            if (pending.first() == timer) {
                firstChanged.signal();
            }
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
            timer.deadline = deadline;
            timer.sequence = nextSequence++;
            pending.add(timer);
            if (pending.first() == timer) {
                firstChanged.signal();
            }
            return true;
        } finally {
            lock.unlock();
        }
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
                        firstChanged.awaitUninterruptibly();
                        continue;
                    }
                    long now = System.nanoTime();
                    while (!pending.isEmpty() && pending.first().deadline - now <= 0) {
                        due.add(pending.pollFirst());
                    }
                    if (due.isEmpty()) {
                        firstChanged.awaitNanos(pending.first().deadline - now);
                    }
                }
                if (closed) {
                    return;
                }
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
        final AtomicInteger state = new AtomicInteger(PENDING);
        long deadline; // guarded by lock while in `pending`; the thread that runs the timer owns it otherwise
        long sequence; // same

        Timer(Runnable task, ExecutionContext executor, Repeat repeat, long periodNanos) {
            this.task = task;
            this.executor = executor;
            this.repeat = repeat;
            this.periodNanos = periodNanos;
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
