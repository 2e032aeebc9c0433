package io.weft.core.mirror;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.DeviceInfo;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoRequests;
import io.weft.core.io.IoStatus;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * A RAID-1 style {@link BlockDevice} over up to {@value #MAX_LEGS} leg devices (any {@code BlockDevice}: a local
 * store, a CXL or RDMA client channel).
 *
 * <h2>IO</h2>
 * Writes, discards and zeroing go to every live leg (in sync or resyncing) and complete when all of them have
 * answered. FLUSH goes to every live leg; FUA and the other flags pass to each leg as given. A read goes to one
 * in-sync leg ({@link ReadPolicy}) and is retried on another in-sync leg if that one fails; a RESYNCING leg never
 * serves a read.
 *
 * <h2>Authority: the rules that keep every acknowledged write</h2>
 * <ol>
 * <li>The IN_SYNC legs are the authoritative ones: each holds every acknowledged write. There is always at least one
 *     (the constructor requires one, and nothing below ever takes the last one away), and the bitmap header's in-sync
 *     mask is exactly that set, persisted before any request that depends on the change completes, so a client
 *     restart starts every other leg FAILED.</li>
 * <li>A write is acknowledged OK only when every leg it was issued to has answered, at least one leg that is IN_SYNC
 *     when the write completes succeeded, and every leg that failed it is FAILED (dropped, its regions marked in the
 *     bitmap) by then. A RESYNCING leg alone never acknowledges a write.</li>
 * <li>A leg is dropped (for an error, a refusal another leg did not share, or the leg timeout) only while another
 *     IN_SYNC leg remains. The last IN_SYNC leg is never dropped: its slow requests simply wait (the io-timeout of
 *     the layer above bounds what the application sees), and its errors reach the caller as that request's status
 *     while the leg stays authoritative. If it failed a write that a RESYNCING leg accepted, the RESYNCING leg is
 *     dropped (it now holds data the authority does not; its resync starts over from the bitmap).</li>
 * <li>A leg becomes IN_SYNC only by a completed resync from an IN_SYNC leg (or by being in the persisted in-sync
 *     mask at construction), so no leg that missed an acknowledged write is ever promoted.</li>
 * </ol>
 * A write-class part a leg answers ECANCELED (cancelled below: by the caller, or given up here) is in doubt: it may
 * have landed. It counts as a failed part (region marked, the leg dropped if an in-sync leg completed the write);
 * if no in-sync leg completed it OK, the lowest in-sync leg stays the authority and every other live leg in doubt is
 * dropped, so two in-sync legs never differ after a write cancelled everywhere ({@code dropLegsInDoubt}).
 * Without a live IN_SYNC leg (its transport is down), requests wait in that leg or in the layer above (the client's
 * {@code QueueingBlockDevice} queues while no in-sync leg is connected) up to the io-timeout, then fail with EIO:
 * the single-device rules. With no leg at all a request fails with EIO at once.
 *
 * <h2>Slots, no allocation, no locks on the hot path</h2>
 * Each request takes one of {@code maxInFlight} preallocated slots. The slot's state is one atomic word:
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
 * and the steady state allocates nothing. The only lock ({@code control}) guards leg-state changes (drop, return,
 * add, remove), which are rare; the hot path reads leg states with volatile reads.
 *
 * <h2>Hung legs</h2>
 * A watchdog (the device's timer thread every legTimeout/4, or the owner via {@link #checkTimeouts}) scans the slots;
 * a leg with a request older than the leg timeout (default 500 ms) is dropped and all of its requests are failed over,
 * so a frozen leg stalls IO for at most about legTimeout + legTimeout/4 — unless it is the last IN_SYNC leg (rule 3).
 *
 * <h2>Buffer ownership: failing a leg's part over means cancelling it</h2>
 * A leg's part holds the caller's buffer (or a view of it) until that leg's completion has run, so nothing here
 * counts a part as done before that: the leg timeout, {@link #dropLeg a drop}, {@link #removeLeg a removal},
 * {@link #close} and the caller's {@link #cancel} call {@code cancel} on the device the part was issued to (remembered
 * per slot and leg) and set the part's "cancel" bit (so it is cancelled once); the part then completes through
 * {@link #onLegComplete} like any other — ECANCELED (the leg let go of the buffer) or its real status — and only then
 * does a read move to another leg or a write count the leg as failed. A read is therefore never in two legs at
 * once, and the caller completes only when no leg holds its buffer. An ECANCELED answer is no leg failure by itself
 * (the leg was dropped already, or the caller gave up); "CC" (cancelled by the caller) stops a read from being
 * retried. The answer of a device that was removed (or replaced) since counts as "removed". A leg that never answers
 * a cancel keeps its part, and the request waits: the transports bound that with their own deadline (cxl.md, rdma.md).
 * All of this is the rare path; the hot path only records the leg device per part.
 *
 * <h2>Write intent and resync</h2>
 * While any leg is FAILED, a write marks its regions in the {@link WriteIntentBitmap} durably <em>before</em> it is
 * issued. {@link #legReturned} copies only the dirty regions to a returning leg (everything for {@link #addLeg}), on
 * one background thread, throttled; see {@link ResyncProgress} and docs/mirror.md for the race rules with foreground
 * writes (per-region started/finished counters, retry, and a one-region fence as the last resort). A resync flushes
 * the leg before it clears the bits of the regions it copied (every 64 regions) and before the leg is IN_SYNC.
 *
 * <h2>Crash consistency: the activity log</h2>
 * Every write, discard or zeroing first makes its extents active in the {@link ActivityLog} (durable in the bitmap
 * file's header before any leg sees the request; no IO for an extent already active). A device constructed over a
 * log that is not empty (the previous owner crashed) marks the logged extents in the bitmap and starts every in-sync
 * leg but the lowest FAILED, so one leg serves reads until {@link #legReturned} has copied exactly those regions to
 * the others. {@link #close} empties the log when nothing is in flight and the legs flushed. A dropped leg also gets
 * the regions of the log's unflushed extents (its node may lose what it had not flushed).
 *
 * <h2>Flush</h2>
 * A FLUSH is settled like a write (rule 2): OK only if an in-sync leg flushed and every leg that failed it, with
 * any status, has been dropped; the last in-sync leg is never dropped, so when it fails a flush the flush fails.
 *
 * <p>Threads: {@link #submit} from one thread at a time (the device is thread-safe for that plus completions on any
 * thread; concurrent submitters are also safe but share the read-leg rotation counter racily). Control methods from
 * any thread.
 *
 * <p>Requirement on legs: once a leg has been dropped, requests still held by it may not land later than
 * {@link #legReturned} (a transport must fence or tear down the old session before the leg is reported back), a
 * leg must not touch a buffer after reporting completion, and it answers {@link BlockDevice#cancel} in bounded time.
 */
public final class MirrorBlockDevice implements BlockDevice {
    public static final int MAX_LEGS = 3;

    /** Internal status for "leg removed by the operator": neither success nor failure. */
    private static final int REMOVED = -1;
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

    private final Leg[] legs = new Leg[MAX_LEGS];
    private final Slot[] slots;
    private final IoCompletion legCompletion = this::onLegComplete;
    private final MirrorOptions options;
    private final WriteIntentBitmap bitmap;
    /** Crash consistency (see ActivityLog): extents written to, durable before the write goes to a leg. */
    private final ActivityLog activityLog;
    private final LegFlush legFlush = new LegFlush();
    private final BlockDevice[] alFlushDevices = new BlockDevice[MAX_LEGS];
    private final long[] alFlushEpochs = new long[MAX_LEGS];
    private final int[] alFlushStatuses = new int[MAX_LEGS];
    /** The activity log's flush waits only for legs still live in the incarnation it flushed (alFlushEpochs). */
    private final LegFlush.LegWatch alFlushWatch = this::stillLiveForActivityLogFlush;
    /** The resync's flush waits only while its target is still in this resync (see syncIo for the bound). */
    private final LegFlush.LegWatch resyncFlushWatch = this::stillInThisResync;
    /** Extents the activity log held at construction (an unclean stop before); 0 after a clean close. */
    private final int recoveredExtents;
    private final int regionShift;
    private final long regionCount;
    private final AtomicIntegerArray regionStarted;
    private final AtomicIntegerArray regionFinished;
    private volatile long fencedRegion = -1;
    private final CopyOnWriteArrayList<MirrorListener> listeners = new CopyOnWriteArrayList<>();
    private final Object control = new Object();
    private final ScheduledExecutorService watchdog;
    private final ExecutorService resyncExecutor;
    private final long size;

    private volatile DeviceInfo info;
    private volatile boolean closed;
    private int readRotation;
    private int claimRotation;
    /** Legs (bit i) whose contents are authoritative as persisted; never 0 once a leg has been in sync. */
    private int persistedInSync;
    private int persistedFullSync;

    // Resync progress (written by the resync thread, read by snapshots).
    private volatile int resyncLeg = -1;
    /** The epoch of the leg the resync thread is copying to (see checkStillResyncing). */
    private volatile long resyncEpoch;
    private volatile boolean resyncRunning;
    private volatile boolean resyncFull;
    private volatile long resyncDone;
    private volatile long resyncTotal;
    private volatile long resyncBytes;
    private volatile long resyncStartNanos;
    private volatile long resyncEndNanos;
    private volatile long resyncRetries;
    private volatile String resyncError;
    private final AtomicLong regionsCopiedTotal = new AtomicLong();
    private ByteBuffer copyBuffer;

    /**
     * @param legDevices one device per leg position (1..{@value #MAX_LEGS}); {@code null} = empty position
     * @param bitmap     the write-intent bitmap; its leg masks decide which legs start in sync (legs not in its
     *                   in-sync mask start FAILED and need {@link #legReturned}); its device size must equal the
     *                   mirror's (the smallest leg's)
     * @param options    tunables
     */
    public MirrorBlockDevice(List<BlockDevice> legDevices, WriteIntentBitmap bitmap, MirrorOptions options) {
        if (legDevices.isEmpty() || legDevices.size() > MAX_LEGS) {
            throw new IllegalArgumentException("1.." + MAX_LEGS + " legs, got " + legDevices.size());
        }
        this.options = options;
        this.bitmap = bitmap;
        long min = Long.MAX_VALUE;
        for (int i = 0; i < MAX_LEGS; i++) {
            BlockDevice d = i < legDevices.size() ? legDevices.get(i) : null;
            legs[i] = new Leg(i);
            legs[i].device = d;
            if (d != null) {
                min = Math.min(min, d.info().size());
            }
        }
        if (min == Long.MAX_VALUE) {
            throw new IllegalArgumentException("at least one leg device is required");
        }
        this.size = min;
        if (bitmap.deviceSize() != size) {
            throw new IllegalArgumentException("bitmap is for " + bitmap.deviceSize() + " bytes, legs have " + size);
        }
        int inSync = bitmap.inSyncMask();
        int full = bitmap.fullSyncMask();
        int attached = 0;
        for (Leg l : legs) {
            if (l.device == null) {
                l.state = LegState.EMPTY;
            } else {
                attached |= 1 << l.index;
                l.state = (inSync & (1 << l.index)) != 0 ? LegState.IN_SYNC : LegState.FAILED;
            }
        }
        if ((inSync & attached) == 0) {
            throw new IllegalArgumentException("no attached leg is in sync according to " + bitmap);
        }
        persistedInSync = inSync & attached;
        persistedFullSync = full & attached;
        if (persistedInSync != inSync || persistedFullSync != full) {
            bitmap.updateLegs(persistedInSync, persistedFullSync);
        }
        // ---- activity log: recover after an unclean stop (issue 11; see recoverActivityLog)
        this.activityLog = new ActivityLog(bitmap, options.activityExtents(), options.activityExtentSize(),
                this::flushLiveLegs);
        this.recoveredExtents = recoverActivityLog();
        // ---- end activity log
        this.regionShift = Integer.numberOfTrailingZeros(bitmap.regionSize());
        this.regionCount = bitmap.regionCount();
        this.regionStarted = new AtomicIntegerArray((int) regionCount);
        this.regionFinished = new AtomicIntegerArray((int) regionCount);
        this.slots = new Slot[options.maxInFlight()];
        for (int i = 0; i < slots.length; i++) {
            slots[i] = new Slot(i);
        }
        this.info = combinedInfo();
        this.resyncExecutor = Executors.newSingleThreadExecutor(r -> daemon(r, "weft-mirror-resync"));
        if (options.startWatchdog()) {
            long period = Math.max(1_000_000L, options.legTimeoutNanos() / 4);
            watchdog = Executors.newSingleThreadScheduledExecutor(r -> daemon(r, "weft-mirror-watchdog"));
            watchdog.scheduleAtFixedRate(() -> checkTimeouts(System.nanoTime()), period, period,
                    TimeUnit.NANOSECONDS);
        } else {
            watchdog = null;
        }
    }

    /**
     * After an unclean stop the legs may differ wherever a write was in flight, and the activity log names those
     * extents. They are marked in the bitmap and every in-sync leg but one (the lowest position) starts FAILED, so
     * reads come from that one leg until {@link #legReturned} has copied exactly those regions (plus any the bitmap
     * already had) to the others. Order on disk: bits, then leg masks, then the emptied log; a crash in between
     * repeats this on the next start.
     *
     * @return the number of extents the log held
     */
    private int recoverActivityLog() {
        long[] logged = activityLog.loggedSlots();
        if (logged.length == 0) {
            return 0;
        }
        long regionSize = bitmap.regionSize();
        for (long slot : logged) {
            long first = slot >>> 32;
            long count = slot & 0xFFFF_FFFFL;
            bitmap.markDirty(first * regionSize, count * regionSize);
        }
        int source = -1;
        for (Leg l : legs) {
            if (l.state != LegState.IN_SYNC) {
                continue;
            }
            if (source < 0) {
                source = l.index;
            } else {
                l.state = LegState.FAILED;
                persistedInSync &= ~(1 << l.index);
            }
        }
        bitmap.updateLegs(persistedInSync, persistedFullSync);
        activityLog.clear();
        return logged.length;
    }

    /**
     * The activity log's flush (before an extent leaves it, and at a clean close): FLUSH every live leg that can
     * flush, in parallel (no longer waiting for a leg dropped or removed meanwhile: {@link LegFlush.LegWatch}).
     * A leg that fails or does not answer within twice the leg timeout is dropped if another
     * in-sync leg remains (its unflushed extents are then marked in the bitmap); otherwise the flush failed.
     */
    private boolean flushLiveLegs() {
        // Called under the activity log's lock only: the scratch arrays are that lock's.
        BlockDevice[] devices = alFlushDevices;
        long[] epochs = alFlushEpochs;
        int[] statuses = alFlushStatuses;
        java.util.Arrays.fill(devices, null);
        int mask = 0;
        for (Leg l : legs) {
            BlockDevice d = l.device;
            LegState st = l.state;
            if (d != null && (st == LegState.IN_SYNC || st == LegState.RESYNCING) && d.info().canFlush()) {
                devices[l.index] = d;
                epochs[l.index] = l.resyncEpoch;
                mask |= 1 << l.index;
            }
        }
        if (mask == 0) {
            return true;
        }
        legFlush.run(devices, mask, options.legTimeoutNanos() * 2, alFlushWatch, statuses);
        boolean ok = true;
        for (int i = 0; i < MAX_LEGS; i++) {
            if ((mask & (1 << i)) != 0 && statuses[i] != IoStatus.OK && !dropLeg(i, statuses[i], epochs[i])) {
                ok &= legs[i].state != LegState.IN_SYNC && legs[i].state != LegState.RESYNCING;
            }
        }
        return ok;
    }

    /**
     * A leg is being dropped (under {@code control}, before the masks are persisted): its node may lose what it had
     * not flushed, so the bitmap gets the activity log's unflushed extents and the regions of every write in flight
     * (one the leg already answered is not failed over, so nothing else marks it). A slot reused meanwhile can only
     * add regions: an extra copy, never a missed one.
     */
    private void markUnflushedDirty() {
        activityLog.markUnflushedDirty();
        for (Slot s : slots) {
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

    /** Flushes one leg (the end of its resync); OK if it cannot flush (its writes are durable when answered). */
    private int flushLeg(Leg x) {
        BlockDevice d = x.device;
        if (d == null) {
            return IoStatus.ESHUTDOWN;
        }
        if (!d.info().canFlush()) {
            return IoStatus.OK;
        }
        BlockDevice[] devices = new BlockDevice[MAX_LEGS];
        devices[x.index] = d;
        int[] statuses = new int[MAX_LEGS];
        // One leg timeout, as for the copy's requests (see syncIo), and no longer than the leg stays in this resync.
        legFlush.run(devices, 1 << x.index, options.legTimeoutNanos(), resyncFlushWatch, statuses);
        return statuses[x.index];
    }

    private boolean stillInThisResync(int leg) {
        return !closed && legs[leg].state == LegState.RESYNCING && legs[leg].resyncEpoch == resyncEpoch;
    }

    private boolean stillLiveForActivityLogFlush(int leg) {
        // Not "closed": close() itself flushes through here (a clean close empties the activity log).
        LegState st = legs[leg].state;
        return (st == LegState.IN_SYNC || st == LegState.RESYNCING)
                && legs[leg].resyncEpoch == alFlushEpochs[leg];
    }

    private static Thread daemon(Runnable r, String name) {
        Thread t = new Thread(r, name);
        t.setDaemon(true);
        return t;
    }

    private DeviceInfo combinedInfo() {
        DeviceInfo result = null;
        for (Leg l : legs) {
            BlockDevice d = l.device;
            if (d == null) {
                continue;
            }
            DeviceInfo i = d.info();
            if (result == null) {
                result = i.withSize(size);
                continue;
            }
            result = new DeviceInfo(size,
                    Math.max(result.logicalBlockSize(), i.logicalBlockSize()),
                    Math.max(result.preferredBlockSize(), i.preferredBlockSize()),
                    Math.min(result.maxIoSize(), i.maxIoSize()),
                    result.readOnly() || i.readOnly(),
                    result.canFlush() || i.canFlush(),
                    result.canFua() && i.canFua(),
                    result.canDiscard() && i.canDiscard(),
                    result.canWriteZeroes() && i.canWriteZeroes(),
                    result.canFastZero() && i.canFastZero(),
                    result.rotational() || i.rotational(),
                    result.flushCoversAllConnections() && i.flushCoversAllConnections());
        }
        if (result.maxIoSize() < result.preferredBlockSize()) {
            throw new IllegalArgumentException("legs disagree on IO sizes: " + result);
        }
        return result;
    }

    @Override
    public DeviceInfo info() {
        return info;
    }

    public MirrorOptions options() {
        return options;
    }

    public WriteIntentBitmap bitmap() {
        return bitmap;
    }

    public void addListener(MirrorListener listener) {
        listeners.add(listener);
    }

    public void removeListener(MirrorListener listener) {
        listeners.remove(listener);
    }

    public LegState legState(int leg) {
        return legs[leg].state;
    }

    /** The activity log (its counters for status and tests). */
    public ActivityLog activityLog() {
        return activityLog;
    }

    /** Extents the activity log held when this device was constructed: > 0 after an unclean stop. */
    public int recoveredExtents() {
        return recoveredExtents;
    }

    /** Total regions copied by every resync so far (tests count with it). */
    public long regionsCopiedTotal() {
        return regionsCopiedTotal.get();
    }

    // ------------------------------------------------------------------------------------------------ IO path

    @Override
    public void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                       IoCompletion completion) {
        if (closed) {
            completion.onComplete(tag, IoStatus.ESHUTDOWN);
            return;
        }
        int status = IoRequests.check(info, op, offset, length, flags);
        if (status == IoStatus.OK && (op == IoOp.READ || op == IoOp.WRITE)
                && (buffer == null || buffer.remaining() < length)) {
            status = IoStatus.EINVAL;
        }
        if (status != IoStatus.OK) {
            completion.onComplete(tag, status);
            return;
        }
        Slot s = claim(buffer);
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
            int leg = pickReadLeg(0);
            targets = leg < 0 ? 0 : 1 << leg;
        } else {
            if (writeLike) {
                s.firstRegion = (int) (offset >>> regionShift);
                s.lastRegion = (int) ((offset + length - 1) >>> regionShift);
                beginRegionWrite(s.firstRegion, s.lastRegion);
                activityLog.begin(offset, length); // activity log: durable before any leg sees the write
            } else if (op == IoOp.FLUSH) {
                s.flushRound = activityLog.startFlushRound(); // activity log: a successful flush cleans extents
            }
            targets = 0;
            int skipped = 0;
            for (int i = 0; i < MAX_LEGS; i++) {
                Leg l = legs[i];
                LegState st = l.state;
                if (st == LegState.IN_SYNC || st == LegState.RESYNCING) {
                    targets |= 1 << i;
                } else if (writeLike && st == LegState.FAILED) {
                    // Dekker pair with startResync: count first, then look again, so a resync that flips the
                    // leg to RESYNCING either sees this write in skippedWrites or this write sees RESYNCING.
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

    private static boolean isWriteLike(IoOp op) {
        return op == IoOp.WRITE || op == IoOp.DISCARD || op == IoOp.WRITE_ZEROES;
    }

    private void issue(Slot s, int gen, int leg, ByteBuffer b) {
        Leg l = legs[leg];
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

    private Slot claim(ByteBuffer buffer) {
        int n = slots.length;
        int start = buffer != null
                ? (System.identityHashCode(buffer) & 0x7FFF_FFFF) % n
                : (claimRotation++ & 0x7FFF_FFFF) % n;
        for (int k = 0; k < n; k++) {
            int idx = start + k;
            if (idx >= n) {
                idx -= n;
            }
            Slot s = slots[idx];
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
    private void legDone(Slot s, int gen, int leg, int status) {
        long pendingBit = 1L << leg;
        if (status == LEG_TIMEOUT) {
            long w0 = s.word.get();
            if ((int) (w0 >>> 32) != gen || (w0 & pendingBit) == 0) {
                return;
            }
            Leg l = legs[leg];
            if (!dropLeg(leg, IoStatus.ETIMEDOUT, s.legEpoch[leg]) && l.state == LegState.IN_SYNC
                    && l.resyncEpoch == s.legEpoch[leg]) {
                return; // the last in-sync leg is never dropped for slowness: its request waits (rule 3)
            }
            // Dropped (dropLeg cancelled its parts) or dropped meanwhile: the part still holds the buffer, so it is
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
                // Persist "leg out of sync" before anything can be acknowledged without it; dropLeg fails this
                // leg's part of every slot, this one included, through the branch below. Only the incarnation
                // the request was issued to is dropped: a leg returned since then is not to blame.
                dropLeg(leg, status, s.legEpoch[leg]);
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
                            : closed ? IoStatus.ESHUTDOWN : IoStatus.EIO;
                }
                if (op == IoOp.READ && (w & CALLER_CANCELLED) == 0) {
                    int tried = (int) ((w >>> TRIED_SHIFT) & 7);
                    retryLeg = pickReadLeg(tried | (1 << leg));
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
            Leg l = legs[leg];
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

    private void endIssuing(Slot s, int gen, long bit) {
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

    private void finish(Slot s, long w) {
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
            endRegionWrite(s.firstRegion, s.lastRegion);
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
     * The status of a finished write or flush (rule 2 of the class comment). Legs that failed a write are dropped
     * first (only the incarnation it was issued to; refused for the last in-sync leg), then it is acknowledged only
     * if a leg that is in sync now has it and no leg that failed it is still in sync. A write that is not
     * acknowledged but reached a non-authoritative leg makes that leg differ from the authority: it is dropped too.
     * A flush is settled like a write: OK only if an in-sync leg flushed and every leg that failed it (with any
     * status: ENOSPC too) is no longer in sync; the last in-sync leg is never dropped, so its failure fails the flush.
     * A write part cancelled below (ECANCELED: the caller gave up, or a drop) may or may not have landed: it counts
     * as failed, and if no in-sync leg completed the write OK, {@link #dropLegsInDoubt} keeps one authority.
     */
    private int settle(Slot s, int ok, int failed, int inDoubt) {
        boolean writeLike = isWriteLike(s.op);
        int error = s.lastError != 0 ? s.lastError : IoStatus.EIO;
        boolean failedStillInSync = false;
        if (failed != 0 && (writeLike || s.op == IoOp.FLUSH)) {
            boolean dropped = false;
            for (int i = 0; i < MAX_LEGS; i++) {
                if ((failed & (1 << i)) == 0) {
                    continue;
                }
                Leg l = legs[i];
                if (ok != 0) {
                    // A refusal the other legs did not share (ENOSPC on one leg...) makes the legs differ.
                    dropped |= dropLeg(i, error, s.legEpoch[i]);
                }
                failedStillInSync |= l.state == LegState.IN_SYNC && l.resyncEpoch == s.legEpoch[i];
            }
            if (dropped && writeLike) {
                // legDone marked the region before this leg was out; a resync that ended meanwhile with every
                // leg in sync may have cleared it again. Durable before the caller hears OK.
                bitmap.markDirty(s.offset, s.length);
            }
        }
        if (writeLike && inDoubt != 0 && (ok & inSyncMask()) == 0) {
            dropLegsInDoubt(s, inDoubt, error);
        }
        if ((ok & inSyncMask()) != 0 && !failedStillInSync) {
            return IoStatus.OK;
        }
        if (writeLike && ok != 0) {
            for (int i = 0; i < MAX_LEGS; i++) {
                if ((ok & (1 << i)) != 0 && legs[i].state == LegState.RESYNCING) {
                    bitmap.markDirty(s.offset, s.length);
                    dropLeg(i, error, s.legEpoch[i]);
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
    private void dropLegsInDoubt(Slot s, int inDoubt, int error) {
        int authority = Integer.numberOfTrailingZeros(inSyncMask());
        boolean marked = false;
        for (int i = 0; i < MAX_LEGS; i++) {
            if ((inDoubt & (1 << i)) == 0 || i == authority) {
                continue;
            }
            Leg l = legs[i];
            LegState st = l.state;
            if ((st == LegState.IN_SYNC || st == LegState.RESYNCING) && l.resyncEpoch == s.legEpoch[i]) {
                if (!marked) {
                    bitmap.markDirty(s.offset, s.length);
                    marked = true;
                }
                dropLeg(i, error, s.legEpoch[i]);
            }
        }
    }

    private int inSyncMask() {
        int mask = 0;
        for (Leg l : legs) {
            if (l.state == LegState.IN_SYNC) {
                mask |= 1 << l.index;
            }
        }
        return mask;
    }

    private int pickReadLeg(int excludeMask) {
        int start = readRotation++ & 0x7FFF_FFFF;
        int best = -1;
        long bestScore = Long.MAX_VALUE;
        boolean byLatency = options.readPolicy() == ReadPolicy.MIN_LATENCY;
        for (int k = 0; k < MAX_LEGS; k++) {
            int i = (start + k) % MAX_LEGS;
            Leg l = legs[i];
            if ((excludeMask & (1 << i)) != 0 || l.state != LegState.IN_SYNC) {
                continue;
            }
            long inFlight = l.inFlight.get();
            long score = byLatency ? (l.readLatencyNanos + 1) * (inFlight + 1) : inFlight;
            if (score < bestScore) {
                bestScore = score;
                best = i;
            }
        }
        return best;
    }

    private void beginRegionWrite(int first, int last) {
        while (true) {
            for (int r = first; r <= last; r++) {
                regionStarted.incrementAndGet(r);
            }
            long fenced = fencedRegion;
            if (fenced < first || fenced > last) {
                return;
            }
            // The resync is copying this region under a fence: back out and wait for it (one region copy).
            for (int r = first; r <= last; r++) {
                regionFinished.incrementAndGet(r);
            }
            int spins = 0;
            while (fencedRegion == fenced) {
                if (++spins < 100) {
                    Thread.onSpinWait();
                } else {
                    LockSupport.parkNanos(20_000);
                }
            }
        }
    }

    /** The region the resync has fenced (foreground writes to it wait), or -1; for tests. */
    long fencedRegion() {
        return fencedRegion;
    }

    private void endRegionWrite(int first, int last) {
        for (int r = first; r <= last; r++) {
            regionFinished.incrementAndGet(r);
        }
    }

    // ------------------------------------------------------------------------------------------------ failures

    /**
     * Fails every leg request older than the leg timeout and drops its leg. Called by the device's own watchdog, or
     * by the owner's timer when {@link MirrorOptions#startWatchdog()} is false. Cost: one pass over the slots.
     */
    public void checkTimeouts(long nowNanos) {
        long limit = options.legTimeoutNanos();
        for (Slot s : slots) {
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

    private boolean dropLeg(int leg, int status) {
        return dropLeg(leg, status, -1);
    }

    /**
     * Marks the leg FAILED, persists that, and fails its part of every in-flight request over. Refused for the last
     * IN_SYNC leg (rule 3 of the class comment): it stays authoritative, whatever it did.
     *
     * @param onlyEpoch drop only if the leg is still in this resync epoch (-1: whatever its epoch)
     * @return whether this call dropped the leg
     */
    private boolean dropLeg(int leg, int status, long onlyEpoch) {
        if (closed) {
            return false;
        }
        Leg l = legs[leg];
        long droppedEpoch;
        synchronized (control) {
            LegState st = l.state;
            if (st != LegState.IN_SYNC && st != LegState.RESYNCING) {
                return false;
            }
            if (onlyEpoch >= 0 && l.resyncEpoch != onlyEpoch) {
                return false;
            }
            if (st == LegState.IN_SYNC && !otherInSync(leg)) {
                return false;
            }
            l.state = LegState.FAILED;
            droppedEpoch = l.resyncEpoch;
            persistedInSync &= ~(1 << leg);
            markUnflushedDirty(); // activity log: its unflushed writes may be lost with its node
            bitmap.updateLegs(persistedInSync, persistedFullSync);
        }
        long now = System.nanoTime();
        String reason = status == IoStatus.ETIMEDOUT
                ? "no completion within " + options.legTimeoutNanos() / 1_000_000 + " ms"
                : status == IoStatus.ECANCELED ? "a write cancelled on it may or may not have landed"
                : IoStatus.name(status);
        for (MirrorListener m : listeners) {
            m.legDropped(leg, reason, now);
        }
        // Only requests issued to the dropped incarnation: the leg may have been returned again already.
        failOver(leg, droppedEpoch);
        return true;
    }

    private boolean otherInSync(int leg) {
        for (Leg o : legs) {
            if (o.index != leg && o.state == LegState.IN_SYNC) {
                return true;
            }
        }
        return false;
    }

    /**
     * Cancels this leg's part of every in-flight request issued to it up to {@code upToEpoch}; each part is then
     * counted when the leg answers (reads move to another leg then, writes count the leg as failed).
     */
    private void failOver(int leg, long upToEpoch) {
        long bit = 1L << leg;
        for (Slot s : slots) {
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
    private void cancelLegPart(Slot s, int gen, int leg, boolean force) {
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

    /**
     * Cancels the caller's request: every leg's part still live is cancelled, a failed read is not retried, and the
     * caller completes from the legs' answers (ECANCELED, or OK if a leg finished first). A write part cancelled
     * below is in doubt (it may have landed): its regions are marked and, as for any write a leg failed, the leg is
     * dropped if an in-sync leg completed the write ({@code settle}); if none did (cancelled everywhere), the lowest
     * in-sync leg stays the authority and the other legs in doubt are dropped, so they resync the region from it.
     * Any thread; unknown or completed requests: no effect.
     */
    @Override
    public void cancel(long tag, IoCompletion completion) {
        for (Slot s : slots) {
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

    // ------------------------------------------------------------------------------------------------ control

    /**
     * The leg's transport is back (and its old requests can no longer land): copy the regions written meanwhile (or
     * everything, for a leg that was being fully synced) in the background, from an in-sync leg. (The branch for "no
     * leg in sync" is defensive: rule 3 of the class comment keeps one leg in sync, so a leg that missed acknowledged
     * writes is never made authoritative here; only a leg in the persisted in-sync mask could be.)
     *
     * @return completes with the final progress when the leg is in sync, exceptionally if the resync fails
     */
    public CompletableFuture<ResyncProgress> legReturned(int leg) {
        checkLeg(leg);
        synchronized (control) {
            Leg l = legs[leg];
            if (l.state != LegState.FAILED) {
                throw new IllegalStateException("leg " + leg + " is " + l.state + ", not FAILED");
            }
            boolean anyInSync = false;
            for (Leg o : legs) {
                anyInSync |= o.state == LegState.IN_SYNC;
            }
            if (!anyInSync) {
                if ((persistedInSync & (1 << leg)) == 0) {
                    throw new IllegalStateException("no in-sync leg to copy from, and leg " + leg
                            + " is not the last authoritative one");
                }
                l.state = LegState.IN_SYNC;
                l.resyncDone = CompletableFuture.completedFuture(progress());
            } else {
                l.state = LegState.RESYNCING;
                long epoch = ++l.resyncEpoch;
                bitmap.updateLegs(persistedInSync, persistedFullSync);
                boolean full = (persistedFullSync & (1 << leg)) != 0;
                l.resyncDone = new CompletableFuture<>();
                CompletableFuture<ResyncProgress> done = l.resyncDone;
                resyncExecutor.execute(() -> runResync(leg, epoch, full, done));
                return done;
            }
        }
        long now = System.nanoTime();
        for (MirrorListener m : listeners) {
            m.legInSync(leg, now);
        }
        return legs[leg].resyncDone;
    }

    /**
     * Operator-requested resync of one leg ({@code weft leg resync DEV INDEX [--full]}): copies to it from an in-sync
     * leg in the background; with {@code full}, every region (for a leg whose contents are in doubt: legs that were
     * never synced, a leg restored from elsewhere), otherwise the regions marked in the bitmap. The leg stops serving
     * reads at once and is IN_SYNC again when the copy (and its flush) is done. Refused for an empty position and for
     * the only in-sync leg (it is the source). A leg that is RESYNCING starts over; a FAILED one is returned.
     *
     * @return completes with the final progress when the leg is in sync, exceptionally if the resync fails
     */
    public CompletableFuture<ResyncProgress> resyncLeg(int leg, boolean full) {
        checkLeg(leg);
        synchronized (control) {
            Leg l = legs[leg];
            if (l.state == LegState.EMPTY) {
                throw new IllegalStateException("leg " + leg + " is empty");
            }
            if (l.state == LegState.IN_SYNC && !otherInSync(leg)) {
                throw new IllegalStateException("leg " + leg + " is the only in-sync leg: it is the source of every"
                        + " resync; resync the other legs from it instead");
            }
            if (!full && l.state == LegState.IN_SYNC) {
                throw new IllegalStateException("leg " + leg + " is in sync and the bitmap marks nothing for it;"
                        + " use a full resync to copy everything to it");
            }
            if (full) {
                persistedFullSync |= 1 << leg;
            }
            if (l.state == LegState.FAILED) {
                bitmap.updateLegs(persistedInSync, persistedFullSync);
            } else {
                // IN_SYNC or RESYNCING: straight to a new resync epoch. Its requests in flight stay valid (a write
                // in flight is counted per region, so the copy of that region waits for it); a resync already
                // running for it finds the epoch changed and gives up.
                persistedInSync &= ~(1 << leg);
                bitmap.updateLegs(persistedInSync, persistedFullSync);
                l.state = LegState.RESYNCING;
                long epoch = ++l.resyncEpoch;
                l.resyncDone = new CompletableFuture<>();
                CompletableFuture<ResyncProgress> done = l.resyncDone;
                boolean copyAll = (persistedFullSync & (1 << leg)) != 0;
                resyncExecutor.execute(() -> runResync(leg, epoch, copyAll, done));
                return done;
            }
        }
        return legReturned(leg);
    }

    /**
     * Adds a leg at the first empty position and copies the whole device to it in the background. The device must
     * be at least as large as the mirror.
     *
     * @return the leg's position; {@link #resyncCompletion(int)} tells when it is in sync
     */
    public int addLeg(BlockDevice device) {
        if (device.info().size() < size) {
            throw new IllegalArgumentException("leg of " + device.info().size() + " bytes is smaller than " + size);
        }
        synchronized (control) {
            for (Leg l : legs) {
                if (l.state == LegState.EMPTY) {
                    int leg = l.index;
                    l.device = device;
                    l.readLatencyNanos = 0;
                    persistedInSync &= ~(1 << leg);
                    persistedFullSync |= 1 << leg;
                    bitmap.updateLegs(persistedInSync, persistedFullSync);
                    info = combinedInfo();
                    l.state = LegState.RESYNCING;
                    long epoch = ++l.resyncEpoch;
                    l.resyncDone = new CompletableFuture<>();
                    CompletableFuture<ResyncProgress> done = l.resyncDone;
                    resyncExecutor.execute(() -> runResync(leg, epoch, true, done));
                    return leg;
                }
            }
        }
        throw new IllegalStateException("all " + MAX_LEGS + " leg positions are in use");
    }

    /** The current (or last) resync of {@code leg}; null if none ran. */
    public CompletableFuture<ResyncProgress> resyncCompletion(int leg) {
        checkLeg(leg);
        return legs[leg].resyncDone;
    }

    /**
     * Detaches a leg (operator action). Refused for the last in-sync leg. Its in-flight requests stop counting
     * (reads move to another leg). The caller owns the returned device and closes it.
     */
    public BlockDevice removeLeg(int leg) {
        checkLeg(leg);
        BlockDevice d;
        synchronized (control) {
            Leg l = legs[leg];
            if (l.state == LegState.EMPTY) {
                throw new IllegalStateException("leg " + leg + " is empty");
            }
            if (l.state == LegState.IN_SYNC && !otherInSync(leg)) {
                throw new IllegalStateException("leg " + leg + " is the last in-sync leg");
            }
            l.state = LegState.EMPTY;
            d = l.device;
            l.device = null;
            persistedInSync &= ~(1 << leg);
            persistedFullSync &= ~(1 << leg);
            bitmap.updateLegs(persistedInSync, persistedFullSync);
        }
        failOver(leg, Long.MAX_VALUE);
        return d;
    }

    private static void checkLeg(int leg) {
        if (leg < 0 || leg >= MAX_LEGS) {
            throw new IllegalArgumentException("leg must be 0.." + (MAX_LEGS - 1) + ": " + leg);
        }
    }

    // ------------------------------------------------------------------------------------------------ resync

    private void runResync(int target, long epoch, boolean full, CompletableFuture<ResyncProgress> done) {
        Leg x = legs[target];
        resyncEpoch = epoch;
        resyncLeg = target;
        resyncFull = full;
        resyncDone = 0;
        resyncBytes = 0;
        resyncRetries = 0;
        resyncError = null;
        resyncStartNanos = System.nanoTime();
        resyncEndNanos = 0;
        resyncRunning = true;
        String error = null;
        try {
            // Writes that decided to skip the leg before it turned RESYNCING have set their bits once this is 0.
            while (x.skippedWrites.get() != 0) {
                checkStillResyncing(x);
                LockSupport.parkNanos(50_000);
            }
            resyncTotal = full ? regionCount : bitmap.dirtyCount();
            for (MirrorListener m : listeners) {
                m.resyncStarted(target, resyncTotal, full, System.nanoTime());
            }
            if (copyBuffer == null) {
                copyBuffer = ByteBuffer.allocateDirect((int) Math.min(bitmap.regionSize(), info.maxIoSize()));
            }
            long[] copied = new long[CLEAR_BATCH];
            int pendingClears = 0;
            long r = full ? 0 : bitmap.nextDirty(0);
            while (r >= 0 && r < regionCount) {
                if (copyRegion(r, x)) {
                    copied[pendingClears++] = r;
                    if (pendingClears == CLEAR_BATCH) {
                        flushAndClear(x, copied, pendingClears);
                        pendingClears = 0;
                    }
                }
                resyncDone = resyncDone + 1;
                regionsCopiedTotal.incrementAndGet();
                throttle();
                r = full ? r + 1 : bitmap.nextDirty(r + 1);
            }
            // The copies durable on the leg before its bits go and before it is IN_SYNC (a storage crash of the
            // leg must not lose what the bitmap no longer records, nor what makes it authoritative).
            flushAndClear(x, copied, pendingClears);
            synchronized (control) {
                checkStillResyncing(x);
                x.state = LegState.IN_SYNC;
                persistedInSync |= 1 << target;
                persistedFullSync &= ~(1 << target);
                if (everyLegInSync()) {
                    // Bits set behind the copy cursor during the copy (a failed write, a leg that was out for a
                    // while) are needed by no leg now; left set they would only inflate the next resync. A leg
                    // that fails a write from here on is dropped under this lock first and marks its region after.
                    clearAllBits();
                }
                bitmap.updateLegs(persistedInSync, persistedFullSync);
            }
        } catch (ResyncAbort e) {
            error = e.getMessage();
            if (x.state == LegState.RESYNCING) {
                dropLeg(target, IoStatus.EIO, epoch);
            }
        } catch (RuntimeException e) {
            error = e.toString();
            dropLeg(target, IoStatus.EIO, epoch);
        } finally {
            resyncEndNanos = System.nanoTime();
            resyncRunning = false;
            fencedRegion = -1;
        }
        long now = System.nanoTime();
        if (error == null) {
            for (MirrorListener m : listeners) {
                m.legInSync(target, now);
            }
            done.complete(progress());
        } else {
            resyncError = error;
            for (MirrorListener m : listeners) {
                m.resyncFailed(target, error, now);
            }
            done.completeExceptionally(new IllegalStateException("resync of leg " + target + " failed: " + error));
        }
    }

    /** Regions copied between two flushes of the resync target (each flush makes their bits clearable). */
    private static final int CLEAR_BATCH = 64;

    /** Flushes the resync target, then clears the bits of the regions copied to it (see copyRegion's rule). */
    private void flushAndClear(Leg x, long[] regions, int n) {
        checkStillResyncing(x);
        int st = flushLeg(x);
        if (st != IoStatus.OK) {
            checkStillResyncing(x); // given up on because the leg left this resync: say so
            dropLeg(x.index, st == IoStatus.ESHUTDOWN ? IoStatus.ESHUTDOWN : st, resyncEpoch);
            throw new ResyncAbort("leg " + x.index + " failed the flush after its copy: " + IoStatus.name(st));
        }
        checkStillResyncing(x);
        for (int i = 0; i < n; i++) {
            long region = regions[i];
            if (!anyOtherOutOfSync(x)) {
                bitmap.clear(region);
                // A write that skipped a FAILED leg may have set the bit just before the clear; that leg is
                // still FAILED or RESYNCING now (it cannot get in sync before this resync ends).
                if (anyOtherOutOfSync(x)) {
                    bitmap.markDirty(region << regionShift, 1);
                }
            }
        }
    }

    private boolean everyLegInSync() {
        for (Leg l : legs) {
            if (l.state != LegState.IN_SYNC && l.state != LegState.EMPTY) {
                return false;
            }
        }
        return true;
    }

    private void clearAllBits() {
        for (long r = bitmap.nextDirty(0); r >= 0; r = bitmap.nextDirty(r + 1)) {
            bitmap.clear(r);
        }
    }

    /**
     * The copy is still wanted: the leg is RESYNCING under this resync's epoch. A leg that failed and was returned
     * again meanwhile has a newer epoch and a newer resync queued behind this one, which must not finish it.
     */
    private void checkStillResyncing(Leg x) {
        if (closed) {
            throw new ResyncAbort("device closed");
        }
        if (x.state != LegState.RESYNCING || x.resyncEpoch != resyncEpoch) {
            throw new ResyncAbort("leg " + x.index + " left RESYNCING");
        }
    }

    private static final class ResyncAbort extends RuntimeException {
        ResyncAbort(String message) {
            super(message, null, false, false);
        }
    }

    private void throttle() {
        long rate = options.resyncBytesPerSecond();
        if (rate <= 0) {
            return;
        }
        long due = resyncStartNanos + (long) (resyncBytes * 1e9 / rate);
        long wait;
        while ((wait = due - System.nanoTime()) > 0 && !closed) {
            LockSupport.parkNanos(Math.min(wait, 50_000_000L));
        }
    }

    /**
     * Copies one region from an in-sync leg to {@code x}. Race rule: a copy counts only if no write to the region was
     * in flight when it started ({@code finished == started}) and none started before it ended ({@code started}
     * unchanged); otherwise it is repeated. After 3 tries the region is fenced: new writes to it wait (spinning,
     * then parking 20 µs) for the one copy to end, which {@link #syncIo} bounds (one leg timeout per request, and
     * not beyond the target's stay in this resync).
     *
     * @return true: the region's bit may be cleared once the copy is flushed ({@link #flushAndClear})
     */
    private boolean copyRegion(long region, Leg x) {
        int r = (int) region;
        long start = region << regionShift;
        long end = Math.min(size, start + bitmap.regionSize());
        int attempts = 0;
        int waits = 0;
        try {
            while (true) {
                checkStillResyncing(x);
                if (attempts >= 3 || waits > 2000) {
                    fencedRegion = r;
                }
                int s0 = regionStarted.get(r);
                if (regionFinished.get(r) != s0) {
                    waits++;
                    LockSupport.parkNanos(20_000);
                    continue;
                }
                int copied = copyRange(start, end, x);
                if (copied == SOURCE_DROPPED) {
                    attempts++;
                    continue;
                }
                if (copied == SOURCE_UNAVAILABLE) {
                    // The last in-sync leg failed or was slow: it stays, so wait for it, unfenced (foreground
                    // writes to this region must not wait for a leg that may be gone for a while).
                    fencedRegion = -1;
                    LockSupport.parkNanos(Math.max(1_000_000L, options.legTimeoutNanos() / 4));
                    continue;
                }
                if (fencedRegion == r || regionStarted.get(r) == s0) {
                    return true;
                }
                attempts++;
                resyncRetries = resyncRetries + 1;
            }
        } finally {
            fencedRegion = -1;
        }
    }

    /**
     * Another leg still needs the bits: FAILED, or RESYNCING (returned while this resync runs; its own resync is
     * queued behind this one and reads the bitmap when it starts).
     */
    private boolean anyOtherOutOfSync(Leg x) {
        for (Leg l : legs) {
            LegState st = l.state;
            if (l != x && (st == LegState.FAILED || st == LegState.RESYNCING)) {
                return true;
            }
        }
        return false;
    }

    private static final int COPIED = 0;
    private static final int SOURCE_DROPPED = 1;
    private static final int SOURCE_UNAVAILABLE = 2;

    /**
     * @return COPIED; SOURCE_DROPPED if the source failed and was dropped (try again from another in-sync leg); or
     *         SOURCE_UNAVAILABLE if it failed but is the last in-sync leg, which is never dropped (wait for it)
     */
    private int copyRange(long start, long end, Leg x) {
        int chunk = copyBuffer.capacity();
        for (long pos = start; pos < end; pos += chunk) {
            int len = (int) Math.min(chunk, end - pos);
            int src = pickReadLeg(1 << x.index);
            if (src < 0) {
                throw new ResyncAbort("no in-sync leg to copy from");
            }
            Leg source = legs[src];
            long sourceEpoch = source.resyncEpoch;
            BlockDevice sourceDevice = source.device;
            copyBuffer.clear().limit(len);
            int st = sourceDevice == null ? LEG_LEFT
                    : syncIo(sourceDevice, IoOp.READ, pos, len, source, LegState.IN_SYNC, sourceEpoch);
            if (st != IoStatus.OK) {
                // Dropped or removed meanwhile (by us or by the watchdog): copy from another in-sync leg.
                return st == LEG_LEFT || dropLeg(src, st) || source.state != LegState.IN_SYNC
                        ? SOURCE_DROPPED : SOURCE_UNAVAILABLE;
            }
            copyBuffer.clear().limit(len);
            BlockDevice target = x.device;
            st = target == null ? REMOVED
                    : syncIo(target, IoOp.WRITE, pos, len, x, LegState.RESYNCING, resyncEpoch);
            if (st == LEG_LEFT) {
                checkStillResyncing(x); // throws: the leg was dropped, removed or restarted, or the device closed
                throw new ResyncAbort("leg " + x.index + " left RESYNCING");
            }
            if (st != IoStatus.OK) {
                // Only this incarnation: a leg returned again meanwhile belongs to the next resync.
                dropLeg(x.index, st == REMOVED ? IoStatus.ESHUTDOWN : st, resyncEpoch);
                throw new ResyncAbort("leg " + x.index + " failed during resync: " + IoStatus.name(st));
            }
            resyncBytes = resyncBytes + len;
        }
        return COPIED;
    }

    private final SyncIo syncIo = new SyncIo();

    /**
     * One copy request on {@code leg}, waited for while the leg is still {@code state} in {@code epoch} and at most
     * one leg timeout. Why that bound: the copy may hold a fence, and foreground writes to the fenced region wait for
     * it; the watchdog gives a foreground request exactly the leg timeout before it drops the leg, so the copy's
     * request gets no more (twice it let a frozen leg stall fenced writes for 2 x legTimeout, past the failover
     * bound). Its answer is not awaited beyond the leg's stay either: once the leg is dropped or removed, nothing
     * it holds is wanted.
     *
     * @return the request's status; ETIMEDOUT or {@link #LEG_LEFT} if it was given up on (and cancelled below)
     */
    private int syncIo(BlockDevice device, IoOp op, long offset, int length, Leg leg, LegState state, long epoch) {
        int st = syncIo.run(device, op, offset, length, copyBuffer, options.legTimeoutNanos(), leg, state, epoch);
        if (st == IoStatus.ETIMEDOUT || st == LEG_LEFT) {
            // Given up on: the request is cancelled below, but a leg without cancel may still hold the old buffer
            // (and write into it, for a READ). Never hand it out again.
            copyBuffer = ByteBuffer.allocateDirect(copyBuffer.capacity());
        }
        return st;
    }

    /** Internal status: the resync gave up on a copy request because its leg left the state it was issued in. */
    private static final int LEG_LEFT = -3;

    /**
     * One request at a time from the resync thread, waited for with a deadline and while its leg stays where it
     * was. A request given up on is cancelled below ({@link BlockDevice#cancel}); its late completion (ECANCELED or
     * a real answer) carries a stale tag and is ignored.
     */
    private final class SyncIo implements IoCompletion {
        private static final int WAITING = Integer.MIN_VALUE;
        private final AtomicLong expectedTag = new AtomicLong();
        private volatile int status = WAITING;
        private volatile Thread waiter;

        int run(BlockDevice device, IoOp op, long offset, int length, ByteBuffer buffer, long timeoutNanos,
                Leg leg, LegState state, long epoch) {
            long tag = expectedTag.incrementAndGet();
            status = WAITING;
            waiter = Thread.currentThread();
            try {
                device.submit(op, offset, length, 0, buffer, tag, this);
            } catch (RuntimeException e) {
                return IoStatus.EIO;
            }
            long deadline = System.nanoTime() + timeoutNanos;
            int st;
            while ((st = status) == WAITING) {
                boolean left = closed || leg.state != state || leg.resyncEpoch != epoch;
                long remaining = deadline - System.nanoTime();
                if (left || remaining <= 0) {
                    expectedTag.incrementAndGet(); // from now on its completion is stale
                    device.cancel(tag, this);
                    return left ? LEG_LEFT : IoStatus.ETIMEDOUT;
                }
                LockSupport.parkNanos(this, Math.min(remaining, 1_000_000L));
            }
            return st;
        }

        @Override
        public void onComplete(long tag, int st) {
            if (tag == expectedTag.get()) {
                status = st;
                Thread t = waiter;
                if (t != null) {
                    LockSupport.unpark(t);
                }
            }
        }
    }

    /** An immutable snapshot of the current or last resync. */
    public ResyncProgress progress() {
        int leg = resyncLeg;
        if (leg < 0) {
            return ResyncProgress.IDLE;
        }
        long doneRegions = resyncDone;
        long total = resyncTotal;
        long bytes = resyncBytes;
        long end = resyncRunning ? System.nanoTime() : resyncEndNanos;
        long elapsed = Math.max(1, end - resyncStartNanos);
        long rate = (long) (bytes * 1e9 / elapsed);
        long eta = -1;
        if (resyncRunning && doneRegions > 0) {
            eta = (long) ((double) elapsed / doneRegions * (total - doneRegions) / 1e6);
        } else if (!resyncRunning) {
            eta = 0;
        }
        return new ResyncProgress(leg, resyncRunning, resyncFull, doneRegions, total, bytes, rate, eta,
                resyncRetries, resyncError);
    }

    /** An immutable snapshot of legs, bitmap and resync. */
    public MirrorStatus status() {
        List<MirrorStatus.Leg> list = new ArrayList<>(MAX_LEGS);
        for (Leg l : legs) {
            BlockDevice d = l.device;
            list.add(new MirrorStatus.Leg(l.index, l.state, l.inFlight.get(), l.readLatencyNanos,
                    d == null ? "" : d.toString()));
        }
        return new MirrorStatus(List.copyOf(list), bitmap.dirtyCount(), bitmap.regionSize(), progress());
    }

    @Override
    public long describeExtents(long offset, long length, ExtentConsumer consumer) {
        int leg = pickReadLeg(0);
        BlockDevice d = leg < 0 ? null : legs[leg].device;
        if (d == null) {
            consumer.accept(length, 0);
            return length;
        }
        return d.describeExtents(offset, length, consumer);
    }

    /**
     * Stops the watchdog and resync, closes the legs (they complete what they hold, with ESHUTDOWN), cancels any
     * leg part still live, closes the bitmap.
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (watchdog != null) {
            watchdog.shutdownNow();
        }
        resyncExecutor.shutdownNow();
        // Activity log: with no write in flight and every live leg flushed, the legs agree wherever the log says
        // they may not, so the next start resyncs nothing; otherwise the log stays and the next start resyncs it.
        activityLog.closeCleanly();
        for (Leg l : legs) {
            BlockDevice d = l.device;
            if (d != null) {
                d.close();
            }
        }
        for (Leg l : legs) {
            // Closed legs complete what they held (ESHUTDOWN); anything still live is cancelled, not abandoned.
            failOver(l.index, Long.MAX_VALUE);
        }
        bitmap.close();
    }

    @Override
    public String toString() {
        StringBuilder b = new StringBuilder("MirrorBlockDevice[");
        for (Leg l : legs) {
            b.append(l.index).append('=').append(l.state).append(' ');
        }
        return b.append("size=").append(size).append(']').toString();
    }

    // ------------------------------------------------------------------------------------------------ state

    private static final class Leg {
        final int index;
        volatile BlockDevice device;
        volatile LegState state = LegState.EMPTY;
        final AtomicInteger inFlight = new AtomicInteger();
        /** Writes in flight that skipped this leg because it was FAILED (see startResync's barrier). */
        final AtomicInteger skippedWrites = new AtomicInteger();
        volatile long readLatencyNanos;
        volatile CompletableFuture<ResyncProgress> resyncDone;
        /** Bumped (under {@code control}) each time a resync of this leg is started. */
        volatile long resyncEpoch;

        Leg(int index) {
            this.index = index;
        }
    }

    private static final class Slot {
        final int index;
        final AtomicLong word = new AtomicLong();
        long callerTag;
        IoCompletion callerCompletion;
        IoOp op;
        long offset;
        int length;
        int flags;
        ByteBuffer buffer;
        int position;
        int limit;
        volatile long issuedAt;
        int lastError;
        int skippedMask;
        /** The leg's resync epoch when this request was issued to it (which incarnation to blame). */
        final long[] legEpoch = new long[MAX_LEGS];
        /** The device each leg's part was issued to: where a cancel goes, and whether it was removed since. */
        final BlockDevice[] legDevice = new BlockDevice[MAX_LEGS];
        int firstRegion;
        int lastRegion;
        /** FLUSH only: the activity log's flush round this flush completes. */
        long flushRound;
        private final ByteBuffer[] viewSource = new ByteBuffer[MAX_LEGS];
        private final ByteBuffer[] views = new ByteBuffer[MAX_LEGS];

        Slot(int index) {
            this.index = index;
        }

        /** The caller's buffer as seen by leg {@code leg}: own position and limit, same bytes. */
        ByteBuffer view(int leg, ByteBuffer buffer) {
            ByteBuffer v = views[leg];
            if (viewSource[leg] != buffer) {
                v = buffer.duplicate();
                views[leg] = v;
                viewSource[leg] = buffer;
            }
            v.limit(limit).position(position);
            return v;
        }
    }
}
