package io.weft.core.io;

import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.agrona.concurrent.BackoffIdleStrategy;
import org.agrona.concurrent.IdleStrategy;

/**
 * A {@link BlockDevice} that accepts requests larger than its inner device does: it advertises a larger
 * {@link DeviceInfo#maxIoSize()} and cuts a READ, WRITE, WRITE_ZEROES or DISCARD longer than the inner device's
 * {@code maxIoSize} into parts the inner device takes, submits them and completes the caller once, when every part
 * has completed, with the first error any part reported (or OK). NBD clients send requests up to the advertised
 * maximum (fio, qemu and nbdcopy send 1 MiB and more) while the RDMA and CXL transports carry at most one chunk or
 * data slot per request; this decorator is what lets them meet.
 *
 * <p>What passes straight through, untouched (same tag, same completion, no bookkeeping): FLUSH, and any request
 * whose length fits the inner device. A split request is checked in full against the advertised geometry first
 * ({@link IoRequests#check}), so a request that is partly beyond the end fails as a whole and is never partly applied.
 *
 * <p>Parts: every part but the last is {@code partSize} = the inner {@code maxIoSize} rounded down to the inner
 * preferred block size; the first part is shortened when the request does not start on a preferred-block boundary,
 * so every later part starts on one (no read-modify-write on the store for parts of an aligned stream). Flags (FUA,
 * NO_HOLE, FAST_ZERO) go to every part: a FUA write is durable only when all its parts are. Once a part has failed,
 * parts not yet submitted are not submitted at all; parts already in flight still complete before the caller does
 * (the caller owns its buffer again only then).
 *
 * <p>Where parts are submitted, and why: all parts of a request are submitted by the thread that called
 * {@link #submit}, never from a part's completion. The inner devices' submit paths are not safe to call from their
 * own completion threads when they are full: the RDMA session completes such a request with ENOMEM instead of waiting
 * for a permit (waiting would block the only thread that frees one), the CXL channel spins for a free ring entry
 * that only its completion agent can free, and {@code QueueingBlockDevice} answers ENOMEM when its slots are taken.
 * From the caller's thread, a full RDMA session or CXL ring simply makes {@code submit} wait, which is back-pressure
 * on the NBD connection reader, not an error.
 *
 * <p>Bounds, and what happens when they are reached (never an error for a valid request): at most
 * {@code parentSlots} split requests and at most {@code maxPartsInFlight} parts are outstanding at once. A submit
 * that finds no free parent slot, or no part credit, waits on the calling thread (an Agrona back-off per thread: 100
 * spins, 100 yields, then 20 µs parks) until an earlier part completes. This bounds what split requests add to the
 * inner device's queue (e.g. {@code QueueingBlockDevice}'s {@code max-in-flight}, which would otherwise answer
 * ENOMEM), and a request with more
 * parts than {@code maxPartsInFlight} simply streams through the budget. Consequently the completion of a part must
 * not depend on the submitting thread returning: do not submit split-size requests from inside a completion that
 * the inner device runs, nor use an inner device whose completions are polled by the submitting thread.
 *
 * <p>Part tags. Each part is submitted with the one shared part completion and a tag that names its parent slot,
 * so a completion finds its context without a lookup or allocation:
 * <pre>
 *  63                       40 39               24 23                              0
 * +---------------------------+-------------------+---------------------------------+
 * |   generation (24 bits)    | parent slot (16)  |      part index (24 bits)       |
 * +---------------------------+-------------------+---------------------------------+
 * </pre>
 * The generation is bumped each time the slot is taken, so a completion that arrives after its parent finished
 * (an inner device that broke the exactly-once contract) is recognised as stale and ignored instead of touching the
 * slot's next request. The part index is bounds-checked against the parent's part count.
 *
 * <p>No allocation per request in steady state. The inner device needs each part's payload as its own
 * {@link ByteBuffer} (devices may read {@code position()} only when the part completes), so every parent slot keeps
 * {@code duplicate()} views of the last caller buffer it served and re-positions them. A caller buffer prefers the
 * slot its identity hash names, so a client that reuses a fixed set of buffers (the NBD connection does) meets its
 * views again; a new pairing rebuilds the views once ({@link #viewRebuilds()}). The views keep that caller buffer
 * reachable until the slot serves another one or the device is closed: at most {@code parentSlots} buffers.
 *
 * <p>Cancel ({@link #cancel}): a request that passed straight through is cancelled on the inner device as it is
 * (same tag, same completion). A split request stops submitting parts and every part already submitted is cancelled
 * on the inner device; the caller completes, as always, once every submitted part has completed — with the first
 * error, which is ECANCELED unless a part failed first (or OK, if every part finished before the cancel took
 * effect). The submitter and the canceller meet Dekker-style ({@code submitted} written before a part is submitted
 * and {@code cancelGeneration} read after; the canceller the other way round), so a part submitted while the cancel
 * runs is cancelled by one of them.
 *
 * <p>Lent READs ({@link ReadLending}): a READ the inner device takes whole is passed through as a lending READ when
 * the inner device lends (same tag, same completion, the inner device's loan); a READ that would be split is never
 * lent (the caller copies it the ordinary way).
 *
 * <p>Threads: {@link #submit} from any number of threads; completions on whatever thread the inner device uses
 * (the caller's completion runs on the thread of the part that completed last).
 */
public final class SplittingBlockDevice implements BlockDevice, ReadLending {
    /** NBD's customary largest request, which every NBD client honours. */
    public static final int DEFAULT_MAX_IO_SIZE = 32 << 20;
    public static final int DEFAULT_PARENT_SLOTS = 32;
    public static final int DEFAULT_MAX_PARTS_IN_FLIGHT = 256;

    static final int PART_BITS = 24;
    static final int SLOT_BITS = 16;
    static final int GENERATION_SHIFT = PART_BITS + SLOT_BITS;
    static final long PART_MASK = (1L << PART_BITS) - 1;
    static final long SLOT_MASK = (1L << SLOT_BITS) - 1;
    static final int GENERATION_MASK = (1 << (64 - GENERATION_SHIFT)) - 1;

    private static final int FREE = 0;
    private static final int BUSY = 1;
    /**
     * A slot or credit wait (any caller thread): 100 spins, 100 yields, then parks of 20 µs until the slot or credit
     * is there. Per thread: Agrona's back-off counts in fields.
     */
    private static final PerThreadIdleStrategy WAIT = new PerThreadIdleStrategy(
            () -> new BackoffIdleStrategy(100, 100, 20_000, 20_000));

    private final BlockDevice inner;
    private final int maxIoSize;
    private final int maxPartsInFlight;
    private final Slot[] slots;
    private final IoCompletion partCompletion = this::onPartComplete;
    private final AtomicInteger partsInFlight = new AtomicInteger();
    private final AtomicLong splitRequests = new AtomicLong();
    private final AtomicLong waits = new AtomicLong();
    private final AtomicLong staleCompletions = new AtomicLong();
    private final AtomicLong viewRebuilds = new AtomicLong();
    /** The inner geometry last seen and the widened one derived from it; replaced only when the inner one changes. */
    private volatile Geometry geometry;

    /** With the defaults: 32 MiB requests, 32 parent slots, 256 parts in flight. */
    public SplittingBlockDevice(BlockDevice inner) {
        this(inner, DEFAULT_MAX_IO_SIZE, DEFAULT_PARENT_SLOTS, DEFAULT_MAX_PARTS_IN_FLIGHT);
    }

    /**
     * @param inner            the device parts go to; closed by {@link #close()}
     * @param maxIoSize        largest READ/WRITE advertised and accepted (the inner device's own limit if that is
     *                         larger)
     * @param parentSlots      split requests outstanding at once (1..65536); more wait on the submitting thread
     * @param maxPartsInFlight parts outstanding at once over all split requests; more wait on the submitting thread
     */
    public SplittingBlockDevice(BlockDevice inner, int maxIoSize, int parentSlots, int maxPartsInFlight) {
        if (maxIoSize < 4096) {
            throw new IllegalArgumentException("maxIoSize must be >= 4096: " + maxIoSize);
        }
        if (parentSlots < 1 || parentSlots > (1 << SLOT_BITS)) {
            throw new IllegalArgumentException("parentSlots must be in [1, 65536]: " + parentSlots);
        }
        if (maxPartsInFlight < 1) {
            throw new IllegalArgumentException("maxPartsInFlight must be >= 1: " + maxPartsInFlight);
        }
        this.inner = inner;
        this.maxIoSize = maxIoSize;
        this.maxPartsInFlight = maxPartsInFlight;
        this.slots = new Slot[parentSlots];
        for (int i = 0; i < parentSlots; i++) {
            slots[i] = new Slot(i);
        }
        DeviceInfo in = inner.info();
        this.geometry = new Geometry(in, widen(in));
    }

    public BlockDevice inner() {
        return inner;
    }

    @Override
    public void awaitCompletions(long maxWaitNanos) {
        inner.awaitCompletions(maxWaitNanos);
    }

    @Override
    public DeviceInfo info() {
        DeviceInfo in = inner.info();
        Geometry g = geometry;
        if (g.inner != in) {
            g = new Geometry(in, widen(in)); // only after the inner geometry changed (connect, resize)
            geometry = g;
        }
        return g.outer;
    }

    private DeviceInfo widen(DeviceInfo in) {
        if (in.maxIoSize() >= maxIoSize) {
            return in;
        }
        int max = maxIoSize - maxIoSize % in.logicalBlockSize();
        return new DeviceInfo(in.size(), in.logicalBlockSize(), in.preferredBlockSize(),
                Math.max(max, in.maxIoSize()), in.readOnly(), in.canFlush(), in.canFua(), in.canDiscard(),
                in.canWriteZeroes(), in.canFastZero(), in.rotational(), in.flushCoversAllConnections());
    }

    /** Largest part for the inner geometry: its maxIoSize rounded down to its preferred block size. */
    static int partSize(DeviceInfo in) {
        return in.maxIoSize() - in.maxIoSize() % in.preferredBlockSize();
    }

    @Override
    public void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                       IoCompletion completion) {
        DeviceInfo in = inner.info();
        int partSize = partSize(in);
        if (op == null || op == IoOp.FLUSH || length <= in.maxIoSize()) {
            inner.submit(op, offset, length, flags, buffer, tag, completion);
            return;
        }
        boolean payload = op == IoOp.READ || op == IoOp.WRITE;
        int status = IoRequests.check(info(), op, offset, length, flags);
        if (status == IoStatus.OK && payload
                && (buffer == null || buffer.remaining() < length || (op == IoOp.READ && buffer.isReadOnly()))) {
            status = IoStatus.EINVAL;
        }
        if (status != IoStatus.OK) {
            completion.onComplete(tag, status);
            return;
        }
        splitRequests.incrementAndGet();
        int head = (int) (offset % in.preferredBlockSize());
        int parts = (int) ((head + (long) length + partSize - 1) / partSize);
        Slot slot = claim(payload ? System.identityHashCode(buffer) : (int) (offset / partSize));
        int generation = (slot.generation + 1) & GENERATION_MASK;
        slot.generation = generation;
        slot.parts = parts;
        slot.callerTag = tag;
        slot.caller = completion;
        slot.firstError.set(IoStatus.OK);
        slot.submitted = 0;
        slot.remaining.set(parts);
        if (payload && slot.viewSource != buffer) {
            slot.rebind(buffer);
            viewRebuilds.incrementAndGet();
        }
        long tagBase = ((long) generation << GENERATION_SHIFT) | ((long) slot.index << PART_BITS);
        int base = payload ? buffer.position() : 0;
        int done = 0;
        for (int part = 0; part < parts; part++) {
            if (part > 0 && (slot.firstError.get() != IoStatus.OK || slot.cancelGeneration == generation)) {
                // A part failed already, or the caller cancelled: the request fails whatever the rest does, so the
                // rest is not sent.
                slot.firstError.compareAndSet(IoStatus.OK, IoStatus.ECANCELED);
                if (slot.remaining.addAndGet(part - parts) == 0) {
                    finish(slot);
                }
                return;
            }
            int partLength = Math.min(part == 0 ? partSize - head : partSize, length - done);
            acquireCredit();
            slot.submitted = part + 1; // before the submit: the slot may be finished and reused right after it
            // After the last part is submitted the slot may already be finished and reused: touch it no more
            // (but for the volatile cancel check, whose stale answer only cancels a tag the inner device no
            // longer knows).
            inner.submit(op, offset + done, partLength, flags,
                    payload ? slot.view(part, base + done, partLength) : null, tagBase | part, partCompletion);
            if (slot.cancelGeneration == generation) {
                inner.cancel(tagBase | part, partCompletion);
            }
            done += partLength;
        }
    }

    /** Takes a free parent slot, starting at the one {@code hint} names; waits while none is free. */
    private Slot claim(int hint) {
        int n = slots.length;
        int start = Math.floorMod(hint * 0x9E3779B9, n);
        IdleStrategy idle = null;
        for (int attempt = 0; ; attempt++) {
            for (int k = 0; k < n; k++) {
                Slot s = slots[start + k < n ? start + k : start + k - n];
                if (s.state.get() == FREE && s.state.compareAndSet(FREE, BUSY)) {
                    return s;
                }
            }
            idle = backOff(attempt, idle);
        }
    }

    private void acquireCredit() {
        IdleStrategy idle = null;
        for (int attempt = 0; ; attempt++) {
            int inFlight = partsInFlight.get();
            if (inFlight < maxPartsInFlight) {
                if (partsInFlight.compareAndSet(inFlight, inFlight + 1)) {
                    return;
                }
            } else {
                idle = backOff(attempt, idle);
            }
        }
    }

    /** One idle step of a wait; {@code idle} is null on the wait's first step (the thread's strategy is then taken). */
    private IdleStrategy backOff(int attempt, IdleStrategy idle) {
        if (attempt == 0) {
            waits.incrementAndGet();
        }
        if (idle == null) {
            idle = WAIT.begin();
        }
        idle.idle();
        return idle;
    }

    private void onPartComplete(long tag, int status) {
        int index = (int) ((tag >>> PART_BITS) & SLOT_MASK);
        int part = (int) (tag & PART_MASK);
        int generation = (int) (tag >>> GENERATION_SHIFT);
        Slot slot = index < slots.length ? slots[index] : null;
        if (slot == null || slot.state.get() != BUSY || slot.generation != generation || part >= slot.parts) {
            staleCompletions.incrementAndGet();
            return;
        }
        partsInFlight.decrementAndGet();
        if (status != IoStatus.OK) {
            slot.firstError.compareAndSet(IoStatus.OK, status);
        }
        if (slot.remaining.decrementAndGet() == 0) {
            finish(slot);
        }
    }

    private void finish(Slot slot) {
        IoCompletion caller = slot.caller;
        long callerTag = slot.callerTag;
        int status = slot.firstError.get();
        slot.caller = null;
        slot.state.set(FREE);
        caller.onComplete(callerTag, status);
    }

    @Override
    public long describeExtents(long offset, long length, ExtentConsumer consumer) {
        return inner.describeExtents(offset, length, consumer);
    }

    /**
     * Cancels the caller's request: forwarded as it is (it may have passed straight through), and for a split one,
     * every submitted part is cancelled and no further part is submitted. The caller completes from the parts'
     * completions. Any thread; unknown or completed requests: no effect.
     */
    @Override
    public boolean trySubmitLend(long offset, int length, int flags, long tag, LoanCompletion completion) {
        return inner instanceof ReadLending && length <= inner.info().maxIoSize()
                && ((ReadLending) inner).trySubmitLend(offset, length, flags, tag, completion);
    }

    @Override
    public void releaseLoan(long loan) {
        ((ReadLending) inner).releaseLoan(loan); // only loans the inner device made reach here
    }

    @Override
    public void cancelLend(long tag, LoanCompletion completion) {
        if (inner instanceof ReadLending) {
            ((ReadLending) inner).cancelLend(tag, completion);
        }
    }

    @Override
    public void cancel(long tag, IoCompletion completion) {
        inner.cancel(tag, completion);
        for (Slot slot : slots) {
            if (slot.state.get() != BUSY) {
                continue;
            }
            int generation = slot.generation;
            if (slot.caller != completion || slot.callerTag != tag) {
                continue;
            }
            slot.cancelGeneration = generation;
            int submitted = slot.submitted;
            long tagBase = ((long) generation << GENERATION_SHIFT) | ((long) slot.index << PART_BITS);
            for (int part = 0; part < submitted; part++) {
                // A part that completed already, or a stale generation: the inner device ignores it.
                inner.cancel(tagBase | part, partCompletion);
            }
        }
    }

    /** Closes the inner device (its in-flight parts complete, and with them their requests) and drops the views. */
    @Override
    public void close() {
        inner.close();
        for (Slot s : slots) {
            if (s.state.compareAndSet(FREE, BUSY)) {
                s.rebind(null);
                s.state.set(FREE);
            }
        }
    }

    /** Requests that were split (each counted once). */
    public long splitRequests() {
        return splitRequests.get();
    }

    /** Parts submitted to the inner device and not completed yet. */
    public int partsInFlight() {
        return partsInFlight.get();
    }

    /** Times a submit had to wait for a parent slot or a part credit (the bounds were reached). */
    public long waits() {
        return waits.get();
    }

    /** Part completions that named no outstanding part (stale generation, bad slot or part index); ignored. */
    public long staleCompletions() {
        return staleCompletions.get();
    }

    /** Times a parent slot had to build payload views for a caller buffer it had not served last. */
    public long viewRebuilds() {
        return viewRebuilds.get();
    }

    private record Geometry(DeviceInfo inner, DeviceInfo outer) {
    }

    private static final class Slot {
        final int index;
        final AtomicInteger state = new AtomicInteger(FREE);
        final AtomicInteger remaining = new AtomicInteger();
        final AtomicInteger firstError = new AtomicInteger();
        /** Written by the claiming thread before any part is submitted; the inner device's hand-off publishes it. */
        int generation;
        /** The generation whose request the caller cancelled (-1: none). */
        volatile int cancelGeneration = -1;
        /** Parts of the current request handed (or about to be handed) to the inner device. */
        volatile int submitted;
        int parts;
        long callerTag;
        IoCompletion caller;
        ByteBuffer viewSource;
        ByteBuffer[] views = new ByteBuffer[0];

        Slot(int index) {
            this.index = index;
        }

        void rebind(ByteBuffer source) {
            viewSource = source;
            Arrays.fill(views, null);
        }

        ByteBuffer view(int part, int position, int length) {
            if (part >= views.length) {
                views = Arrays.copyOf(views, Math.max(part + 1, views.length * 2));
            }
            ByteBuffer v = views[part];
            if (v == null) {
                v = viewSource.duplicate();
                views[part] = v;
            }
            v.clear();
            v.limit(position + length).position(position);
            return v;
        }
    }
}
