package io.weft.cxl;

import io.weft.cxl.layout.ChannelLayout;
import io.weft.cxl.map.Futex;
import java.util.concurrent.locks.LockSupport;
import org.agrona.concurrent.Agent;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * Storage-side duty cycle: serves a fixed set of channels; a fenced channel is skipped, the others keep going.
 *
 * <p>Deep sleep ({@link HotWindowIdleStrategy.Sleeper}): the agent marks every channel's doorbell asleep, re-checks
 * for work, and sleeps on the first channel's doorbell word (a process-shared futex) for up to one heartbeat
 * interval. A client that publishes a submission and finds its channel's doorbell asleep clears it, clears the word
 * named by {@link ChannelLayout#DOORBELL_SEGMENT} and wakes the sleeper. Where the futex is unavailable the agent
 * parks for {@code fallbackParkNs} instead (bounded wake-up latency, more idle wake-ups).
 */
final class HandlerAgent implements Agent, HotWindowIdleStrategy.Sleeper {
    private final String name;
    private final ChannelHandler[] handlers;
    private final UnsafeBuffer doorbell;
    private final Futex futex;
    private final long fallbackParkNs;
    private volatile Thread thread;
    /** Set when the backend closes: no more deep sleeps, so the runner's close is not held up by one. */
    private volatile boolean closing;
    /** Test hook: models this process paused (GC, SIGSTOP): the duty cycle does nothing, not even beat. */
    volatile boolean frozen;
    /** Set by the agent once it has seen {@link #frozen}: from then on it writes nothing until thawed. */
    volatile boolean frozenSeen;
    /** Duty cycles run (not frozen); read by tests to know the agent ran after a thaw. One plain store per cycle. */
    final java.util.concurrent.atomic.AtomicLong dutyCycles = new java.util.concurrent.atomic.AtomicLong();

    HandlerAgent(String name, ChannelHandler[] handlers, long fallbackParkNs) {
        this.name = name;
        this.handlers = handlers;
        this.fallbackParkNs = fallbackParkNs;
        ChannelSegment first = handlers[0].segment();
        this.doorbell = first.control;
        this.futex = new Futex(first.control.addressOffset() + ChannelLayout.HANDLER_DOORBELL);
        for (ChannelHandler handler : handlers) {
            handler.useDoorbell(first.segmentId());
        }
    }

    @Override
    public void onStart() {
        thread = Thread.currentThread();
    }

    @Override
    public boolean announce() {
        if (closing) {
            return false;
        }
        if (frozen) {
            return true; // a paused process writes nothing, not even its doorbell flags: see sleep
        }
        for (ChannelHandler handler : handlers) {
            handler.announceSleep(true);
        }
        for (ChannelHandler handler : handlers) {
            if (handler.hasWork()) {
                withdraw();
                return false;
            }
        }
        return true;
    }

    @Override
    public void sleep(long maxNs) {
        if (frozen) {
            LockSupport.parkNanos(Math.min(maxNs, 1_000_000)); // tests only: idle without a spin or a doorbell
            return;
        }
        if (futex.available()) {
            futex.await(ChannelLayout.DOORBELL_ASLEEP, maxNs);
        }
        if (!futex.available()) {
            LockSupport.parkNanos(Math.min(maxNs, fallbackParkNs));
        }
        withdraw();
    }

    private void withdraw() {
        for (ChannelHandler handler : handlers) {
            handler.announceSleep(false);
        }
    }

    /** From another thread in this process (close, channel reset): ends a deep sleep now. */
    void wake(boolean close) {
        if (close) {
            closing = true;
        }
        if (handlers[0].holdsClaim()) {
            doorbell.putIntVolatile(ChannelLayout.HANDLER_DOORBELL, ChannelLayout.DOORBELL_AWAKE);
        }
        futex.wakeAll();
        Thread t = thread;
        if (t != null) {
            LockSupport.unpark(t);
        }
    }

    @Override
    public int doWork() {
        if (frozen) {
            frozenSeen = true;
            return 0;
        }
        if (frozenSeen) {
            frozenSeen = false; // a volatile store only on a thaw, not every duty cycle
        }
        dutyCycles.lazySet(dutyCycles.get() + 1);
        long now = System.nanoTime();
        int work = 0;
        for (ChannelHandler handler : handlers) {
            work += handler.doWork(now);
        }
        return work;
    }

    @Override
    public void onClose() {
        for (ChannelHandler handler : handlers) {
            handler.stop();
        }
    }

    @Override
    public String roleName() {
        return name;
    }
}
