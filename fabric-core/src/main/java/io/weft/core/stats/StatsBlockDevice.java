package io.weft.core.stats;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.ForwardingBlockDevice;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Measures every request of the device it wraps into an {@link IoStats}, without allocating per request.
 *
 * <p>A request needs its start time and the caller's tag and completion back when it completes. These live in a
 * fixed pool of in-flight slots (parallel arrays); the slot index is the tag handed to the wrapped device, and this
 * object is the completion it calls. Free slots form a lock-free stack whose head packs a version counter next to
 * the index, so a slot taken and returned between a reader's load and its CAS cannot be mistaken for the old head.
 *
 * <p>The tag handed to the wrapped device is {@code generation << 32 | slot}; the slot's generation is bumped each
 * time it is taken, so {@link #cancel} (which translates the caller's tag and completion to that tag) can never
 * reach a later request that reuses the slot.
 *
 * <p>{@code info}, {@code describeExtents} and {@code close} go straight to the wrapped device
 * ({@link ForwardingBlockDevice}).
 *
 * <p>When every slot is busy the request is passed through untracked (counted in ops and bytes, not in latency or
 * errors; {@link IoStatsSnapshot#untracked()} says how often), so statistics never throttle IO.
 */
public final class StatsBlockDevice extends ForwardingBlockDevice implements IoCompletion {
    /** Default number of requests measured at once; NBD clients rarely exceed a queue depth of 128 per connection. */
    public static final int DEFAULT_SLOTS = 1024;
    private static final int EMPTY = -1;

    private final IoStats stats;

    private final long[] startNanos;
    private final long[] callerTags;
    private final IoCompletion[] callerCompletions;
    private final IoOp[] ops;
    private final int[] lengths;
    private final int[] nextFree;
    private final int[] generations;
    /** High 32 bits: version; low 32 bits: index of the first free slot, or {@link #EMPTY}. */
    private final AtomicLong freeHead;

    public StatsBlockDevice(BlockDevice delegate, IoStats stats) {
        this(delegate, stats, DEFAULT_SLOTS);
    }

    public StatsBlockDevice(BlockDevice delegate, IoStats stats, int slots) {
        super(delegate);
        if (slots < 1) {
            throw new IllegalArgumentException("slots must be >= 1: " + slots);
        }
        this.stats = stats;
        this.startNanos = new long[slots];
        this.callerTags = new long[slots];
        this.callerCompletions = new IoCompletion[slots];
        this.ops = new IoOp[slots];
        this.lengths = new int[slots];
        this.nextFree = new int[slots];
        this.generations = new int[slots];
        for (int i = 0; i < slots; i++) {
            nextFree[i] = i + 1 < slots ? i + 1 : EMPTY;
        }
        this.freeHead = new AtomicLong(0);
    }

    public IoStats stats() {
        return stats;
    }

    @Override
    public void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                       IoCompletion completion) {
        if (op == null) {
            // Malformed; the device refuses it. Nothing to measure.
            delegate.submit(op, offset, length, flags, buffer, tag, completion);
            return;
        }
        int slot = acquireSlot();
        if (slot == EMPTY) {
            stats.recordUntracked(op, length);
            delegate.submit(op, offset, length, flags, buffer, tag, completion);
            return;
        }
        callerTags[slot] = tag;
        callerCompletions[slot] = completion;
        ops[slot] = op;
        lengths[slot] = length;
        startNanos[slot] = stats.begin();
        int generation = generations[slot] + 1;
        generations[slot] = generation;
        delegate.submit(op, offset, length, flags, buffer, ((long) generation << 32) | slot, this);
    }

    /**
     * Forwards the cancel: as it is (an untracked request went through with the caller's own tag and completion),
     * and translated to the slot's tag for a tracked one. Control path: scans the slots.
     */
    @Override
    public void cancel(long tag, IoCompletion completion) {
        delegate.cancel(tag, completion);
        for (int slot = 0; slot < callerCompletions.length; slot++) {
            int generation = generations[slot];
            if (callerCompletions[slot] == completion && callerTags[slot] == tag) {
                // A slot released and retaken meanwhile has a newer generation: this tag then names nothing.
                delegate.cancel(((long) generation << 32) | slot, this);
            }
        }
    }

    /** Completion of the wrapped device: the tag is our slot index. */
    @Override
    public void onComplete(long slotTag, int status) {
        int slot = (int) slotTag;
        long tag = callerTags[slot];
        IoCompletion completion = callerCompletions[slot];
        IoOp op = ops[slot];
        int length = lengths[slot];
        long start = startNanos[slot];
        callerCompletions[slot] = null;
        releaseSlot(slot);
        stats.end(op, length, status, start);
        completion.onComplete(tag, status);
    }

    private int acquireSlot() {
        while (true) {
            long head = freeHead.get();
            int index = (int) head;
            if (index == EMPTY) {
                return EMPTY;
            }
            long next = ((head >>> 32) + 1) << 32 | (nextFree[index] & 0xffffffffL);
            if (freeHead.compareAndSet(head, next)) {
                return index;
            }
        }
    }

    private void releaseSlot(int index) {
        while (true) {
            long head = freeHead.get();
            nextFree[index] = (int) head;
            long next = ((head >>> 32) + 1) << 32 | (index & 0xffffffffL);
            if (freeHead.compareAndSet(head, next)) {
                return;
            }
        }
    }

    /**
     * Not forwarded, as before {@link ForwardingBlockDevice} existed: the measured device's completions keep arriving
     * on its own threads. Forwarding would let a shared-memory device deliver them on the NBD reader's thread (likely
     * faster) — a behaviour change of its own, not part of extracting the base class.
     */
    @Override
    public void awaitCompletions(long maxWaitNanos) {
    }
}
