package io.weft.cxl;

/**
 * Decides whether heartbeat counters published by other processes are still moving, using only this process's own
 * monotonic clock ({@link System#nanoTime()}): no wall clock, no clock synchronisation between hosts. A counter that
 * has not changed for {@code timeoutNs} of local time is dead. A counter first seen just now is presumed alive until
 * a full timeout has passed without change.
 */
public final class LivenessTracker {
    private final long timeoutNs;
    private final long[] lastValue;
    private final long[] lastChangeNs;
    private final boolean[] seen;

    public LivenessTracker(int slots, long timeoutNs) {
        this.timeoutNs = timeoutNs;
        this.lastValue = new long[slots];
        this.lastChangeNs = new long[slots];
        this.seen = new boolean[slots];
    }

    public synchronized void observe(int slot, long counter, long nowNs) {
        if (!seen[slot] || lastValue[slot] != counter) {
            seen[slot] = true;
            lastValue[slot] = counter;
            lastChangeNs[slot] = nowNs;
        }
    }

    /** Forget a slot (its object was cleared or re-created). */
    public synchronized void reset(int slot) {
        seen[slot] = false;
    }

    /** Dead: observed, and unchanged for at least the timeout. */
    public synchronized boolean isDead(int slot, long nowNs) {
        return seen[slot] && nowNs - lastChangeNs[slot] >= timeoutNs;
    }

    /** Local nanoseconds since the counter last moved, or -1 if never observed. */
    public synchronized long silentForNs(int slot, long nowNs) {
        return seen[slot] ? nowNs - lastChangeNs[slot] : -1;
    }
}
