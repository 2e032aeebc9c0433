package io.weft.cxl;

import java.util.Arrays;
import java.util.concurrent.locks.LockSupport;
import org.agrona.concurrent.Agent;
import org.agrona.concurrent.AgentRunner;
import org.agrona.concurrent.BusySpinIdleStrategy;

/**
 * Client-side duty cycle shared by many blkdevs: runs the {@link BlkdevCompletions} of every blkdev assigned to it.
 * A process runs {@link CxlOptions#completionAgents()} of them per region (see {@link CxlHost}), so threads and idle
 * wake-ups do not grow with the number of devices: with nothing in flight on any member the agent sleeps up to one
 * heartbeat interval, and a submitter that leaves a request behind unparks it ({@link #wake}).
 *
 * <p>Membership (control path, any thread): {@link #add} and {@link #remove} replace the member array (copy on
 * write). {@link #remove} returns only once no duty cycle can still be running the removed blkdev's channels: a
 * cycle counts itself started (volatile) <em>before</em> it reads the array and finished after, and the remover,
 * after publishing the new array, waits until every cycle started so far has finished. From then on the channels
 * are the remover's alone (it drains and detaches them). A blkdev driven by its own invoker
 * ({@link BlkdevOptions#useInvoker()}) gets a private agent of its own, never started on a thread.
 */
final class CompletionAgent implements Agent {
    private static final BlkdevCompletions[] NONE = new BlkdevCompletions[0];

    private final String name;
    private volatile BlkdevCompletions[] members = NONE;
    /** Duty cycles begun (incremented before the member array is read) and finished; written by the agent only. */
    private volatile long cyclesStarted;
    private volatile long cyclesFinished;
    private HotWindowIdleStrategy idle;
    private AgentRunner runner;
    private volatile Thread thread;
    /** How often close found the thread still running after {@link #CLOSE_RETRY_MILLIS} (it had to be interrupted). */
    private volatile int closeRetries;
    /** Set by {@link #close}: the agent no longer sleeps, so the runner's stop is seen at the next duty cycle. */
    private volatile boolean closing;
    private static final int CLOSE_RETRY_MILLIS = 5_000;

    CompletionAgent(String name) {
        this.name = name;
    }

    /** Starts this agent on its own thread with the options' idle strategy (hot window, then a parked sleep). */
    CompletionAgent start(CxlOptions options) {
        idle = options.newIdleStrategy(this::hasInFlight, new HotWindowIdleStrategy.Sleeper() {
            @Override
            public boolean announce() {
                // A stop request is carried out before the agent sleeps; a closing agent does not sleep at all.
                return !closing && !stopPending();
            }

            @Override
            public void sleep(long maxNs) {
                // The doorbell of HotWindowIdleStrategy's sleep stage: wake() unparks this thread.
                LockSupport.parkNanos(maxNs);
            }
        });
        runner = new AgentRunner(idle, t -> System.err.println("cxl completion error: " + t), null, this);
        thread = AgentRunner.startOnThread(runner);
        return this;
    }

    /** Blkdevs served; used to assign a new blkdev to the least loaded agent. */
    int memberCount() {
        return members.length;
    }

    synchronized void add(BlkdevCompletions member) {
        BlkdevCompletions[] old = members;
        BlkdevCompletions[] next = Arrays.copyOf(old, old.length + 1);
        next[old.length] = member;
        members = next;
    }

    /**
     * Removes {@code member}; returns once no duty cycle still runs it, or false when the agent did not finish its
     * current cycle within {@code timeoutNs} (a callback that blocks): the caller then proceeds anyway, as a stop
     * with a dead agent does.
     */
    boolean remove(BlkdevCompletions member, long timeoutNs) {
        synchronized (this) {
            BlkdevCompletions[] old = members;
            int at = -1;
            for (int i = 0; i < old.length; i++) {
                if (old[i] == member) {
                    at = i;
                }
            }
            if (at < 0) {
                return true;
            }
            BlkdevCompletions[] next = new BlkdevCompletions[old.length - 1];
            System.arraycopy(old, 0, next, 0, at);
            System.arraycopy(old, at + 1, next, at, old.length - at - 1);
            members = next;
        }
        long started = cyclesStarted; // every cycle that may have read the old array has started by now
        long deadline = System.nanoTime() + timeoutNs;
        while (cyclesFinished < started) {
            if (System.nanoTime() - deadline > 0) {
                return false;
            }
            BusySpinIdleStrategy.INSTANCE.idle(); // a control-thread wait with a deadline; stateless
        }
        return true;
    }

    /** Ends a sleep now if the agent may be parked (no system call while it is busy). */
    void wake() {
        HotWindowIdleStrategy i = idle;
        Thread t = thread;
        if (i != null && t != null && i.mayPark()) {
            LockSupport.unpark(t);
        }
    }

    /** Ends a sleep now, unconditionally (a stop request must not wait out a heartbeat interval). */
    void wakeNow() {
        Thread t = thread;
        if (t != null) {
            LockSupport.unpark(t);
        }
    }

    /** Stops the thread (after its members are gone). */
    void close() {
        closing = true;
        wakeNow(); // asleep for up to a heartbeat otherwise: the runner would wait out its retry timeout
        if (runner != null) {
            runner.close(CLOSE_RETRY_MILLIS, t -> closeRetries++);
        }
    }

    /** Closes that had to wait out {@link #CLOSE_RETRY_MILLIS} and interrupt the thread (tests). */
    int closeRetries() {
        return closeRetries;
    }

    private boolean hasInFlight() {
        for (BlkdevCompletions m : members) {
            if (m.hasInFlight()) {
                return true;
            }
        }
        return false;
    }

    private boolean stopPending() {
        for (BlkdevCompletions m : members) {
            if (m.stopPending()) {
                return true;
            }
        }
        return false;
    }

    @Override
    public int doWork() {
        long started = cyclesStarted + 1;
        cyclesStarted = started; // before the member array is read: see remove
        BlkdevCompletions[] current = members;
        long now = System.nanoTime();
        int work = 0;
        for (BlkdevCompletions m : current) {
            work += m.doWork(now);
        }
        cyclesFinished = started;
        return work;
    }

    @Override
    public void onClose() {
        cyclesFinished = cyclesStarted; // a removal waiting on this thread must not wait for a cycle that never ends
    }

    @Override
    public String roleName() {
        return name;
    }
}
