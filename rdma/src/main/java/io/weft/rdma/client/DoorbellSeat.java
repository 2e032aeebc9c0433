package io.weft.rdma.client;

import io.weft.rdma.verbs.CompletionHandler;
import io.weft.rdma.verbs.CompletionQueue;
import java.lang.invoke.VarHandle;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;

/**
 * The doorbell of one client queue's completion queue, shared by the two kinds of thread that may sleep until its
 * answers arrive: the queue agent (its {@code DoorbellIdleStrategy} parks here) and a submitter waiting for its own
 * request ({@link ClientQueue}, submitter assist). A completion queue sleeps one thread at a time (the soft provider's
 * selector serialises {@code select}; its {@code sleeping} flag names one sleeper), and the thread an answer wakes
 * should be the one that reaps it, so sleeping on it is a <i>seat</i> taken by CAS:
 * <pre>
 *   FREE ──agent parks──────► AGENT ─────woken (traffic, ring, bound, a submitter wants the seat)──► FREE
 *   FREE ──submitter waits──► SUBMITTER ──its answer, a ring, its cap──────────────────────────────► FREE
 * </pre>
 * An agent that finds the seat taken, or wanted, parks on its own thread instead ({@link LockSupport}), woken by
 * {@link #wakeup()} or its park bound; so a submitter that leaves requests for the agent while it is parked off the
 * seat rings it ({@link #agentSeated()}). A submitter that finds the agent seated marks the seat wanted and wakes it
 * (one agent wake-up; the agent then stays off the seat while submitters keep taking it).
 *
 * <p>{@link #poll}, {@link #flush}, {@link #name} and {@link #close} are the queue's own; only the role holder polls.
 */
final class DoorbellSeat implements CompletionQueue {
    private static final int FREE = 0;
    private static final int AGENT = 1;
    private static final int SUBMITTER = 2;

    private final CompletionQueue cq;
    private final AtomicInteger seat = new AtomicInteger(FREE);
    /** A submitter waits for the agent to leave the seat: the agent does not take it again meanwhile. */
    private volatile boolean wanted;
    /** Set by {@link #wakeup()}; cleared by a submitter when it takes the queue's role (it acts on rings it saw). */
    private volatile boolean rung;
    /** The agent while it is parked off the seat, or null. */
    private volatile Thread parkedAgent;
    /** The work the current sleeper checks before it sleeps (set by the sleeper; wrapped without allocation). */
    private BooleanSupplier agentWork;
    private BooleanSupplier submitterWork;
    private final BooleanSupplier agentWakes = () -> wanted || agentWork.getAsBoolean();
    private final BooleanSupplier submitterWakes = () -> rung || submitterWork.getAsBoolean();

    DoorbellSeat(CompletionQueue cq) {
        this.cq = cq;
    }

    /**
     * Agent (its idle strategy): sleeps on the completion queue if the seat is free and not wanted, else on its own
     * thread; either way until woken, {@code pendingWork} or {@code timeoutNanos}.
     */
    @Override
    public void await(long timeoutNanos, BooleanSupplier pendingWork) {
        if (!wanted && seat.compareAndSet(FREE, AGENT)) {
            try {
                agentWork = pendingWork;
                cq.await(timeoutNanos, agentWakes);
            } finally {
                seat.set(FREE);
            }
            return;
        }
        parkedAgent = Thread.currentThread();
        VarHandle.fullFence(); // pairs with wakeup(): a ring after this look at the work unparks this thread
        try {
            if (!pendingWork.getAsBoolean()) {
                LockSupport.parkNanos(this, timeoutNanos);
            }
        } finally {
            parkedAgent = null;
        }
    }

    /** Any thread: ends the agent's park (on the seat or off it) and a seated submitter's wait. */
    @Override
    public void wakeup() {
        rung = true;
        cq.wakeup();
        Thread agent = parkedAgent;
        if (agent != null) {
            LockSupport.unpark(agent);
        }
    }

    /** Is the agent asleep on the completion queue (it sees answers arrive without a ring)? */
    boolean agentSeated() {
        return seat.get() == AGENT;
    }

    /** Role holder (a submitter): forgets rings so far; it acts on what they announced itself. */
    void clearRung() {
        rung = false;
    }

    boolean rung() {
        return rung;
    }

    /**
     * Role holder (a submitter): takes the seat, asking a seated agent to leave it; polls the queue with
     * {@code whileWaiting} (the answer may come first) until the agent has left or {@code untilNanos} passes.
     *
     * @return true when the caller holds the seat (it must {@link #leave()})
     */
    boolean take(long untilNanos, BooleanSupplier whileWaiting) {
        if (seat.compareAndSet(FREE, SUBMITTER)) {
            return true;
        }
        wanted = true;
        try {
            cq.wakeup();
            while (!seat.compareAndSet(FREE, SUBMITTER)) {
                if (!whileWaiting.getAsBoolean() || System.nanoTime() - untilNanos >= 0) {
                    return false;
                }
                Thread.yield();
            }
            return true;
        } finally {
            wanted = false;
        }
    }

    /** Seated submitter: sleeps on the completion queue until traffic, a ring, {@code pendingWork} or the bound. */
    void sleep(long timeoutNanos, BooleanSupplier pendingWork) {
        submitterWork = pendingWork;
        cq.await(timeoutNanos, submitterWakes);
    }

    /** Seated submitter: gives the seat back. */
    void leave() {
        seat.set(FREE);
    }

    @Override
    public int poll(CompletionHandler handler, int maxCompletions) {
        return cq.poll(handler, maxCompletions);
    }

    @Override
    public boolean flush() {
        return cq.flush();
    }

    @Override
    public String name() {
        return cq.name();
    }

    @Override
    public void close() {
        cq.close();
    }
}
