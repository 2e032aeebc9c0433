package io.weft.actors.client;

import io.weft.core.stats.IoStats;
import io.weft.core.io.BlockDevice;
import io.weft.core.io.DeviceInfo;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoRequests;
import io.weft.core.io.IoStatus;
import io.weft.core.io.PerThreadIdleStrategy;
import io.weft.core.io.ReadLending;
import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicLong;
import org.agrona.concurrent.BackoffIdleStrategy;
import org.agrona.concurrent.IdleStrategy;
import org.agrona.concurrent.ManyToManyConcurrentArrayQueue;

/**
 * The client-side device every NBD export serves: forwards IO to the current path, queues it while there is none,
 * and fails anything older than the io-timeout with EIO, so no request waits forever.
 *
 * <p>Each request occupies one of a fixed set of slots for its lifetime; the slot is the completion handed to the
 * path (tag = generation &lt;&lt; 32 | slot index), so the connected steady state allocates nothing. A slot's state
 * and generation live in one atomic word ({@code generation << 3 | state}); every transition is a CAS, so the path's
 * completion, the timeout sweep, a force close and a cancel race safely, and a late completion from a dead path
 * (an older generation) never touches a recycled slot.
 *
 * <p>Buffer ownership (docs/architecture.md, "Buffer ownership"): the caller's buffer belongs to the path from
 * submit until the path's completion. So a request the path holds is never completed to the caller by anyone but
 * that completion: the io-timeout ({@link #expire}), {@link #forceClose} and the caller's {@link #cancel} move the
 * slot INFLIGHT &rarr; EXPIRING (or CANCELLING) and call {@code cancel} on the path the slot was submitted to
 * (remembered per slot: the current path may have changed since). The path then completes it — with ECANCELED once
 * it will not touch the buffer any more, which reaches the caller as EIO after an io-timeout or force close and as
 * ECANCELED after the caller's cancel; or with its real status (OK, an error) if it finished first, which reaches the
 * caller unchanged. A queued request (never handed to a path) is completed at once. A path that never answers a
 * cancel keeps its request, and the caller waits for it: the transports bound that with their own deadline (see
 * cxl.md and rdma.md); the sweep does not cancel a request twice.
 *
 * <p>Free slots are a lock-free stack of slot indices whose top carries a version ({@link #takeFreeSlot},
 * {@link #giveBackSlot}): giving a slot back can never fail. (It was a bounded many-to-many queue sized to the slot
 * count, whose offer fails while a concurrent poll has claimed the position it would write but not released it: the
 * slot was then lost for good, and several connections submitting at once lost them until every request was answered
 * ENOMEM, docs/nbd.md.) A request arriving when every slot is busy still completes with ENOMEM: this device is
 * submitted to from completion threads too (a transport's, through a mirror), where waiting could block the thread
 * that frees the slot.
 *
 * <p>Lent READs ({@link ReadLending}): when the current path lends, a lending READ is forwarded to it in a slot of its
 * own, with the same timeout, cancel and force-close handling as any request. Its OK completion hands the path's loan
 * up under a handle of this device (the slot's tag); the slot stays {@code LENT} until the caller gives the loan back
 * ({@link #releaseLoan}), which ends the path's loan on the very path that made it, then frees the slot. A lending
 * READ is not accepted (false: the caller copies) with no path, a path that does not lend or refuses, or no free
 * slot. Queued again after an ESHUTDOWN, it goes to the next path as a lending READ, and fails with EIO if that path
 * does not take it (there is no buffer to copy into).
 *
 * <p>Queued requests wait in a bounded many-to-many queue ({@code pending}) with a place per slot. Invariant: a slot
 * has at most one entry there at any time. It gets one only when it becomes QUEUED (from a fresh slot in
 * {@link #submit}, or from INFLIGHT on an ESHUTDOWN answer, when it has none), and whoever polls the entry either
 * puts it back, sends the request on, or frees the slot; a slot completed while queued (cancel) stays
 * COMPLETED_QUEUED, not FREE, until its entry is polled. So the queue is never full and putting a slot in never
 * fails ({@link #enqueue}: a refused offer is transient and is retried, never answered EIO).
 *
 * <p>A path that completes with {@link IoStatus#ESHUTDOWN} is going away: the request is queued again for the next
 * path (its deadline still counts from the original submit). Threads: {@link #submit} from any thread; the
 * control methods ({@link #connect}, {@link #disconnect}, {@link #expire}, {@link #close}) from the owning actor.
 *
 * <p>Over 600 lines on purpose: every path through here (submit, queue, drain, path completion, timeout, cancel,
 * lending, force close) is a CAS on the same per-slot state word, and keeping all transitions of that one state
 * machine in one class is what lets them be checked against each other.
 */
public final class QueueingBlockDevice implements BlockDevice, ReadLending {
    private static final int FREE = 0;
    private static final int QUEUED = 1;
    private static final int INFLIGHT = 2;
    private static final int DONE = 3;
    /** In flight, given up (io-timeout, force close): cancelled on its path; an ECANCELED answer becomes EIO. */
    private static final int EXPIRING = 4;
    /** In flight, cancelled by the caller: cancelled on its path; ECANCELED passes through. */
    private static final int CANCELLING = 5;
    /** Completed to its caller while its entry is still in the pending queue: freed by whoever polls it. */
    private static final int COMPLETED_QUEUED = 6;
    /** A lending READ completed with its loan handed to the caller: freed when the caller releases the loan. */
    private static final int LENT = 7;
    private static final int STATE_BITS = 3;
    private static final long STATE_MASK = 7;
    private static final long GEN_MASK = 0x7FFF_FFFFL;
    /**
     * An enqueue waiting for a concurrent poll to release its queue position (any thread: submitters, transport
     * completion threads, the owning actor): 100 spins, then yields so a pre-empted poller can run (never parks: the
     * poller releases it within a few instructions of running again). Per thread: Agrona's back-off counts in fields.
     */
    private static final PerThreadIdleStrategy POSITION_RELEASE_WAIT = new PerThreadIdleStrategy(
            () -> new BackoffIdleStrategy(100, Long.MAX_VALUE, 1, 1));

    private final Slot[] slots;
    /** Top of the free-slot stack: {@code version << 32 | (index + 1)}, 0 in the low half when no slot is free. */
    private final AtomicLong freeTop = new AtomicLong();
    /** Per slot: the free slot below it on the stack, as {@code index + 1} (0 = none); valid while it is free. */
    private final int[] nextFree;
    /**
     * Queued requests waiting for a path. Capacity is the slot count (rounded up to a power of two) and a slot is
     * never in it twice, so {@link #enqueue} never finds it full (see there for the transient refusal it waits out).
     */
    private final ManyToManyConcurrentArrayQueue<Slot> pending;
    private final IoCompletion router = this::onPathComplete;
    private final LoanCompletion loanRouter = this::onPathLent;
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
        this.nextFree = new int[maxInFlight];
        this.pending = new ManyToManyConcurrentArrayQueue<>(maxInFlight);
        for (int i = 0; i < maxInFlight; i++) {
            slots[i] = new Slot(i);
            giveBackSlot(slots[i]);
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
        Slot slot = takeFreeSlot();
        if (slot == null) {
            completion.onComplete(tag, IoStatus.ENOMEM);
            return;
        }
        long gen = claim(slot, op, offset, length, flags, buffer, tag, completion, null);
        BlockDevice current = path;
        if (current != null) {
            slot.submittedTo = current;
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
            // Raced with a force close: make sure this request is not left behind (cancelled on its path if it
            // reached one: a cancel that arrives there before the request does is simply a no-op, and the request
            // then completes with its real status).
            failEverything(IoStatus.EIO);
        }
    }

    /**
     * Fills a slot just taken from the free stack with its request, counts it in flight and starts its next
     * generation (returned): a completion carrying an older generation is one this request never sent.
     * Exactly one of {@code caller} (an ordinary request) and {@code loanCaller} (a lending READ) is set.
     */
    private long claim(Slot slot, IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                       IoCompletion caller, LoanCompletion loanCaller) {
        inFlight.incrementAndGet();
        slot.op = op;
        slot.offset = offset;
        slot.length = length;
        slot.flags = flags;
        slot.buffer = buffer;
        slot.callerTag = tag;
        slot.caller = caller;
        slot.loanCaller = loanCaller;
        slot.startNanos = System.nanoTime();
        long gen = (slot.generation + 1) & GEN_MASK;
        slot.generation = gen;
        return gen;
    }

    /**
     * Forwards a lending READ to the current path when that path lends (see the class comment). False, with nothing
     * submitted, when there is no path, it does not lend or refuses this one, or no slot is free: the caller then
     * submits the READ the ordinary way, which answers exactly as before (queued, ESHUTDOWN, ENOMEM, a check error).
     */
    @Override
    public boolean trySubmitLend(long offset, int length, int flags, long tag, LoanCompletion completion) {
        BlockDevice current = path;
        if (mode != OPEN || !(current instanceof ReadLending lending)
                || IoRequests.check(info, IoOp.READ, offset, length, flags) != IoStatus.OK) {
            return false;
        }
        Slot slot = takeFreeSlot();
        if (slot == null) {
            return false;
        }
        long gen = claim(slot, IoOp.READ, offset, length, flags, null, tag, null, completion);
        slot.stamp.set(stamp(gen, INFLIGHT));
        if (!lend(slot, gen, lending)) {
            // Nothing was submitted, so no completion will come: the slot is ours again, whatever a concurrent
            // force close did to its state meanwhile (its cancel on the path found nothing).
            slot.loanCaller = null;
            slot.submittedTo = null;
            slot.stamp.set(stamp(gen, FREE));
            inFlight.decrementAndGet();
            giveBackSlot(slot);
            return false;
        }
        if (mode == CLOSED) {
            failEverything(IoStatus.EIO); // raced with a force close, as in submit
        }
        return true;
    }

    /** Submits the slot's lending READ to {@code lending} (the current path). @return false if it refused */
    private boolean lend(Slot slot, long gen, ReadLending lending) {
        slot.submittedTo = (BlockDevice) lending;
        slot.lender = lending;
        return lending.trySubmitLend(slot.offset, slot.length, slot.flags, (gen << 32) | slot.index, loanRouter);
    }

    /**
     * The caller is done with a loan this device handed up: ends the path's loan on the path that made it and frees
     * the slot. Exactly once per loan (a second call, or an unknown handle, does nothing).
     */
    @Override
    public void releaseLoan(long loan) {
        long index = loan & 0xFFFF_FFFFL;
        if (index >= slots.length) {
            return;
        }
        Slot slot = slots[(int) index];
        long gen = loan >>> 32;
        if (slot.stamp.get() != stamp(gen, LENT)) {
            return;
        }
        ReadLending from = slot.lender; // fixed while LENT: read before the CAS frees the slot for reuse
        long pathLoan = slot.pathLoan;
        if (slot.stamp.compareAndSet(stamp(gen, LENT), stamp(gen, FREE))) {
            giveBackSlot(slot);
            from.releaseLoan(pathLoan);
        }
    }

    /**
     * Pops a free slot, or null when every slot is busy. The version in the top word makes a pop that raced another
     * thread's pop and push of the same slot fail its CAS rather than install a stale successor (ABA).
     */
    private Slot takeFreeSlot() {
        while (true) {
            long top = freeTop.get();
            int index = (int) top - 1;
            if (index < 0) {
                return null;
            }
            long next = (((top >>> 32) + 1) << 32) | (nextFree[index] & 0xFFFF_FFFFL);
            if (freeTop.compareAndSet(top, next)) {
                return slots[index];
            }
        }
    }

    /** Pushes a slot back; never fails (the stack has room for every slot by construction). */
    private void giveBackSlot(Slot slot) {
        while (true) {
            long top = freeTop.get();
            nextFree[slot.index] = (int) top; // published by the CAS below (a volatile write)
            if (freeTop.compareAndSet(top, (((top >>> 32) + 1) << 32) | (slot.index + 1))) {
                return;
            }
        }
    }

    /**
     * Puts a QUEUED slot into the pending queue; never fails. A slot has at most one entry there (see the class
     * comment) and the queue has a place per slot, so the queue is never full: an offer refused is one that found its
     * position still claimed by a concurrent poll that has taken its element but not yet released the position. The
     * poller is a few instructions from releasing it (it neither blocks nor calls out in between), so we wait for it.
     */
    private void enqueue(Slot slot) {
        if (pending.offer(slot)) {
            return;
        }
        IdleStrategy idle = POSITION_RELEASE_WAIT.begin();
        while (!pending.offer(slot)) {
            idle.idle();
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
            if (state(s) != QUEUED) {
                releaseIfCompleted(slot, s);
                continue;
            }
            long gen = s >>> STATE_BITS;
            if (current == null) {
                if (mode == CLOSED) {
                    if (!finish(slot, gen, QUEUED, IoStatus.EIO)) {
                        releaseIfCompleted(slot, slot.stamp.get());
                    }
                    continue;
                }
                enqueue(slot);
                return;
            }
            slot.submittedTo = current;
            if (slot.stamp.compareAndSet(stamp(gen, QUEUED), stamp(gen, INFLIGHT))) {
                if (slot.loanCaller == null) {
                    current.submit(slot.op, slot.offset, slot.length, slot.flags, slot.buffer,
                            (gen << 32) | slot.index, router);
                } else if (!(current instanceof ReadLending lending) || !lend(slot, gen, lending)) {
                    finish(slot, gen, INFLIGHT, IoStatus.EIO); // no buffer to copy into: the READ fails
                }
            } else {
                // Cancelled by its caller after we polled it: this entry was its last, so free it here.
                releaseIfCompleted(slot, slot.stamp.get());
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
                return;
            }
            // Given up meanwhile (EXPIRING/CANCELLING): the path let go of it, so it completes now, below.
        }
        if (finish(slot, gen, INFLIGHT, status)) {
            return;
        }
        // Cancelled while in flight: this is the path's answer to the cancel (or its real status, if it finished
        // first). Only now is the buffer the caller's again.
        if (!finish(slot, gen, EXPIRING, status == IoStatus.ECANCELED || status == IoStatus.ESHUTDOWN
                ? IoStatus.EIO : status)) {
            finish(slot, gen, CANCELLING, status == IoStatus.ESHUTDOWN ? IoStatus.ECANCELED : status);
        }
    }

    private boolean finish(Slot slot, long gen, int expected, int status) {
        return finish(slot, gen, expected, status, false, null, 0, 0L);
    }

    private boolean finish(Slot slot, long gen, int expected, int status, boolean stillQueued) {
        return finish(slot, gen, expected, status, stillQueued, null, 0, 0L);
    }

    /** The path's completion of a lending READ: as {@link #onPathComplete}, with the loan passed up on OK. */
    private void onPathLent(long tag, int status, ByteBuffer base, int at, long loan) {
        long index = tag & 0xFFFF_FFFFL;
        if (index >= slots.length) {
            return;
        }
        Slot slot = slots[(int) index];
        long gen = tag >>> 32;
        ReadLending from = slot.lender; // read first: a finished slot may be reused at once
        if (status == IoStatus.ESHUTDOWN && mode != CLOSED
                && slot.stamp.compareAndSet(stamp(gen, INFLIGHT), stamp(gen, QUEUED))) {
            enqueue(slot); // the next path gets it, as any request
            return;
        }
        boolean lent = status == IoStatus.OK && base != null;
        if (finish(slot, gen, INFLIGHT, status, false, lent ? base : null, at, loan)
                || finish(slot, gen, EXPIRING, status == IoStatus.ECANCELED || status == IoStatus.ESHUTDOWN
                        ? IoStatus.EIO : status, false, lent ? base : null, at, loan)
                || finish(slot, gen, CANCELLING, status == IoStatus.ESHUTDOWN ? IoStatus.ECANCELED : status, false,
                        lent ? base : null, at, loan)) {
            return;
        }
        if (lent && from != null) {
            from.releaseLoan(loan); // a stale or second completion: nobody will read these bytes
        }
    }

    /**
     * Completes the caller if the slot is still in {@code expected} for {@code gen}.
     *
     * @param stillQueued the slot still has an entry in the pending queue: it is freed when that entry is polled
     * @param lentBase    non-null: a lending READ completed OK with the path's loan {@code (lentBase, at, loan)},
     *                    handed up under this slot's handle; the slot stays LENT until {@link #releaseLoan}
     */
    private boolean finish(Slot slot, long gen, int expected, int status, boolean stillQueued, ByteBuffer lentBase,
                           int at, long loan) {
        if (!slot.stamp.compareAndSet(stamp(gen, expected), stamp(gen, stillQueued ? COMPLETED_QUEUED : DONE))) {
            return false;
        }
        IoCompletion caller = slot.caller;
        LoanCompletion loanCaller = slot.loanCaller;
        long callerTag = slot.callerTag;
        IoOp op = slot.op;
        int length = slot.length;
        long latency = System.nanoTime() - slot.startNanos;
        slot.caller = null;
        slot.loanCaller = null;
        slot.buffer = null;
        slot.submittedTo = null;
        boolean handUp = loanCaller != null && lentBase != null;
        if (handUp) {
            slot.pathLoan = loan;
            slot.stamp.set(stamp(gen, LENT)); // after pathLoan: releaseLoan reads it once it sees LENT
        } else if (!stillQueued) {
            slot.stamp.set(stamp(gen, FREE));
            giveBackSlot(slot);
        }
        inFlight.decrementAndGet();
        stats.record(op, length, status, latency);
        if (loanCaller == null) {
            caller.onComplete(callerTag, status);
        } else if (handUp) {
            loanCaller.onLent(callerTag, status, lentBase, at, (gen << 32) | slot.index);
        } else {
            loanCaller.onLent(callerTag, status, null, 0, 0L);
        }
        return true;
    }

    /** A slot completed while queued, polled from the pending queue now: it can be reused. */
    private void releaseIfCompleted(Slot slot, long s) {
        if (state(s) == COMPLETED_QUEUED && slot.stamp.compareAndSet(s, stamp(s >>> STATE_BITS, FREE))) {
            giveBackSlot(slot);
        }
    }

    /**
     * Gives up on every request older than the io-timeout: queued ones (no path came back in time) fail with EIO
     * now; in-flight ones (the path did not answer) are cancelled on their path and fail with EIO when the path
     * answers the cancel (or complete with the path's real status if it finished first). Called periodically by
     * the owning actor.
     *
     * @return how many requests were failed or cancelled
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
            if (state(s) != QUEUED) {
                releaseIfCompleted(slot, s);
                continue;
            }
            if (nowNanos - slot.startNanos > ioTimeoutNanos) {
                if (finish(slot, s >>> STATE_BITS, QUEUED, IoStatus.EIO)) {
                    failed++;
                } else {
                    releaseIfCompleted(slot, slot.stamp.get());
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
            if (state(s) == INFLIGHT && nowNanos - slot.startNanos > ioTimeoutNanos) {
                if (cancelInFlight(slot, s >>> STATE_BITS, EXPIRING)) {
                    failed++;
                }
            }
        }
        return failed;
    }

    /**
     * INFLIGHT &rarr; {@code to} (EXPIRING or CANCELLING), then asks the path it was submitted to to cancel it; the
     * caller is completed from the path's completion.
     */
    private boolean cancelInFlight(Slot slot, long gen, int to) {
        BlockDevice target = slot.submittedTo; // read before the CAS: after it the completion may clear it
        boolean lending = slot.loanCaller != null;
        if (!slot.stamp.compareAndSet(stamp(gen, INFLIGHT), stamp(gen, to))) {
            return false;
        }
        if (lending && target instanceof ReadLending lender) {
            lender.cancelLend((gen << 32) | slot.index, loanRouter);
        } else if (target != null) {
            target.cancel((gen << 32) | slot.index, router);
        }
        return true;
    }

    /**
     * Cancels the caller's request ({@code tag}, {@code completion}): a queued one completes with ECANCELED at
     * once, an in-flight one is cancelled on its path and completes from the path's answer (ECANCELED, or its real
     * status if it finished first). Unknown or completed requests: no effect. Any thread.
     */
    @Override
    public void cancel(long tag, IoCompletion completion) {
        cancelMatching(tag, completion);
    }

    /** Cancels a lending READ as {@link #cancel} does an ordinary request. */
    @Override
    public void cancelLend(long tag, LoanCompletion completion) {
        cancelMatching(tag, completion);
    }

    private void cancelMatching(long tag, Object completion) {
        for (Slot slot : slots) {
            long s = slot.stamp.get();
            int state = state(s);
            if ((state != QUEUED && state != INFLIGHT) || (slot.caller != completion && slot.loanCaller != completion)
                    || slot.callerTag != tag) {
                continue;
            }
            long gen = s >>> STATE_BITS;
            if (state == QUEUED) {
                // Its pending-queue entry stays; whoever polls it frees the slot.
                finish(slot, gen, QUEUED, IoStatus.ECANCELED, true);
            } else {
                cancelInFlight(slot, gen, CANCELLING);
            }
        }
    }

    /**
     * Force close: every queued request completes with EIO now, every in-flight one is cancelled on its path and
     * completes with EIO from the path's answer (its real status if it finished first); later IO gets ESHUTDOWN.
     */
    public void forceClose() {
        mode = CLOSED;
        path = null;
        failEverything(IoStatus.EIO);
    }

    private void failEverything(int status) {
        Slot queued;
        while ((queued = pending.poll()) != null) {
            long s = queued.stamp.get();
            if (state(s) != QUEUED || !finish(queued, s >>> STATE_BITS, QUEUED, status)) {
                releaseIfCompleted(queued, queued.stamp.get());
            }
        }
        for (Slot slot : slots) {
            long s = slot.stamp.get();
            if (state(s) == INFLIGHT) {
                cancelInFlight(slot, s >>> STATE_BITS, EXPIRING);
            }
        }
    }

    /** Stops accepting new IO (ESHUTDOWN); requests already submitted still complete or time out. */
    public void stopAccepting() {
        if (mode == OPEN) {
            mode = DRAINING;
        }
    }

    /** Closes for good: as {@link #forceClose}. Does not close the path (the session owns it). */
    @Override
    public void close() {
        forceClose();
    }

    private static long stamp(long gen, int state) {
        return (gen << STATE_BITS) | state;
    }

    private static int state(long stamp) {
        return (int) (stamp & STATE_MASK);
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
        /** Non-null for a lending READ (then {@link #caller} is null). */
        LoanCompletion loanCaller;
        /** The path a lending READ went to, and its loan while the slot is LENT. */
        ReadLending lender;
        long pathLoan;
        long startNanos;
        /** The path this request was handed to: the one a cancel must reach. */
        BlockDevice submittedTo;

        Slot(int index) {
            this.index = index;
        }
    }
}
