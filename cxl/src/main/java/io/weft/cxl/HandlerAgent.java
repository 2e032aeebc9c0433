package io.weft.cxl;

import io.weft.cxl.layout.ChannelLayout;
import io.weft.cxl.map.Futex;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.agrona.concurrent.Agent;
import org.agrona.concurrent.AgentRunner;
import org.agrona.concurrent.BusySpinIdleStrategy;

/**
 * Storage-side duty cycle shared by every backend of this process in a region: serves the channels of each
 * {@link Group} (one per backend, or per backend and agent when a backend spreads its channels over several agents);
 * a fenced channel is skipped, the others keep going. A process runs {@link CxlOptions#handlerAgents()} of them per
 * region (see {@link CxlHost}), so threads and idle wake-ups do not grow with the number of backends.
 *
 * <p>Membership: {@link #add} (control thread) publishes a new member array (copy on write) and wakes the agent. A
 * removal is carried out by the agent itself: {@link #remove} flags the group and wakes the agent, which marks its
 * channels stopped, drops it and then sets {@link Group#removed}; the backend frees its segments only after that, so
 * no duty cycle touches a segment that is no longer the backend's.
 *
 * <p>Deep sleep ({@link HotWindowIdleStrategy.Sleeper}): the agent marks every channel's doorbell asleep, re-checks
 * for work, and sleeps on the doorbell word of one of them, the <em>lead</em> channel (a process-shared futex), for
 * up to one heartbeat interval. Every channel names the lead's segment in {@link ChannelLayout#DOORBELL_SEGMENT}; a
 * client that publishes a submission and finds its channel's doorbell asleep clears it, clears the lead's word and
 * wakes the sleeper. The lead is chosen again on the agent's own thread whenever the members change (its backend
 * may have closed), and every channel is re-pointed <em>before</em> the next announcement, so a client that sees
 * "asleep" also sees the current lead. The lead's word belongs to this agent, not to the lead channel's client.
 * Where the futex is unavailable the agent parks for {@code fallbackParkNs} instead.
 */
final class HandlerAgent implements Agent, HotWindowIdleStrategy.Sleeper {
    private static final Group[] NONE = new Group[0];

    /**
     * The channels of one backend that this agent serves. Ownership: the handlers are this agent's from {@link #add}
     * until it sets {@link #removed}; then they are the backend's again (to free their segments).
     */
    static final class Group {
        final ChannelHandler[] handlers;
        /** Set by the backend's close; the agent stops the channels, drops the group and sets {@link #removed}. */
        volatile boolean removeRequested;
        volatile boolean removed;
        /** Test hook: models this process paused (GC, SIGSTOP): the group's duty cycle does nothing, not even beat. */
        volatile boolean frozen;
        /** Set by the agent once it has seen {@link #frozen}: from then on it writes nothing until thawed. */
        volatile boolean frozenSeen;
        /** Duty cycles run (not frozen); read by tests to know the agent ran after a thaw. */
        final AtomicLong dutyCycles = new AtomicLong();

        Group(ChannelHandler[] handlers) {
            this.handlers = handlers;
        }
    }

    private final String name;
    private final long fallbackParkNs;
    private volatile Group[] groups = NONE;
    /** Members changed (added, removed, frozen, thawed): choose the lead again before the next sleep. */
    private volatile boolean changed;
    /** The channel whose doorbell word the agent sleeps on (agent thread writes; {@link #wake} reads). */
    private volatile ChannelHandler lead;
    private volatile Futex futex;
    private volatile boolean anyFrozen;
    private volatile Thread thread;
    private AgentRunner runner;
    /** Set when the host closes: no more deep sleeps, so the runner's close is not held up by one. */
    private volatile boolean closing;

    HandlerAgent(String name, long fallbackParkNs) {
        this.name = name;
        this.fallbackParkNs = fallbackParkNs;
    }

    /** Starts this agent on its own thread with the options' idle strategy (hot window, then the doorbell sleep). */
    HandlerAgent start(CxlOptions options) {
        runner = new AgentRunner(options.newIdleStrategy(() -> false, this),
                t -> System.err.println("cxl handler error: " + t), null, this);
        AgentRunner.startOnThread(runner);
        return this;
    }

    /** Channels served; used to spread a new backend over the least loaded agents. */
    int channelCount() {
        int n = 0;
        for (Group g : groups) {
            n += g.handlers.length;
        }
        return n;
    }

    /** Control thread: the agent serves {@code group} from its next duty cycle on. */
    void add(Group group) {
        synchronized (this) {
            Group[] old = groups;
            Group[] next = Arrays.copyOf(old, old.length + 1);
            next[old.length] = group;
            groups = next;
        }
        changed = true;
        wake();
    }

    /**
     * Control thread: asks the agent to stop serving {@code group} and waits until it has (or {@code timeoutNs}
     * passed, e.g. the agent's thread is gone: then false).
     */
    boolean remove(Group group, long timeoutNs) {
        group.removeRequested = true;
        changed = true;
        wake();
        long deadline = System.nanoTime() + timeoutNs;
        while (!group.removed) {
            if (System.nanoTime() - deadline > 0 || runner == null || runner.isClosed()) {
                return group.removed;
            }
            BusySpinIdleStrategy.INSTANCE.idle(); // a control-thread wait with a deadline; stateless
        }
        return true;
    }

    /** Tests: freezes or thaws one group (as if its process were paused); the agent re-chooses its lead. */
    void freeze(Group group, boolean frozen) {
        group.frozen = frozen;
        changed = true;
        wake();
    }

    private synchronized void drop(Group group) {
        Group[] old = groups;
        int at = -1;
        for (int i = 0; i < old.length; i++) {
            if (old[i] == group) {
                at = i;
            }
        }
        if (at < 0) {
            return;
        }
        Group[] next = new Group[old.length - 1];
        System.arraycopy(old, 0, next, 0, at);
        System.arraycopy(old, at + 1, next, at, old.length - at - 1);
        groups = next;
    }

    @Override
    public void onStart() {
        thread = Thread.currentThread();
    }

    @Override
    public int doWork() {
        int work = 0;
        if (changed) {
            changed = false;
            work += membershipChanged();
        }
        long now = System.nanoTime();
        for (Group g : groups) {
            if (g.frozen) {
                g.frozenSeen = true;
                continue;
            }
            if (g.frozenSeen) {
                g.frozenSeen = false; // a volatile store only on a thaw, not every duty cycle
            }
            g.dutyCycles.lazySet(g.dutyCycles.get() + 1);
            for (ChannelHandler handler : g.handlers) {
                work += handler.doWork(now);
            }
        }
        return work;
    }

    /**
     * Agent thread: carries out removals, then chooses the lead among the live groups and points every channel at it.
     */
    private int membershipChanged() {
        int work = 0;
        for (Group g : groups) {
            if (g.removeRequested && !g.removed) {
                for (ChannelHandler handler : g.handlers) {
                    handler.stop();
                }
                drop(g);
                g.removed = true; // the backend may free the segments now: nothing here touches them again
                work++;
            }
        }
        ChannelHandler newLead = null;
        boolean frozen = false;
        for (Group g : groups) {
            frozen |= g.frozen;
            if (!g.frozen && newLead == null) {
                for (ChannelHandler h : g.handlers) {
                    if (h.holdsClaim()) {
                        newLead = h;
                        break;
                    }
                }
            }
        }
        anyFrozen = frozen;
        if (newLead != lead) {
            futex = newLead == null ? null
                    : new Futex(newLead.segment().control.addressOffset() + ChannelLayout.HANDLER_DOORBELL);
            lead = newLead;
        }
        if (newLead != null) {
            for (Group g : groups) {
                if (!g.frozen) {
                    for (ChannelHandler h : g.handlers) {
                        h.useDoorbell(newLead.segment().segmentId()); // before any announcement names it asleep
                    }
                }
            }
        }
        return work;
    }

    @Override
    public boolean announce() {
        if (closing || changed) {
            return false;
        }
        Group[] current = groups;
        for (Group g : current) {
            if (!g.frozen) {
                for (ChannelHandler handler : g.handlers) {
                    handler.announceSleep(true);
                }
            }
        }
        // Re-check after announcing: a request published just before the flags were set is seen now.
        for (Group g : current) {
            if (!g.frozen) {
                for (ChannelHandler handler : g.handlers) {
                    if (handler.hasWork()) {
                        withdraw(current);
                        return false;
                    }
                }
            }
        }
        if (changed) {
            withdraw(current);
            return false;
        }
        return true;
    }

    @Override
    public void sleep(long maxNs) {
        long max = anyFrozen ? Math.min(maxNs, 1_000_000) : maxNs; // tests: a frozen group idles without the doorbell
        Futex f = futex;
        if (f != null && f.available()) {
            f.await(ChannelLayout.DOORBELL_ASLEEP, max);
        } else {
            // No channel to sleep on (no backend yet: woken by add), or no futex (bounded parks).
            LockSupport.parkNanos(f == null ? max : Math.min(max, fallbackParkNs));
        }
        withdraw(groups);
    }

    private void withdraw(Group[] current) {
        for (Group g : current) {
            if (!g.frozen) {
                for (ChannelHandler handler : g.handlers) {
                    handler.announceSleep(false);
                }
            }
        }
    }

    /** From another thread in this process (add, remove, channel reset, close): ends a deep sleep now. */
    void wake() {
        ChannelHandler l = lead;
        Futex f = futex;
        if (l != null && l.holdsClaim()) {
            l.segment().control.putIntVolatile(ChannelLayout.HANDLER_DOORBELL, ChannelLayout.DOORBELL_AWAKE);
        }
        if (f != null) {
            f.wakeAll();
        }
        Thread t = thread;
        if (t != null) {
            LockSupport.unpark(t);
        }
    }

    /** Stops the thread (the host closes, after its backends). */
    void close() {
        closing = true;
        wake();
        if (runner != null) {
            runner.close();
        }
    }

    @Override
    public void onClose() {
        for (Group g : groups) {
            for (ChannelHandler handler : g.handlers) {
                handler.stop();
            }
            g.removed = true;
        }
    }

    @Override
    public String roleName() {
        return name;
    }
}
