package io.weft.cxl;

import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.core.io.PerThreadIdleStrategy;
import io.weft.cxl.layout.ChannelLayout;
import io.weft.cxl.layout.Checksums;
import io.weft.cxl.layout.FenceCode;
import io.weft.cxl.map.Futex;
import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.AtomicReference;
import org.agrona.concurrent.BackoffIdleStrategy;
import org.agrona.concurrent.BusySpinIdleStrategy;
import org.agrona.concurrent.IdleStrategy;
import org.agrona.concurrent.UnsafeBuffer;
import org.agrona.concurrent.YieldingIdleStrategy;

/**
 * Client side of one channel (one queue of a {@link CxlBlockDevice}).
 *
 * <p>Producers (any thread) reserve a ring index with a CAS on a process-local counter, fill the submission entry and
 * its data slot, mark the entry filled, and publish: whichever producer finds the entries after the published tail
 * filled moves the tail over them, in index order ({@link #publishFilled}). No producer waits for another one: a
 * producer the scheduler preempts before it publishes delays only the entries behind its own. The completion agent
 * (one thread) consumes completions, copies READ payloads out, runs the callbacks and releases the slots. A slot is
 * reused only after the backend's completion for its previous request has been consumed, so a data slot is never
 * rewritten while the backend may still read it, even after a force stop has already failed that request. Once a
 * close has taken the agent away, every producer that publishes, including one that skips its index because the close
 * released the claim, fails what it published itself ({@link #publishFilledAndFailIfOrphaned}): a request queued
 * behind its entry would otherwise never complete.
 *
 * <p>Ownership of a request's caller buffer: each slot has a state word, {@code (index << 2) | state}, moved out of
 * INFLIGHT exactly once, by one CAS: to COMPLETING by the consumer (which then, and only then, copies a READ payload
 * into the buffer and runs the callback) or to CANCELLED by {@link #cancel} (which completes the caller with
 * ECANCELED at once; the backend's late completion is then consumed without touching the buffer). Every early
 * completion (fail, force stop, timeout, fence, lost claim) goes through the same CAS, so nothing is ever copied
 * into a buffer whose completion already ran. The data slot is a different matter: it stays the backend's until its
 * completion is consumed, whatever happened to the caller.
 *
 * <p>The claim: {@code CLIENT_CLAIM} holds this blkdev's token while it owns the channel. A process paused past the
 * dead timeout may find, when it resumes, that a janitor revoked it and handed the channel on: so the claim is
 * re-checked (acquire) right before the first write of a submission into the segment and again right before the
 * tail is published, at the top of every consumer duty cycle (before the heartbeat), and before any fence or detach
 * is written. A lost claim fails every request of the channel with EIO and nothing more is written to it.
 *
 * <p>Over 600 lines on purpose: producers, the consumer, cancel and the claim checks all move the same slot state words
 * and ring indices under one set of invariants (above); split into classes, each part would have to restate them.
 */
final class ClientChannel {
    /**
     * A producer waiting for a free ring entry (any thread): 100 spins, then yields until the completion agent frees
     * one (never parks: the entry is freed within one agent duty cycle). Per thread: Agrona's back-off counts in
     * fields.
     */
    private static final PerThreadIdleStrategy RING_FULL_WAIT = new PerThreadIdleStrategy(
            () -> new BackoffIdleStrategy(100, Long.MAX_VALUE, 1, 1));

    private final ChannelSegment seg;
    private final UnsafeBuffer control;
    private final UnsafeBuffer submissions;
    private final UnsafeBuffer completions;
    private final UnsafeBuffer data;
    private final int depth;
    private final int mask;
    private final int slotSize;
    private final boolean entryCrc;
    private final boolean dataCrc;

    private final Checksums.Calculator completionCrc;
    private final Checksums.Calculator agentDataCrc;
    /** Producers may be any thread: each gets its own calculators (submission ring, data area) on first use. */
    private final ThreadLocal<Checksums.Calculator[]> producerCrc;

    private final AtomicLong reserved;
    private final AtomicLong publishedTail;
    /**
     * Per ring slot: {@code index + 1} once the producer of {@code index} has written its entry (or skipped it); the
     * entries below {@link #publishedTail} are published. {@code publishedTail} moves (CAS) before the shared
     * submission tail, so it also bounds the completion tail the backend may publish.
     */
    private final AtomicLongArray filled;
    /** Completions consumed from the ring (slot reuse bound); written by the agent only. */
    private volatile long consumed;
    /** Every index below this has had its callback run (normally == consumed; ahead of it after a mass failure). */
    private volatile long callbacksDone;

    /** This blkdev's claim token: CLIENT_CLAIM must still hold it before anything is written to the segment. */
    private final long token;
    /** Set once the claim was found lost (one-way): no more writes to the segment, every request fails. */
    private volatile boolean claimLost;

    /** Per slot: {@code (index << 2) | SLOT_*}; see the class comment. Pre-allocated, one CAS per request. */
    private final AtomicLongArray slotStates;
    private static final int SLOT_FREE = 0;
    private static final int SLOT_INFLIGHT = 1;
    private static final int SLOT_COMPLETING = 2;
    private static final int SLOT_CANCELLED = 3;

    private final long[] tags;
    private final IoCompletion[] callbacks;
    private final ByteBuffer[] buffers;
    private final int[] positions;
    private final int[] ops;
    private final int[] lengths;

    /**
     * The thread consuming completions right now (the agent's poll, a submitter's {@link #assist}, a drain after
     * stop), or null: the consumer state below (consumed, progress and beat times) has one writer at a time, handed
     * over through this reference's CAS and release store.
     */
    private final AtomicReference<Thread> consumer = new AtomicReference<>();

    /** Set once the completion agent has stopped; producers then fail their own late requests. */
    private volatile boolean agentGone;
    /** 0 while serving, else the status every request gets from now on. */
    private volatile int failStatus;
    private volatile String failReason = "";
    private long beat;
    private long lastBeatNs;
    private long lastProgressNs;
    private long lastBackendBeat = -1;
    private volatile long lastBackendBeatChangeNs; // read by backendAlive() on any thread

    /** Segment id → address of its doorbell word (-1 = outside the region); null: never ring (tests). */
    private final java.util.function.IntToLongFunction doorbellAddress;
    /** The doorbell last rung (re-resolved when the backend names another segment, e.g. after a restart). */
    private int doorbellSegment = -1;
    private UnsafeBuffer doorbellWord;
    private Futex doorbellFutex;
    /** This channel's client doorbell: an assisting submitter sleeps on it until the handler publishes. */
    private final Futex completionFutex;
    /** Test hook (null in production): see the constructor. */
    private final java.util.function.LongConsumer beforePublish;

    /** A channel whose client claim the caller already holds with {@code token}; no doorbells (tests). */
    ClientChannel(ChannelSegment seg, long token, long nowNs) {
        this(seg, token, nowNs, null);
    }

    ClientChannel(ChannelSegment seg, long token, long nowNs, java.util.function.IntToLongFunction doorbellAddress) {
        this(seg, token, nowNs, doorbellAddress, null);
    }

    /**
     * Tests: {@code beforePublish} runs on the producer thread with the request's index after its entry is written and
     * before it is published, i.e. where a producer the scheduler preempts holds its reservation.
     */
    ClientChannel(ChannelSegment seg, long token, long nowNs, java.util.function.IntToLongFunction doorbellAddress,
                  java.util.function.LongConsumer beforePublish) {
        this.beforePublish = beforePublish;
        this.doorbellAddress = doorbellAddress;
        this.token = token;
        this.seg = seg;
        this.control = seg.control;
        this.completionFutex = doorbellAddress == null ? null
                : new Futex(seg.control.addressOffset() + ChannelLayout.CLIENT_DOORBELL);
        this.submissions = seg.submissions;
        this.completions = seg.completions;
        this.data = seg.data;
        this.depth = seg.depth;
        this.mask = seg.mask;
        this.slotSize = seg.slotSize;
        int flags = seg.flags();
        this.entryCrc = (flags & ChannelLayout.FLAG_ENTRY_CRC) != 0;
        this.dataCrc = (flags & ChannelLayout.FLAG_DATA_CRC) != 0;
        this.completionCrc = new Checksums.Calculator(completions);
        this.agentDataCrc = new Checksums.Calculator(data);
        this.producerCrc = ThreadLocal.withInitial(() -> new Checksums.Calculator[] {
            new Checksums.Calculator(seg.submissions), new Checksums.Calculator(seg.data)});
        long tail = seg.submissionTail();
        long head = seg.completionHead();
        long compTail = seg.completionTail();
        this.reserved = new AtomicLong(tail);
        this.publishedTail = new AtomicLong(tail);
        this.filled = new AtomicLongArray(depth); // 0 never matches a mark (index + 1 >= 1)
        this.consumed = head;
        this.callbacksDone = tail;
        this.slotStates = new AtomicLongArray(depth);
        this.tags = new long[depth];
        this.callbacks = new IoCompletion[depth];
        this.buffers = new ByteBuffer[depth];
        this.positions = new int[depth];
        this.ops = new int[depth];
        this.lengths = new int[depth];
        this.lastProgressNs = nowNs;
        this.lastBackendBeatChangeNs = nowNs;
        String mismatch = seg.geometryMismatch();
        if (mismatch != null) {
            fence(FenceCode.GEOMETRY, mismatch, IoStatus.EIO);
        } else if (head > compTail || compTail > tail || tail - head > depth) {
            fence(FenceCode.WILD_INDEX, "at open: sub tail " + tail + " comp " + head + "/" + compTail, IoStatus.EIO);
        } else {
            control.putIntVolatile(ChannelLayout.CLIENT_FENCE, 0);
            control.putIntRelease(ChannelLayout.CLIENT_STATE, ChannelLayout.SIDE_ACTIVE);
        }
    }

    ChannelSegment segment() {
        return seg;
    }

    int failStatus() {
        return failStatus;
    }

    String failReason() {
        return failReason;
    }

    /** Completions consumed from the ring so far (by whoever held the consumer role). */
    long consumedCount() {
        return consumed;
    }

    /** Requests published but not yet called back. */
    long inFlight() {
        return Math.max(0, publishedTail.get() - Math.max(callbacksDone, consumed));
    }

    boolean backendAlive(long nowNs, long timeoutNs) {
        return nowNs - lastBackendBeatChangeNs < timeoutNs;
    }

    /**
     * Producer side. Returns {@code -1} when the request was queued, else a status to complete it with inline.
     * Spins (with back-off) while the ring is full.
     */
    int submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag, IoCompletion completion) {
        // Everything that could fail is checked before an index is reserved: a reserved index must be published (or
        // skipped, below) or every later producer waits for it forever.
        boolean payload = op == IoOp.READ || op == IoOp.WRITE;
        if (op == null || completion == null || length < 0 || (payload && (length > slotSize || buffer == null
                || buffer.remaining() < length || (op == IoOp.READ && buffer.isReadOnly())))) {
            return IoStatus.EINVAL;
        }
        long index;
        IdleStrategy ringFull = null; // taken on the first wait only: the fast path pays nothing
        while (true) {
            int fail = failStatus;
            if (fail != 0) {
                return fail;
            }
            long r = reserved.get();
            if (r - consumed >= depth) {
                if (ringFull == null) {
                    ringFull = RING_FULL_WAIT.begin();
                }
                ringFull.idle();
                continue;
            }
            if (reserved.compareAndSet(r, r + 1)) {
                index = r;
                break;
            }
        }
        if (!holdsClaim()) {
            skip(index);
            return IoStatus.EIO;
        }
        int slot = (int) index & mask;
        int dataOffset = slot * slotSize;
        tags[slot] = tag;
        callbacks[slot] = completion;
        buffers[slot] = buffer;
        positions[slot] = buffer != null ? buffer.position() : 0;
        ops[slot] = op.ordinal();
        lengths[slot] = length;
        int dataChecksum = 0;
        if (op == IoOp.WRITE) {
            data.putBytes(dataOffset, buffer, buffer.position(), length);
            if (dataCrc) {
                dataChecksum = producerCrc.get()[1].compute(dataOffset, length);
            }
        }
        int e = slot * ChannelLayout.SUB_ENTRY_SIZE;
        submissions.putLong(e + ChannelLayout.SUB_REQUEST_ID, index + 1);
        submissions.putLong(e + ChannelLayout.SUB_DEVICE_OFFSET, offset);
        submissions.putInt(e + ChannelLayout.SUB_LENGTH, length);
        submissions.putInt(e + ChannelLayout.SUB_OP, op.ordinal());
        submissions.putInt(e + ChannelLayout.SUB_FLAGS, flags);
        submissions.putInt(e + ChannelLayout.SUB_DATA_CRC, dataChecksum);
        submissions.putLong(e + ChannelLayout.SUB_DATA_OFFSET, dataOffset);
        submissions.putLong(e + 40, 0);
        submissions.putLong(e + 48, 0);
        submissions.putInt(e + ChannelLayout.SUB_CRC,
                entryCrc ? producerCrc.get()[0].compute(e, ChannelLayout.SUB_CRC) : 0);
        submissions.putInt(e + 60, 0);
        if (beforePublish != null) {
            beforePublish.accept(index);
        }
        // The claim once more, right before the release: a producer paused since its first check must not publish
        // into a channel that was revoked meanwhile (the janitor's grace period covers the rest; docs/cxl.md).
        if (!holdsClaim()) {
            markFilled(slot, index); // skipped: never INFLIGHT, so never called back; nothing reaches the segment
            publishFilledAndFailIfOrphaned();
            return IoStatus.EIO;
        }
        // From here cancel() may find the request; the caller's buffer is not read again on this thread.
        slotStates.setRelease(slot, (index << 2) | SLOT_INFLIGHT);
        markFilled(slot, index);
        publishFilledAndFailIfOrphaned();
        return -1;
    }

    /**
     * True while CLIENT_CLAIM still holds this blkdev's token (acquire). Once it does not, the channel is lost for
     * good: new requests fail, the consumer fails the outstanding ones at its next duty cycle, nothing is written.
     */
    private boolean holdsClaim() {
        if (claimLost) {
            return false;
        }
        if (control.getLongVolatile(ChannelLayout.CLIENT_CLAIM) == token) {
            return true;
        }
        claimLost = true;
        if (failStatus == 0) {
            failReason = "channel claim lost: this blkdev was declared dead and cleared (paused too long?)";
            failStatus = IoStatus.EIO;
        }
        return false;
    }

    /** A reserved index that will never be published: let later producers pass (they fail too: claim lost). */
    private void skip(long index) {
        markFilled((int) index & mask, index);
        publishFilledAndFailIfOrphaned();
    }

    /**
     * Every producer's way out, whether it publishes its own request or skips its index: {@link #publishFilled}, then,
     * if the completion agent is gone, fails what is published. Whatever this producer made visible (its own entry and
     * the ones other producers filled behind it and left for it to publish, see publishFilled) may have been published
     * after the stop's last drain, and nobody else will complete it. A skipping producer is no exception: at a close
     * it is the one that finds the claim released, and the requests it publishes behind its skipped entry are
     * somebody's queued requests (their submit already returned). Dekker pairing with {@link #drainAfterAgent}:
     * {@code publishedTail} moves before {@code agentGone} is read here, {@code agentGone} is set before
     * {@code publishedTail} is read there, so one of the two fails them.
     */
    private void publishFilledAndFailIfOrphaned() {
        publishFilled();
        if (agentGone) {
            drainAfterAgent();
        }
    }

    /** Producer: the entry of {@code index} is written (or skipped); volatile, paired with {@link #publishFilled}. */
    private void markFilled(int slot, long index) {
        filled.set(slot, index + 1);
    }

    /**
     * Any producer, after {@link #markFilled}: publishes every filled entry that follows the published tail, in ring
     * order, and returns at once if the next one is not filled yet. No producer waits for another: the producer of
     * that next entry publishes it and everything filled behind it when it gets there (it marks before it scans, and
     * so does every later producer, so one of the two always sees the other's mark). A producer preempted between
     * reserve and publish therefore holds up only the visibility of the entries behind its own, not the other
     * producers' threads, which on a loaded machine would spin on the CPU the preempted thread needs.
     */
    private void publishFilled() {
        while (true) {
            long from = publishedTail.get();
            long to = from;
            while (to - from < depth && filled.get((int) to & mask) == to + 1) {
                to++;
            }
            if (to == from) {
                return; // the producer of entry `from` has not marked it: it will publish on its way out
            }
            if (!publishedTail.compareAndSet(from, to)) {
                continue; // another producer published meanwhile: scan again from the new tail
            }
            if (!holdsClaim()) {
                return; // lost: nothing more is written to the segment; the consumer fails these requests
            }
            // Two publishers may reach this store in either order: the shared tail only ever moves forward. A CAS, so
            // the doorbell read below is not ordered before it (Dekker pairing with HandlerAgent.announce).
            boolean raised = false;
            long visible = control.getLongVolatile(ChannelLayout.SUB_TAIL);
            while (visible < to) {
                if (control.compareAndSetLong(ChannelLayout.SUB_TAIL, visible, to)) {
                    raised = true;
                    break;
                }
                visible = control.getLongVolatile(ChannelLayout.SUB_TAIL);
            }
            if (raised && control.getIntVolatile(ChannelLayout.HANDLER_DOORBELL) == ChannelLayout.DOORBELL_ASLEEP) {
                ringDoorbell();
            }
            // Entries filled after the scan above, whose producers saw the old tail, are published on the next pass.
        }
    }

    /**
     * Completes the request submitted with {@code tag} and {@code completion} with ECANCELED, on this thread, if it
     * is still in flight; the backend's answer is consumed later without touching the caller's buffer. Any thread.
     *
     * @return true if this call completed it
     */
    boolean cancel(long tag, IoCompletion completion) {
        for (int slot = 0; slot < depth; slot++) {
            long state = slotStates.get(slot);
            if ((state & 3) != SLOT_INFLIGHT || callbacks[slot] != completion || tags[slot] != tag) {
                continue;
            }
            // The state word is unique per index, so a successful CAS proves the slot still held this request.
            if (slotStates.compareAndSet(slot, state, (state & ~3L) | SLOT_CANCELLED)) {
                completion.onComplete(tag, IoStatus.ECANCELED);
                return true;
            }
        }
        return false;
    }

    /** Slow path, only after the handler agent announced it sleeps: wake it (one futex wake system call). */
    private void ringDoorbell() {
        if (doorbellAddress == null || !control.compareAndSetInt(ChannelLayout.HANDLER_DOORBELL,
                ChannelLayout.DOORBELL_ASLEEP, ChannelLayout.DOORBELL_AWAKE)) {
            return; // another producer rang it
        }
        int named = control.getIntVolatile(ChannelLayout.DOORBELL_SEGMENT) - 1;
        synchronized (this) { // producers of one channel may race here; only on the idle-to-busy transition
            if (named != doorbellSegment) {
                long address = doorbellAddress.applyAsLong(named);
                if (address < 0) {
                    return; // not a segment of this region: the handler still wakes at its heartbeat
                }
                doorbellSegment = named;
                doorbellWord = new UnsafeBuffer(address, 4);
                doorbellFutex = new Futex(address);
            }
            doorbellWord.putIntVolatile(0, ChannelLayout.DOORBELL_AWAKE);
            doorbellFutex.wakeAll();
        }
    }

    /** Takes the consumer role if nobody holds it (never waits). */
    boolean tryConsume() {
        return consumer.get() == null && consumer.compareAndSet(null, Thread.currentThread());
    }

    void releaseConsumer() {
        consumer.setRelease(null);
    }

    /**
     * Takes the consumer role, waiting for a submitter's assist to end (bounded by its wait; stop paths only).
     * @return false when this thread already holds it (a callback that submits during a drain): do not release
     */
    private boolean consume() {
        Thread me = Thread.currentThread();
        if (consumer.get() == me) {
            return false;
        }
        while (!consumer.compareAndSet(null, me)) {
            YieldingIdleStrategy.INSTANCE.idle(); // stateless; the holder's assist is bounded by its wait
        }
        return true;
    }

    /** Completion agent duty cycle for this channel; returns 0 without work while a submitter holds the role. */
    int pollIfFree(long nowNs, long beatIntervalNs, long ioTimeoutNs) {
        if (!tryConsume()) {
            return 0;
        }
        try {
            return poll(nowNs, beatIntervalNs, ioTimeoutNs);
        } finally {
            releaseConsumer();
        }
    }

    /** Stop request on the agent thread: waits for the consumer role, then fails what is outstanding. */
    void failAsConsumer(int status, String reason) {
        boolean acquired = consume();
        try {
            fail(status, reason);
        } finally {
            if (acquired) {
                releaseConsumer();
            }
        }
    }

    /**
     * Submitting thread, holding the consumer role ({@link #tryConsume}): delivers every completion that is ready,
     * and waits up to {@code waitNs} while exactly one request is in flight (or, with {@code untilAnyDelivered},
     * while any is and none was delivered yet): a few polls, then asleep on the client doorbell (a futex the handler
     * rings after publishing), so the core goes to whoever needs it, the handler included, and the scheduler wakes
     * this thread promptly when its completion is there (a sleeper is preferred over one that spun or yielded).
     * The ladder is by time ({@code spinNs}, then the doorbell sleep), so its spin and yield steps are Agrona's
     * stateless strategies: no per-wait state to keep.
     */
    void assist(long waitNs, long spinNs, long beatIntervalNs, long ioTimeoutNs, boolean untilAnyDelivered) {
        long start = System.nanoTime();
        long now = start;
        long consumedBefore = consumed;
        while (true) {
            poll(now, beatIntervalNs, ioTimeoutNs);
            long outstanding = inFlight();
            long waited = now - start;
            boolean keepWaiting = untilAnyDelivered ? outstanding > 0 && consumed == consumedBefore
                    : outstanding == 1;
            if (!keepWaiting || waited >= waitNs) {
                return;
            }
            if (waited < spinNs) {
                BusySpinIdleStrategy.INSTANCE.idle();
            } else if (claimLost) {
                return;
            } else if (completionFutex != null && completionFutex.available()) {
                control.putIntVolatile(ChannelLayout.CLIENT_DOORBELL, ChannelLayout.DOORBELL_ASLEEP);
                // Re-check after announcing (Dekker pairing with ChannelHandler.publishFinished).
                if (control.getLongVolatile(ChannelLayout.COMP_TAIL) == consumed) {
                    completionFutex.await(ChannelLayout.DOORBELL_ASLEEP, waitNs - waited);
                }
                control.putIntVolatile(ChannelLayout.CLIENT_DOORBELL, ChannelLayout.DOORBELL_AWAKE);
            } else {
                YieldingIdleStrategy.INSTANCE.idle();
            }
            now = System.nanoTime();
        }
    }

    /** Completion agent duty cycle for this channel (caller holds the consumer role). */
    int poll(long nowNs, long beatIntervalNs, long ioTimeoutNs) {
        if (!holdsClaim()) {
            return failOutstanding(); // the reason was set by holdsClaim; nothing is written to the segment
        }
        if (nowNs - lastBeatNs >= beatIntervalNs) {
            lastBeatNs = nowNs;
            control.putLongRelease(ChannelLayout.CLIENT_BEAT, ++beat);
        }
        long backendBeat = control.getLongVolatile(ChannelLayout.BACKEND_BEAT);
        if (backendBeat != lastBackendBeat) {
            lastBackendBeat = backendBeat;
            lastBackendBeatChangeNs = nowNs;
        }
        if (failStatus != 0) {
            return failOutstanding();
        }
        int backendState = control.getIntVolatile(ChannelLayout.BACKEND_STATE);
        if (backendState == ChannelLayout.SIDE_FENCED) {
            fail(IoStatus.EIO, "backend fenced the channel: " + seg.backendFence() + ": " + seg.backendFenceReason());
            return 1;
        }
        if (backendState == ChannelLayout.SIDE_STOPPED) {
            fail(IoStatus.ESHUTDOWN, "backend stopped the channel");
            return 1;
        }
        long tail = control.getLongVolatile(ChannelLayout.COMP_TAIL);
        long head = consumed;
        long published = publishedTail.get();
        if (tail < head || tail > published) {
            fence(FenceCode.WILD_INDEX, "completion tail " + tail + " outside [" + head + ", " + published + "]",
                    IoStatus.EIO);
            return 1;
        }
        int work = 0;
        while (head < tail) {
            if (!deliver(head)) {
                break; // fenced: the slots delivered so far are still released below
            }
            head++;
            work++;
            if (claimLost) {
                break; // found lost while copying a READ out: the rest fails below, nothing more is read
            }
        }
        if (work > 0) {
            consumed = head;
            if (claimLost) {
                return work + failOutstanding(); // and no compHead store into a segment that is not ours
            }
            control.putLongRelease(ChannelLayout.COMP_HEAD, head);
            lastProgressNs = nowNs;
        } else if (published == head) {
            lastProgressNs = nowNs;
        } else if (nowNs - lastProgressNs > ioTimeoutNs) {
            fail(IoStatus.ETIMEDOUT, "no completion for " + (ioTimeoutNs / 1_000_000) + " ms with "
                    + (published - head) + " requests in flight");
            return 1;
        }
        return work;
    }

    private boolean deliver(long index) {
        int slot = (int) index & mask;
        int e = slot * ChannelLayout.COMP_ENTRY_SIZE;
        if (entryCrc && completionCrc.compute(e, ChannelLayout.COMP_CRC)
                != completions.getInt(e + ChannelLayout.COMP_CRC)) {
            fence(FenceCode.ENTRY_CHECKSUM, "completion " + index + " checksum mismatch", IoStatus.EIO);
            return false;
        }
        long requestId = completions.getLong(e + ChannelLayout.COMP_REQUEST_ID);
        if (requestId != index + 1) {
            fence(FenceCode.REQUEST_SEQUENCE, "completion " + index + " has request id " + requestId, IoStatus.EIO);
            return false;
        }
        if (index < callbacksDone) {
            return true; // a previous opener's request, or one already failed by a force stop / fence
        }
        int status = completions.getInt(e + ChannelLayout.COMP_STATUS);
        if (status < 0 || status > 255) {
            status = IoStatus.EIO; // not an errno the backend could have produced: never hand it to a caller
        }
        int dataOffset = slot * slotSize;
        int length = lengths[slot];
        boolean readData = status == IoStatus.OK && ops[slot] == IoOp.READ.ordinal();
        if (readData && dataCrc
                && agentDataCrc.compute(dataOffset, length) != completions.getInt(e + ChannelLayout.COMP_DATA_CRC)) {
            fence(FenceCode.DATA_CHECKSUM, "completion " + index + " payload checksum mismatch", IoStatus.EIO);
            return false;
        }
        if (!slotStates.compareAndSet(slot, (index << 2) | SLOT_INFLIGHT, (index << 2) | SLOT_COMPLETING)) {
            // Cancelled: its caller was completed already and owns the buffer again. Consume, copy nothing.
            callbacksDone = index + 1;
            release(slot);
            return true;
        }
        if (readData) {
            data.getBytes(dataOffset, buffers[slot], positions[slot], length);
            if (!holdsClaim()) {
                status = IoStatus.EIO; // the slot may have been someone else's by the time it was copied
            }
        }
        callbacksDone = index + 1; // before the callback, so a caller woken by it sees the request as done
        complete(slot, status);
        return true;
    }

    /** Completes the request in {@code slot} unless a cancel already did (the CAS makes exactly one of them win). */
    private void completeEarly(long index, int status) {
        int slot = (int) index & mask;
        if (slotStates.compareAndSet(slot, (index << 2) | SLOT_INFLIGHT, (index << 2) | SLOT_COMPLETING)) {
            complete(slot, status);
        } else {
            release(slot);
        }
    }

    private void complete(int slot, int status) {
        IoCompletion callback = callbacks[slot];
        long tag = tags[slot];
        release(slot);
        if (callback != null) {
            callback.onComplete(tag, status);
        }
    }

    private void release(int slot) {
        callbacks[slot] = null;
        buffers[slot] = null;
    }

    /** Agent thread (or before the agent starts): stop serving; every outstanding request completes with status. */
    void fail(int status, String reason) {
        if (failStatus == 0) {
            failReason = reason;
            failStatus = status;
        }
        failOutstanding();
    }

    private void fence(FenceCode code, String reason, int status) {
        if (holdsClaim()) {
            seg.writeFence(false, code, reason);
        }
        fail(status, code + ": " + reason);
    }

    /**
     * The closing thread, once no agent runs this channel any more: fails what is still outstanding with
     * {@code status}, or with the status the channel already fails with. The agent normally set that one when it
     * carried out the stop, but an agent stuck past the close's wait (a blocking callback of another blkdev) never
     * did, and a failure status of 0 would complete the requests OK. Set before {@code agentGone}, so a producer that
     * drains on its way out never sees the agent gone with no status to fail with.
     */
    void drainAfterAgent(int status, String reason) {
        if (failStatus == 0) {
            failReason = reason;
            failStatus = status;
        }
        drainAfterAgent();
    }

    /** After the completion agent stopped (shutdown thread or a late producer): fail what is still outstanding. */
    void drainAfterAgent() {
        agentGone = true;
        boolean acquired = consume(); // serialises the shutdown thread and racing producers
        try {
            failOutstanding();
        } finally {
            if (acquired) {
                releaseConsumer();
            }
        }
    }

    private int failOutstanding() {
        long published = publishedTail.get();
        long from = Math.max(callbacksDone, consumed);
        int status = failStatus;
        int n = 0;
        for (long i = from; i < published; i++) {
            completeEarly(i, status);
            n++;
        }
        if (published > callbacksDone) {
            callbacksDone = published;
        }
        return n;
    }

    /** After failing: detach from the channel so another blkdev may claim it. */
    void detach(long token) {
        if (!holdsClaim()) {
            return; // revoked and perhaps handed on: not ours to write any more
        }
        if (control.getIntVolatile(ChannelLayout.CLIENT_STATE) != ChannelLayout.SIDE_FENCED) {
            control.putIntRelease(ChannelLayout.CLIENT_STATE, ChannelLayout.SIDE_STOPPED);
        }
        seg.casClientClaim(token, 0);
    }
}
