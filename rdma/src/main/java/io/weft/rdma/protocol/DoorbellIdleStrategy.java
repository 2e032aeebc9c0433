package io.weft.rdma.protocol;

import io.weft.rdma.RdmaJvmSwitches;
import io.weft.rdma.verbs.CompletionQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.LongSupplier;
import org.agrona.concurrent.IdleStrategy;

/**
 * The one idle strategy of the RDMA threads (client queue agents, storage agents, the session's control thread): an
 * Agrona {@link IdleStrategy} that optionally spins, then yields, then parks on a doorbell — the thread's
 * {@link CompletionQueue}, which wakes on incoming traffic or on {@link #ring()}. An idle thread therefore costs ~0%
 * CPU, and the thread that stops it ({@link #stop()}) does not wait out a long park.
 *
 * <p>The defaults do not spin at all: measured on the shared 2-core machine (see docs/benchmarks-rdma.md), spinning
 * agents of two JVMs starve each other and the rest of the box (qd1 p50 9.7 us without spinning, 112 us with 200
 * spins + 20 yields, 1.1 ms with 2000 spins), while a parked agent is woken by epoll within microseconds. On a
 * dedicated machine with spare cores a short spin can shave the wake-up; set {@code weft.rdma.idle.spins}.
 *
 * <p>Threads: {@link #idle} only on the owner (the thread polling the doorbell's queue); {@link #ring()} and
 * {@link #stop()} from any thread.
 */
public final class DoorbellIdleStrategy implements IdleStrategy {
    /** Empty duty cycles spent spinning before yielding ({@code weft.rdma.idle.spins}). */
    public static final int SPINS = Integer.getInteger(RdmaJvmSwitches.IDLE_SPINS, 0);
    /** Empty duty cycles spent yielding before parking on the doorbell ({@code weft.rdma.idle.yields}). */
    public static final int YIELDS = Integer.getInteger(RdmaJvmSwitches.IDLE_YIELDS, 0);
    /** Longest park while the owner has timers running (requests held): their scan needs a bounded sleep. */
    public static final long BUSY_MAX_PARK_NANOS = TimeUnit.MILLISECONDS.toNanos(10);
    /** Longest park of an owner with nothing in flight: a safety net only, work always rings the doorbell. */
    public static final long IDLE_MAX_PARK_NANOS = TimeUnit.SECONDS.toNanos(1);

    private final CompletionQueue doorbell;
    private final BooleanSupplier pendingWork;
    private final LongSupplier maxParkNanos;
    private final int spins;
    private final int yields;
    private volatile boolean stopped;
    /**
     * Set by {@link #ring()}, cleared by the owner when it parks or skips a park: a ring that comes while the owner is
     * between its last look at its work and its park is not lost (the queue's wake-up only ends a park in progress).
     */
    private volatile boolean rung;
    private int idleCount;

    /**
     * @param doorbell     the owner's completion queue: traffic on its connections and {@link #ring()} end a park
     * @param pendingWork  work handed over without traffic (a ring buffer, a queue); checked after the doorbell has
     *                     announced the park, so work queued by a thread that saw no sleeper is never missed
     * @param maxParkNanos the longest park, asked at each park (short while timers run, long when idle)
     */
    public DoorbellIdleStrategy(CompletionQueue doorbell, BooleanSupplier pendingWork, LongSupplier maxParkNanos) {
        this(doorbell, pendingWork, SPINS, YIELDS, maxParkNanos);
    }

    public DoorbellIdleStrategy(CompletionQueue doorbell, BooleanSupplier pendingWork, int spins, int yields,
                                LongSupplier maxParkNanos) {
        this.doorbell = doorbell;
        this.pendingWork = () -> rung || stopped || pendingWork.getAsBoolean();
        this.maxParkNanos = maxParkNanos;
        this.spins = spins;
        this.yields = yields;
    }

    /** Any thread: ends the owner's park now (work was handed over). Cheap when it is not parked. */
    public void ring() {
        rung = true;
        doorbell.wakeup();
    }

    /** Any thread: the owner is being stopped; it is woken and never parks again. */
    public void stop() {
        stopped = true;
        doorbell.wakeup();
    }

    public boolean stopped() {
        return stopped;
    }

    @Override
    public void idle(int workCount) {
        if (workCount > 0) {
            idleCount = 0;
            return;
        }
        idle();
    }

    @Override
    public void idle() {
        idleCount++;
        if (idleCount <= spins) {
            Thread.onSpinWait();
        } else if (idleCount <= spins + yields) {
            Thread.yield();
        } else if (!stopped) {
            doorbell.await(maxParkNanos.getAsLong(), pendingWork);
            // Whatever rang before this point is seen by the duty cycle that follows (the ring came after its cause).
            rung = false;
        }
    }

    @Override
    public void reset() {
        idleCount = 0;
    }

    @Override
    public String alias() {
        return "spin-yield-doorbell";
    }
}
