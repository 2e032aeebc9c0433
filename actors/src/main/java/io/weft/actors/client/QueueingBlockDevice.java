package io.weft.actors.client;

import io.weft.core.stats.IoStats;
import io.weft.core.io.BlockDevice;
import io.weft.core.io.DeviceInfo;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoRequests;
import io.weft.core.io.IoStatus;
import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicLong;
import org.agrona.concurrent.ManyToManyConcurrentArrayQueue;

/**
 * The client-side device every NBD export serves: forwards IO to the current path, queues it while there is none,
 * and fails anything older than the io-timeout with EIO, so no request waits forever.
 *
 * <p>Each request occupies one of a fixed set of slots for its lifetime; the slot is the completion handed to the
 * path (tag = generation &lt;&lt; 32 | slot index), so the connected steady state allocates nothing. A slot's state
 * and generation live in one atomic word: whoever moves it out of QUEUED or INFLIGHT first (the path's completion,
 * the timeout sweep, a force close) completes the caller; everyone else sees the CAS fail. A late completion from a
 * dead path therefore never touches a recycled slot.
 *
 * <p>A path that completes with {@link IoStatus#ESHUTDOWN} is going away: the request is queued again for the next
 * path (its deadline still counts from the original submit). Threads: {@link #submit} from any thread; the
 * control methods ({@link #connect}, {@link #disconnect}, {@link #expire}, {@link #close}) from the owning actor.
 */
public final class QueueingBlockDevice implements BlockDevice {
    private static final int FREE = 0;
    private static final int QUEUED = 1;
    private static final int INFLIGHT = 2;
    private static final int DONE = 3;
    private static final long GEN_MASK = 0x7FFF_FFFFL;

    private final Slot[] slots;
    private final ManyToManyConcurrentArrayQueue<Slot> free;
    private final ManyToManyConcurrentArrayQueue<Slot> pending;
    private final IoCompletion router = this::onPathComplete;
    private final long ioTimeoutNanos;
    private final IoStats stats;
    private final AtomicLong inFlight = new AtomicLong();

    /** OPEN accepts IO; DRAINING refuses new IO while submitted IO finishes; CLOSED has failed everything. */
    private static final int OPEN = 0;
    private static final int DRAINING = 1;
    private static final int CLOSED = 2;

    private volatile BlockDevice path;
    private volatile DeviceInfo info;
    private volatile int mode = OPEN;

    /**
     * @param initialInfo  geometry until the first path reports its own
     * @param maxInFlight  slots; a request arriving when all are busy completes with ENOMEM
     * @param ioTimeoutNanos longest a request may wait or be in flight
     */
    public QueueingBlockDevice(DeviceInfo initialInfo, int maxInFlight, long ioTimeoutNanos, IoStats stats) {
        if (maxInFlight < 2) {
            throw new IllegalArgumentException("maxInFlight must be >= 2: " + maxInFlight);
        }
        this.info = initialInfo;
        this.ioTimeoutNanos = ioTimeoutNanos;
        this.stats = stats;
        this.slots = new Slot[maxInFlight];
        this.free = new ManyToManyConcurrentArrayQueue<>(maxInFlight);
        this.pending = new ManyToManyConcurrentArrayQueue<>(maxInFlight);
        for (int i = 0; i < maxInFlight; i++) {
            slots[i] = new Slot(i);
            free.offer(slots[i]);
        }
    }

    @Override
    public DeviceInfo info() {
        return info;
    }

    /** Updates geometry (after a resize on the storage node). */
    public void updateInfo(DeviceInfo newInfo) {
        this.info = newInfo;
    }

    public boolean connected() {
        return path != null;
    }

    /** Requests queued or in flight. */
    public long inFlight() {
        return inFlight.get();
    }

    public IoStats stats() {
        return stats;
    }

    /** Starts using {@code device} as the path and sends it everything queued meanwhile. */
    public void connect(BlockDevice device, DeviceInfo deviceInfo) {
        this.info = deviceInfo;
        this.path = device;
        drain();
    }

    /** No path from now on: new IO queues until {@link #connect} or its io-timeout. */
    public void disconnect() {
        this.path = null;
    }

    @Override
    public void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                       IoCompletion completion) {
        if (mode != OPEN) {
            completion.onComplete(tag, IoStatus.ESHUTDOWN);
            return;
        }
        int status = IoRequests.check(info, op, offset, length, flags);
        if (status != IoStatus.OK) {
            completion.onComplete(tag, status);
            return;
        }
        Slot slot = free.poll();
        if (slot == null) {
            completion.onComplete(tag, IoStatus.ENOMEM);
            return;
        }
        inFlight.incrementAndGet();
        slot.op = op;
        slot.offset = offset;
        slot.length = length;
        slot.flags = flags;
        slot.buffer = buffer;
        slot.callerTag = tag;
        slot.caller = completion;
        slot.startNanos = System.nanoTime();
        long gen = (slot.generation + 1) & GEN_MASK;
        slot.generation = gen;
        BlockDevice current = path;
        if (current != null) {
            slot.stamp.set(stamp(gen, INFLIGHT));
            current.submit(op, offset, length, flags, buffer, (gen << 32) | slot.index, router);
        } else {
            slot.stamp.set(stamp(gen, QUEUED));
            enqueue(slot);
            if (path != null) {
                drain();
            }
        }
        if (mode == CLOSED) {
            // Raced with a force close: make sure this request is not left behind.
            failEverything(IoStatus.EIO);
        }
    }

    private void enqueue(Slot slot) {
        if (!pending.offer(slot)) {
            // Cannot happen (pending has one place per slot), but never lose a request silently.
            finish(slot, slot.generation, QUEUED, IoStatus.EIO);
        }
    }

    @Override
    public void awaitCompletions(long maxWaitNanos) {
        BlockDevice current = path;
        if (current != null) {
            current.awaitCompletions(maxWaitNanos);
        }
    }

    /** Sends queued requests to the path; bounded so a path that bounces them back cannot loop forever. */
    private void drain() {
        Slot slot;
        for (int n = pending.size(); n > 0 && (slot = pending.poll()) != null; n--) {
            BlockDevice current = path;
            long s = slot.stamp.get();
            if ((s & 3) != QUEUED) {
                continue;
            }
            long gen = s >>> 2;
            if (current == null) {
                if (mode == CLOSED) {
                    finish(slot, gen, QUEUED, IoStatus.EIO);
                    continue;
                }
                enqueue(slot);
                return;
            }
            if (slot.stamp.compareAndSet(stamp(gen, QUEUED), stamp(gen, INFLIGHT))) {
                current.submit(slot.op, slot.offset, slot.length, slot.flags, slot.buffer, (gen << 32) | slot.index,
                        router);
            }
        }
    }

    private void onPathComplete(long tag, int status) {
        long index = tag & 0xFFFF_FFFFL;
        if (index >= slots.length) {
            return;
        }
        Slot slot = slots[(int) index];
        long gen = tag >>> 32;
        if (status == IoStatus.ESHUTDOWN && mode != CLOSED) {
            // The path is going away: give the request to the next one rather than failing it.
            // Not resubmitted now (the same dying path would bounce it again): the next connect() or expire()
            // sends it on.
            if (slot.stamp.compareAndSet(stamp(gen, INFLIGHT), stamp(gen, QUEUED))) {
                enqueue(slot);
            }
            return;
        }
        finish(slot, gen, INFLIGHT, status);
    }

    private boolean finish(Slot slot, long gen, int expected, int status) {
        if (!slot.stamp.compareAndSet(stamp(gen, expected), stamp(gen, DONE))) {
            return false;
        }
        IoCompletion caller = slot.caller;
        long callerTag = slot.callerTag;
        IoOp op = slot.op;
        int length = slot.length;
        long latency = System.nanoTime() - slot.startNanos;
        slot.caller = null;
        slot.buffer = null;
        slot.stamp.set(stamp(gen, FREE));
        free.offer(slot);
        inFlight.decrementAndGet();
        stats.record(op, length, status, latency);
        caller.onComplete(callerTag, status);
        return true;
    }

    /**
     * Fails every request older than the io-timeout with EIO: queued ones (no path came back in time) and in-flight
     * ones (the path never answered). Called periodically by the owning actor.
     *
     * @return how many requests were failed
     */
    public int expire(long nowNanos) {
        int failed = 0;
        // Queued requests are only ever taken out of the pending queue by whoever polls them, so a slot never has
        // two queue entries: walk the queue once, failing the expired and putting the rest back.
        for (int n = pending.size(); n > 0; n--) {
            Slot slot = pending.poll();
            if (slot == null) {
                break;
            }
            long s = slot.stamp.get();
            if ((s & 3) != QUEUED) {
                continue;
            }
            if (nowNanos - slot.startNanos > ioTimeoutNanos) {
                if (finish(slot, s >>> 2, QUEUED, IoStatus.EIO)) {
                    failed++;
                }
            } else {
                enqueue(slot);
            }
        }
        if (path != null) {
            drain();
        }
        for (Slot slot : slots) {
            long s = slot.stamp.get();
            if ((s & 3) == INFLIGHT && nowNanos - slot.startNanos > ioTimeoutNanos) {
                if (finish(slot, s >>> 2, INFLIGHT, IoStatus.EIO)) {
                    failed++;
                }
            }
        }
        return failed;
    }

    /** Force close: every queued and in-flight request completes with EIO now; later IO gets ESHUTDOWN. */
    public void forceClose() {
        mode = CLOSED;
        path = null;
        failEverything(IoStatus.EIO);
    }

    private void failEverything(int status) {
        Slot queued;
        while ((queued = pending.poll()) != null) {
            long s = queued.stamp.get();
            if ((s & 3) == QUEUED) {
                finish(queued, s >>> 2, QUEUED, status);
            }
        }
        for (Slot slot : slots) {
            long s = slot.stamp.get();
            if ((s & 3) == INFLIGHT) {
                finish(slot, s >>> 2, INFLIGHT, status);
            }
        }
    }

    /** Stops accepting new IO (ESHUTDOWN); requests already submitted still complete or time out. */
    public void stopAccepting() {
        if (mode == OPEN) {
            mode = DRAINING;
        }
    }

    /** Closes for good: what is still outstanding fails with EIO. Does not close the path (the session owns it). */
    @Override
    public void close() {
        forceClose();
    }

    private static long stamp(long gen, int state) {
        return (gen << 2) | state;
    }

    private static final class Slot {
        final int index;
        final AtomicLong stamp = new AtomicLong(stamp(0, FREE));
        long generation;
        IoOp op;
        long offset;
        int length;
        int flags;
        ByteBuffer buffer;
        long callerTag;
        IoCompletion caller;
        long startNanos;

        Slot(int index) {
            this.index = index;
        }
    }
}
