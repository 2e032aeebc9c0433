package io.weft.core.nbd;

import java.lang.invoke.VarHandle;
import java.util.concurrent.locks.LockSupport;
import org.agrona.concurrent.OneToOneConcurrentArrayQueue;

/**
 * Hands request slots from the connection's writer (which wrote their replies) back to its reader (which reuses
 * them), and wakes the reader when it parked waiting for one.
 *
 * <p>The wake-up protocol (Dekker-style; both sides store first, then load what the other side stored):
 * <pre>
 *   reader (awaitAny)                         writer (offer..., then signal)
 *   readerParked = true   (volatile store)    queue.offer(slot)       (release store of the queue's tail)
 *   queue.isEmpty()?      (volatile load)     full fence
 *     yes: park                               readerParked?           (volatile load)
 *   readerParked = false                        yes: unpark(reader)
 * </pre>
 * Either the reader's load sees the slot, or the writer's load sees {@code readerParked}: never neither. The fence
 * on the writer's side is what makes this so. Agrona's one-to-one {@code offer} publishes the tail with a release
 * store, and a release store followed by a load of another variable may be reordered (the JMM allows it; on x86 the
 * store waits in the store buffer while the load goes ahead): without the fence the writer could read a stale
 * {@code false}, skip the unpark, and the reader would park for good with every slot handed back.
 * An unpark that finds the reader not parked leaves a permit, so a later park returns at once: harmless, since
 * every caller re-checks its own condition in a loop.
 */
final class SlotHandback<T> {
    private final OneToOneConcurrentArrayQueue<T> queue;
    private final Thread reader;
    private volatile boolean readerParked;

    SlotHandback(int capacity, Thread reader) {
        this.queue = new OneToOneConcurrentArrayQueue<>(capacity);
        this.reader = reader;
    }

    /** Writer: hands one slot back; call {@link #signal} after a batch. Never fails: capacity covers every slot. */
    void offer(T slot) {
        if (!queue.offer(slot)) {
            throw new IllegalStateException("hand-back queue full: more slots than its capacity");
        }
    }

    /** Writer: wakes the reader if it parked (or is about to park) waiting for slots. */
    void signal(boolean force) {
        VarHandle.fullFence(); // order the offers' release stores before the load of readerParked (see above)
        if (readerParked || force) {
            LockSupport.unpark(reader);
        }
    }

    /** Reader: the next slot handed back, or {@code null}. */
    T poll() {
        return queue.poll();
    }

    /**
     * Reader: parks until a slot is handed back, unless one already is or {@code stop} holds. May return without a
     * slot (a spurious wake-up or a stale permit): callers loop on their own condition.
     */
    void awaitAny(java.util.function.BooleanSupplier stop) {
        readerParked = true;
        try {
            if (queue.isEmpty() && !stop.getAsBoolean()) {
                LockSupport.park(this);
            }
        } finally {
            readerParked = false;
        }
    }
}
