package io.weft.core.mirror;

import static io.weft.core.mirror.MirrorBlockDevice.MAX_LEGS;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import java.nio.ByteBuffer;

/**
 * The mirror's request path: each request takes a slot, goes to the legs that should see it (a read to one in-sync
 * leg, anything else to every live leg), collects every leg's outcome and completes the caller once, settled by rule
 * 2 of {@link MirrorBlockDevice}'s class comment. Leg failures and timeouts are reported to {@link LegMembership},
 * which drops the leg and calls {@link #failOver} back; write-class requests are counted per region in the
 * {@link RegionWriteFence} the resync reads, and made active in the {@link ActivityLog} before a leg sees them.
 *
 * <h2>Slots, no allocation, no locks</h2>
 * Each request takes one of {@code maxInFlight} preallocated {@link FanOutSlot}s. The slot's state is one atomic word:
 * <pre>
 *  63            32 31 27 26  24 23 22   20 19 18  16 15 14  12 11 10   8 7 6  5  4  3  2     0
 * +----------------+-----+------+--+-------+--+------+--+------+--+------+---+--+--+--+-------+
 * | generation     |  0  |doubt |  |cancel |  |failed|  |tried |  |ok    | 0 |CC|RT|IS|pending|  (one bit per leg)
 * +----------------+-----+------+--+-------+--+------+--+------+--+------+---+--+--+--+-------+
 * </pre>
 * "doubt": the leg answered a write-class part ECANCELED, so it may or may not hold that write ({@code settle}).
 * The tag handed to leg {@code i} is {@code generation << 32 | slot << 2 | i}. Whoever clears the last pending bit
 * (and the ISSUING bit "IS", held by the submitting thread while it hands the request to the legs, and "RT", held
 * while a failed read is handed to another leg) completes the
 * caller, so a leg completion, the watchdog and a leg drop can race safely, and a late completion from a dropped leg
 * finds its bit gone (or a newer generation) and is ignored. Completions are one long-lived object. A write to more
 * than one leg gives every leg but the first a {@code duplicate()} of the caller's buffer (independent position and
 * limit); slots are chosen by the buffer's identity hash so a caller that reuses its buffers reuses the duplicates
 * and the steady state allocates nothing (a write looks a few slots on for one that holds its own duplicates, so two
 * buffers whose hashes pick one slot do not take turns on it: {@code claim}). Leg-state changes take the
 * membership's lock (rare); this path reads leg states with volatile reads.
 *
 * <h2>Hung legs</h2>
 * A watchdog (the device's timer thread every legTimeout/4, or the owner via {@link #checkTimeouts}) scans the slots;
 * a leg with a request older than the leg timeout (default 500 ms) is dropped and all of its requests are failed over,
 * so a frozen leg stalls IO for at most about legTimeout + legTimeout/4 — unless it is the last IN_SYNC leg (rule 3).
 *
 * <h2>Buffer ownership: failing a leg's part over means cancelling it</h2>
 * A leg's part holds the caller's buffer (or a view of it) until that leg's completion has run, so nothing here
 * counts a part as done before that: the leg timeout, a drop ({@link #failOver}), a removal, the device's close and
 * the caller's {@link #cancel} call {@code cancel} on the device the part was issued to (remembered per slot and leg)
 * and set the part's "cancel" bit (so it is cancelled once); the part then completes through
 * {@link #onLegComplete} like any other — ECANCELED (the leg let go of the buffer) or its real status — and only
 * then does a read move to another leg or a write count the leg as failed. A read is therefore never in two legs at
 * once, and the caller completes only when no leg holds its buffer. An ECANCELED answer is no leg failure by itself
 * (the leg was dropped already, or the caller gave up); "CC" (cancelled by the caller) stops a read from being
 * retried. The answer of a device that was removed (or replaced) since counts as "removed". A leg that never answers
 * a cancel keeps its part, and the request waits: the transports bound that with their own deadline (cxl.md, rdma.md).
 * All of this is the rare path; the hot path only records the leg device per part.
 */
final class MirrorFanOut {
    /** Internal status for "leg removed by the operator": neither success nor failure. */
    static final int REMOVED = -1;
    /** Internal status for "the watchdog found this leg's part older than the leg timeout". */
    private static final int LEG_TIMEOUT = -2;

    private static final long PENDING_MASK = 0x7L;
    private static final long ISSUING = 1L << 3;
    /** Held by a completion thread while it re-issues a failed read to another leg. */
    private static final long RETRYING = 1L << 4;
    private static final long BUSY = PENDING_MASK | ISSUING | RETRYING;
    /** The caller cancelled this request: a failed read is not retried. */
    private static final long CALLER_CANCELLED = 1L << 5;
    private static final int OK_SHIFT = 8;
    private static final int TRIED_SHIFT = 12;
    private static final int FAILED_SHIFT = 16;
    /** A cancel was sent to this leg's part (one bit per leg). */
    private static final int CANCEL_SHIFT = 20;
    /** This leg answered a WRITE/DISCARD/WRITE_ZEROES part ECANCELED: it may or may not have executed it. */
    private static final int DOUBT_SHIFT = 24;
    private static final long LOW_MASK = 0xFFFF_FFFFL;
    /** Slots a WRITE looks at for one that holds its buffer's leg views (see claim). */
    private static final int VIEW_PROBE = 4;

    private final LegMembership membership;
    /** The membership's leg records (fixed per position; their fields change). */
    private final MirrorLeg[] legs;
    private final FanOutSlot[] slots;
    private final IoCompletion legCompletion = this::onLegComplete;
    private final MirrorOptions options;
    private final WriteIntentBitmap bitmap;
    private final ActivityLog activityLog;
    private final RegionWriteFence regionWrites;
    private final int regionShift;
    private final long size;
    private int claimRotation;

    MirrorFanOut(LegMembership membership, WriteIntentBitmap bitmap, ActivityLog activityLog,
                      RegionWriteFence regionWrites, MirrorOptions options) {
        this.membership = membership;
        this.legs = membership.legs();
        this.bitmap = bitmap;
        this.activityLog = activityLog;
        this.regionWrites = regionWrites;
        this.options = options;
        this.regionShift = Integer.numberOfTrailingZeros(bitmap.regionSize());
        this.size = membership.size();
        this.slots = new FanOutSlot[options.maxInFlight()];
        for (int i = 0; i < slots.length; i++) {
            slots[i] = new FanOutSlot(i);
        }
    }

    static boolean isWriteLike(IoOp op) {
        return op == IoOp.WRITE || op == IoOp.DISCARD || op == IoOp.WRITE_ZEROES;
    }

    /** A request the device has checked (open, valid): to the legs, or failed with ENOMEM/EIO at once. */
    void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag, IoCompletion completion) {
        FanOutSlot s = claim(buffer, op == IoOp.WRITE);
        if (s == null) {
            completion.onComplete(tag, IoStatus.ENOMEM);
            return;
        }
        long genBits = s.word.get() & ~LOW_MASK;
        int gen = (int) (genBits >>> 32);
        s.callerTag = tag;
        s.callerCompletion = completion;
        s.op = op;
        s.offset = offset;
        s.length = length;
        s.flags = flags;
        s.buffer = buffer;
        s.position = buffer == null ? 0 : buffer.position();
        s.limit = buffer == null ? 0 : buffer.limit();
        s.lastError = 0;
        s.skippedMask = 0;
        boolean writeLike = isWriteLike(op);
        int targets;
        if (op == IoOp.READ) {
            int leg = membership.pickReadLeg(0);
            targets = leg < 0 ? 0 : 1 << leg;
        } else {
            if (writeLike) {
                s.firstRegion = (int) (offset >>> regionShift);
                s.lastRegion = (int) ((offset + length - 1) >>> regionShift);
                regionWrites.beginWrite(s.firstRegion, s.lastRegion);
                activityLog.begin(offset, length); // activity log: durable before any leg sees the write
            } else if (op == IoOp.FLUSH) {
                s.flushRound = activityLog.startFlushRound(); // activity log: a successful flush cleans extents
            }
            targets = 0;
            int skipped = 0;
            for (int i = 0; i < MAX_LEGS; i++) {
                MirrorLeg l = legs[i];
                LegState st = l.state;
                if (st == LegState.IN_SYNC || st == LegState.RESYNCING) {
                    targets |= 1 << i;
                } else if (writeLike && st == LegState.FAILED) {
                    // Dekker pair with the resync's start: count first, then look again, so a resync that flips
                    // the leg to RESYNCING either sees this write in skippedWrites or this write sees RESYNCING.
                    l.skippedWrites.incrementAndGet();
                    st = l.state;
                    if (st == LegState.RESYNCING || st == LegState.IN_SYNC) {
                        l.skippedWrites.decrementAndGet();
                        targets |= 1 << i;
                    } else {
                        skipped |= 1 << i;
                    }
                }
            }
            s.skippedMask = skipped;
            if (skipped != 0) {
                bitmap.markDirty(offset, length);
            }
        }
        if (targets == 0) {
            s.lastError = IoStatus.EIO;
            finish(s, s.word.get());
            return;
        }
        s.issuedAt = System.nanoTime();
        s.word.set(genBits | ISSUING | targets | ((long) targets << TRIED_SHIFT));
        boolean first = true;
        for (int i = 0; i < MAX_LEGS; i++) {
            if ((targets & (1 << i)) == 0) {
                continue;
            }
            ByteBuffer b = null;
            if (buffer != null) {
                b = first ? buffer : s.view(i, buffer);
            }
            first = false;
            issue(s, gen, i, b);
        }
        // A leg dropped while we were issuing may have missed the sweep of this slot (or the caller cancelled
        // while the parts were being handed out, before a leg knew its part): cancel those parts now.
        boolean cancelledMeanwhile = (s.word.get() & CALLER_CANCELLED) != 0;
        for (int i = 0; i < MAX_LEGS; i++) {
            if ((targets & (1 << i)) != 0) {
                LegState st = legs[i].state;
                if (cancelledMeanwhile || st == LegState.FAILED || st == LegState.EMPTY) {
                    // Forced: a drop's sweep may have sent its cancel before this part reached the leg.
                    cancelLegPart(s, gen, i, true);
                }
            }
        }
        endIssuing(s, gen, ISSUING);
    }

    private void issue(FanOutSlot s, int gen, int leg, ByteBuffer b) {
        MirrorLeg l = legs[leg];
        BlockDevice d = l.device;
        l.inFlight.incrementAndGet();
        s.legEpoch[leg] = l.resyncEpoch;
        s.legDevice[leg] = d;
        long legTag = ((long) gen << 32) | ((long) s.index << 2) | leg;
        if (d == null) {
            onLegComplete(legTag, REMOVED);
            return;
        }
        try {
            d.submit(s.op, s.offset, s.length, s.flags, b, legTag, legCompletion);
        } catch (RuntimeException e) {
            // A leg must not throw; if it does, it is broken.
            onLegComplete(legTag, IoStatus.EIO);
        }
    }

    /**
     * Takes a free slot: from the buffer's identity hash on (so a caller that reuses its buffers reuses the slots'
     * leg views), or round-robin without a buffer. A WRITE, the one request that takes views, first looks
     * {@value #VIEW_PROBE} slots from there for a free slot whose views are of this buffer or that has none: two
     * buffers whose hashes pick one slot then settle on neighbouring slots instead of taking turns on one set of
     * views (a {@code duplicate()} per write). Otherwise the first free slot.
     */
    private FanOutSlot claim(ByteBuffer buffer, boolean takesViews) {
        int n = slots.length;
        int start = buffer != null
                ? (System.identityHashCode(buffer) & 0x7FFF_FFFF) % n
                : (claimRotation++ & 0x7FFF_FFFF) % n;
        if (takesViews && buffer != null) {
            for (int k = 0, probe = Math.min(n, VIEW_PROBE); k < probe; k++) {
                int idx = start + k;
                if (idx >= n) {
                    idx -= n;
                }
                FanOutSlot s = slots[idx];
                long w = s.word.get();
                // viewsFitFor is read before the CAS: the slot is free, so only its next owner writes its views.
                if ((w & LOW_MASK) == 0 && s.viewsFitFor(buffer)
                        && s.word.compareAndSet(w, (w & ~LOW_MASK) + (1L << 32) | ISSUING)) {
                    return s;
                }
            }
        }
        for (int k = 0; k < n; k++) {
            int idx = start + k;
            if (idx >= n) {
                idx -= n;
            }
            FanOutSlot s = slots[idx];
            long w = s.word.get();
            if ((w & LOW_MASK) == 0 && s.word.compareAndSet(w, (w & ~LOW_MASK) + (1L << 32) | ISSUING)) {
                return s;
            }
        }
        return null;
    }

    private void onLegComplete(long tag, int status) {
        int leg = (int) (tag & 3);
        long index = (tag & LOW_MASK) >>> 2;
        if (leg >= MAX_LEGS || index >= slots.length) {
            return;
        }
        legDone(slots[(int) index], (int) (tag >>> 32), leg, status);
    }

    /** One leg's part of a slot finished with {@code status} (a completion, a timeout, a drop or a removal). */
    private void legDone(FanOutSlot s, int gen, int leg, int status) {
        long pendingBit = 1L << leg;
        if (status == LEG_TIMEOUT) {
            long w0 = s.word.get();
            if ((int) (w0 >>> 32) != gen || (w0 & pendingBit) == 0) {
                return;
            }
            MirrorLeg l = legs[leg];
            if (!membership.dropLeg(leg, IoStatus.ETIMEDOUT, s.legEpoch[leg]) && l.state == LegState.IN_SYNC
                    && l.resyncEpoch == s.legEpoch[leg]) {
                return; // the last in-sync leg is never dropped for slowness: its request waits (rule 3)
            }
            // Dropped (the drop cancelled its parts) or dropped meanwhile: the part still holds the buffer, so it is
            // cancelled, and counted when the leg answers.
            cancelLegPart(s, gen, leg, false);
            return;
        }
        if (status != IoStatus.OK && status != REMOVED && s.legDevice[leg] != legs[leg].device) {
            status = REMOVED; // the answer of a device removed (or replaced) since: neither success nor failure
        }
        if (status != IoStatus.OK && status != REMOVED && isLegFailure(status)) {
            long w0 = s.word.get();
            LegState st = legs[leg].state;
            if ((int) (w0 >>> 32) == gen && (w0 & pendingBit) != 0
                    && (st == LegState.IN_SYNC || st == LegState.RESYNCING)) {
                // Persist "leg out of sync" before anything can be acknowledged without it; the drop fails this
                // leg's part of every slot, this one included, through the branch below. Only the incarnation
                // the request was issued to is dropped: a leg returned since then is not to blame.
                membership.dropLeg(leg, status, s.legEpoch[leg]);
            }
        }
        while (true) {
            long w = s.word.get();
            if ((int) (w >>> 32) != gen || (w & pendingBit) == 0) {
                return;
            }
            IoOp op = s.op;
            long issuedAt = s.issuedAt;
            long nw = w & ~pendingBit;
            int retryLeg = -1;
            if (status == IoStatus.OK) {
                nw |= 1L << (OK_SHIFT + leg);
            } else {
                if (status != REMOVED) {
                    nw |= 1L << (FAILED_SHIFT + leg);
                    // A part this device cancelled failed for the caller as EIO (timeout, drop) or ESHUTDOWN
                    // (close); ECANCELED reaches the caller only when it asked for the cancel itself.
                    s.lastError = status != IoStatus.ECANCELED || (w & CALLER_CANCELLED) != 0 ? status
                            : membership.isClosed() ? IoStatus.ESHUTDOWN : IoStatus.EIO;
                }
                if (op == IoOp.READ && (w & CALLER_CANCELLED) == 0) {
                    int tried = (int) ((w >>> TRIED_SHIFT) & 7);
                    retryLeg = membership.pickReadLeg(tried | (1 << leg));
                    if (retryLeg >= 0) {
                        // This leg's part has completed: the buffer is free for the next leg.
                        nw |= (1L << retryLeg) | (1L << (TRIED_SHIFT + retryLeg)) | RETRYING;
                        nw &= ~(1L << (CANCEL_SHIFT + retryLeg));
                        s.issuedAt = System.nanoTime();
                    }
                } else if (isWriteLike(op) && status != REMOVED) {
                    // Durable before the caller can hear OK: this leg missed the write.
                    bitmap.markDirty(s.offset, s.length);
                    if (status == IoStatus.ECANCELED) {
                        nw |= 1L << (DOUBT_SHIFT + leg); // cancelled below: it may have landed anyway
                    }
                }
            }
            if (!s.word.compareAndSet(w, nw)) {
                continue;
            }
            MirrorLeg l = legs[leg];
            l.inFlight.decrementAndGet();
            if (status == IoStatus.OK && op == IoOp.READ) {
                long sample = System.nanoTime() - issuedAt;
                long ewma = l.readLatencyNanos;
                l.readLatencyNanos = ewma == 0 ? sample : ewma + ((sample - ewma) >> 3);
            }
            if (retryLeg >= 0) {
                s.buffer.limit(s.limit).position(s.position);
                issue(s, gen, retryLeg, s.buffer);
                if ((s.word.get() & CALLER_CANCELLED) != 0) {
                    cancelLegPart(s, gen, retryLeg, true); // cancelled while the retry was being handed out
                }
                endIssuing(s, gen, RETRYING);
            } else if ((nw & BUSY) == 0) {
                finish(s, nw);
            }
            return;
        }
    }

    private void endIssuing(FanOutSlot s, int gen, long bit) {
        while (true) {
            long w = s.word.get();
            if ((int) (w >>> 32) != gen || (w & bit) == 0) {
                return;
            }
            long nw = w & ~bit;
            if (s.word.compareAndSet(w, nw)) {
                if ((nw & BUSY) == 0) {
                    finish(s, nw);
                }
                return;
            }
        }
    }

    /** Statuses that mean "this leg is broken" rather than "this request is wrong". */
    private static boolean isLegFailure(int status) {
        return status == IoStatus.EIO || status == IoStatus.ESHUTDOWN || status == IoStatus.ETIMEDOUT
                || status == IoStatus.ENOMEM;
    }

    private void finish(FanOutSlot s, long w) {
        int ok = (int) ((w >>> OK_SHIFT) & 7);
        int failed = (int) ((w >>> FAILED_SHIFT) & 7);
        IoOp op = s.op;
        int status;
        if (op == IoOp.READ) {
            status = ok != 0 ? IoStatus.OK : s.lastError != 0 ? s.lastError : IoStatus.EIO;
        } else {
            status = settle(s, ok, failed, (int) ((w >>> DOUBT_SHIFT) & 7));
        }
        if (op == IoOp.FLUSH && status == IoStatus.OK) {
            activityLog.flushRoundDone(s.flushRound); // activity log
        }
        if (isWriteLike(op)) {
            activityLog.end(s.offset, s.length); // activity log
            regionWrites.endWrite(s.firstRegion, s.lastRegion);
            int skipped = s.skippedMask;
            for (int i = 0; i < MAX_LEGS; i++) {
                if ((skipped & (1 << i)) != 0) {
                    legs[i].skippedWrites.decrementAndGet();
                }
            }
        }
        long tag = s.callerTag;
        IoCompletion c = s.callerCompletion;
        s.callerCompletion = null;
        s.buffer = null;
        s.word.set(w & ~LOW_MASK);
        c.onComplete(tag, status);
    }

    /**
     * The status of a finished write or flush (rule 2 of the device's class comment). Legs that failed a write are
     * dropped first (only the incarnation it was issued to; refused for the last in-sync leg), then it is
     * acknowledged only if a leg that is in sync now has it and no leg that failed it is still in sync. A write that
     * is not acknowledged but reached a non-authoritative leg makes that leg differ from the authority: it is dropped
     * too. A flush is settled like a write: OK only if an in-sync leg flushed and every leg that failed it (with any
     * status: ENOSPC too) is no longer in sync; the last in-sync leg is never dropped, so its failure fails the flush.
     * A write part cancelled below (ECANCELED: the caller gave up, or a drop) may or may not have landed: it counts
     * as failed, and if no in-sync leg completed the write OK, {@link #dropLegsInDoubt} keeps one authority.
     */
    private int settle(FanOutSlot s, int ok, int failed, int inDoubt) {
        boolean writeLike = isWriteLike(s.op);
        int error = s.lastError != 0 ? s.lastError : IoStatus.EIO;
        boolean failedStillInSync = false;
        if (failed != 0 && (writeLike || s.op == IoOp.FLUSH)) {
            boolean dropped = false;
            for (int i = 0; i < MAX_LEGS; i++) {
                if ((failed & (1 << i)) == 0) {
                    continue;
                }
                MirrorLeg l = legs[i];
                if (ok != 0) {
                    // A refusal the other legs did not share (ENOSPC on one leg...) makes the legs differ.
                    dropped |= membership.dropLeg(i, error, s.legEpoch[i]);
                }
                failedStillInSync |= l.state == LegState.IN_SYNC && l.resyncEpoch == s.legEpoch[i];
            }
            if (dropped && writeLike) {
                // legDone marked the region before this leg was out; a resync that ended meanwhile with every
                // leg in sync may have cleared it again. Durable before the caller hears OK.
                bitmap.markDirty(s.offset, s.length);
            }
        }
        if (writeLike && inDoubt != 0 && (ok & membership.inSyncMask()) == 0) {
            dropLegsInDoubt(s, inDoubt, error);
        }
        if ((ok & membership.inSyncMask()) != 0 && !failedStillInSync) {
            return IoStatus.OK;
        }
        if (writeLike && ok != 0) {
            for (int i = 0; i < MAX_LEGS; i++) {
                if ((ok & (1 << i)) != 0 && legs[i].state == LegState.RESYNCING) {
                    bitmap.markDirty(s.offset, s.length);
                    membership.dropLeg(i, error, s.legEpoch[i]);
                }
            }
        }
        return error;
    }

    /**
     * No in-sync leg completed this write OK and some live legs answered it ECANCELED (cancelled everywhere, e.g. by
     * the caller): each of those may or may not hold it, so two in-sync legs may now differ. The lowest in-sync leg
     * stays the authority (whatever it holds: the caller did not hear OK, so either content is allowed) and every
     * other live leg in doubt is dropped, so it serves no read and gets the region back from the authority by a
     * resync (rule 3 holds: the authority stays in sync). The region is marked in the bitmap before the drop is
     * persisted (legDone marked it already; a resync that ended meanwhile may have cleared it).
     */
    private void dropLegsInDoubt(FanOutSlot s, int inDoubt, int error) {
        int authority = Integer.numberOfTrailingZeros(membership.inSyncMask());
        boolean marked = false;
        for (int i = 0; i < MAX_LEGS; i++) {
            if ((inDoubt & (1 << i)) == 0 || i == authority) {
                continue;
            }
            MirrorLeg l = legs[i];
            LegState st = l.state;
            if ((st == LegState.IN_SYNC || st == LegState.RESYNCING) && l.resyncEpoch == s.legEpoch[i]) {
                if (!marked) {
                    bitmap.markDirty(s.offset, s.length);
                    marked = true;
                }
                membership.dropLeg(i, error, s.legEpoch[i]);
            }
        }
    }

    // ------------------------------------------------------------------------------------------------ failures

    /** See {@link MirrorBlockDevice#checkTimeouts}. Cost: one pass over the slots. */
    void checkTimeouts(long nowNanos) {
        long limit = options.legTimeoutNanos();
        for (FanOutSlot s : slots) {
            long w = s.word.get();
            int pending = (int) (w & PENDING_MASK);
            if (pending == 0 || nowNanos - s.issuedAt < limit) {
                continue;
            }
            int gen = (int) (w >>> 32);
            int cancelled = (int) ((w >>> CANCEL_SHIFT) & 7);
            for (int i = 0; i < MAX_LEGS; i++) {
                if ((pending & ~cancelled & (1 << i)) != 0) {
                    legDone(s, gen, i, LEG_TIMEOUT);
                }
            }
        }
    }

    /**
     * A leg is being dropped (under the membership's lock, before the masks are persisted): its node may lose what
     * it had not flushed, so the regions of every write in flight are marked (one the leg already answered is not
     * failed over, so nothing else marks it). A slot reused meanwhile can only add regions: an extra copy, never a
     * missed one.
     */
    void markWritesInFlightDirty() {
        for (FanOutSlot s : slots) {
            long w = s.word.get();
            if ((w & LOW_MASK) == 0) {
                continue;
            }
            IoOp op = s.op;
            long offset = s.offset;
            int length = s.length;
            if (op != null && isWriteLike(op) && length > 0 && offset >= 0 && offset < size) {
                long last = (Math.min(size, offset + length) - 1) >>> regionShift;
                for (long r = offset >>> regionShift; r <= last; r++) {
                    bitmap.setDirtyBit(r);
                }
            }
        }
    }

    /**
     * Cancels this leg's part of every in-flight request issued to it up to {@code upToEpoch}; each part is then
     * counted when the leg answers (reads move to another leg then, writes count the leg as failed).
     */
    void failOver(int leg, long upToEpoch) {
        long bit = 1L << leg;
        for (FanOutSlot s : slots) {
            long w = s.word.get();
            if ((w & bit) != 0 && s.legEpoch[leg] <= upToEpoch) {
                cancelLegPart(s, (int) (w >>> 32), leg, false);
            }
        }
    }

    /**
     * Asks the device leg {@code leg}'s part of {@code s} was issued to to cancel it, once (its cancel bit), or again
     * if {@code force} (the part may have been issued after an earlier cancel found nothing to cancel).
     */
    private void cancelLegPart(FanOutSlot s, int gen, int leg, boolean force) {
        long cancelBit = 1L << (CANCEL_SHIFT + leg);
        BlockDevice d = s.legDevice[leg];
        while (true) {
            long w = s.word.get();
            if ((int) (w >>> 32) != gen || (w & (1L << leg)) == 0) {
                return; // completed meanwhile
            }
            if ((w & cancelBit) != 0 && !force) {
                return;
            }
            if ((w & cancelBit) != 0 || s.word.compareAndSet(w, w | cancelBit)) {
                break;
            }
        }
        if (d != null) {
            d.cancel(((long) gen << 32) | ((long) s.index << 2) | leg, legCompletion);
        }
    }

    /** See {@link MirrorBlockDevice#cancel}. */
    void cancel(long tag, IoCompletion completion) {
        for (FanOutSlot s : slots) {
            long w = s.word.get();
            if ((w & BUSY) == 0 || s.callerCompletion != completion || s.callerTag != tag) {
                continue;
            }
            int gen = (int) (w >>> 32);
            while (!s.word.compareAndSet(w, w | CALLER_CANCELLED)) {
                w = s.word.get();
                if ((int) (w >>> 32) != gen || (w & BUSY) == 0) {
                    break;
                }
            }
            for (int i = 0; i < MAX_LEGS; i++) {
                cancelLegPart(s, gen, i, false);
            }
        }
    }
}
