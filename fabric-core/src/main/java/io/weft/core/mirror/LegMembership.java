package io.weft.core.mirror;

import static io.weft.core.mirror.MirrorBlockDevice.MAX_LEGS;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.DeviceInfo;
import io.weft.core.io.IoStatus;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * Which legs of a mirror are in, out or on their way back, and the authority rules that decide it (rules 1, 3 and 4
 * of {@link MirrorBlockDevice}'s class comment): the {@link MirrorLeg} records, the in-sync and full-sync masks
 * persisted in the bitmap header, every state change (drop, return, operator resync, add, remove, promotion at the
 * end of a resync, the recovery after an unclean stop), the listeners told about them, and the choice of the leg a
 * read goes to.
 *
 * <p>Who calls: {@link MirrorFanOut} drops legs that fail or time out and picks read legs;
 * {@link ResyncDriver} picks copy sources, drops a target that fails and promotes one that finished; the
 * {@link ActivityLog} flushes the live legs through {@link #flushLiveLegs}; {@link MirrorBlockDevice} forwards the
 * operator's control calls. A drop fails the leg's parts over through the fan-out; a return or an operator resync
 * starts a copy on the {@link ResyncDriver}.
 *
 * <p>Threads: every state change happens under {@code control} (rare); the hot path reads leg states with volatile
 * reads. The read-leg rotation counter is a plain field, racy across concurrent submitters (as documented on the
 * device).
 */
final class LegMembership {
    private final MirrorLeg[] legs = new MirrorLeg[MAX_LEGS];
    private final Object control = new Object();
    private final MirrorOptions options;
    private final WriteIntentBitmap bitmap;
    private final long size;
    /** One flush round at a time for the activity log's flush and the resync's (they serialise on it). */
    private final LegFlush legFlush = new LegFlush();
    private final BlockDevice[] alFlushDevices = new BlockDevice[MAX_LEGS];
    private final long[] alFlushEpochs = new long[MAX_LEGS];
    private final int[] alFlushStatuses = new int[MAX_LEGS];
    /** The activity log's flush waits only for legs still live in the incarnation it flushed (alFlushEpochs). */
    private final LegFlush.LegWatch alFlushWatch = this::stillLiveForActivityLogFlush;
    private final CopyOnWriteArrayList<MirrorListener> listeners = new CopyOnWriteArrayList<>();

    private volatile DeviceInfo info;
    private volatile boolean closed;
    private int readRotation;
    /** Legs (bit i) whose contents are authoritative as persisted; never 0 once a leg has been in sync. */
    private int persistedInSync;
    private int persistedFullSync;

    // Wired once by MirrorBlockDevice's constructor (attach), before the device is used.
    private ActivityLog activityLog;
    private MirrorFanOut fanOut;
    private ResyncDriver resync;

    /**
     * Validates the legs against the bitmap and sets each leg's starting state from the bitmap's in-sync mask
     * (see the {@link MirrorBlockDevice} constructor).
     */
    LegMembership(List<BlockDevice> legDevices, WriteIntentBitmap bitmap, MirrorOptions options) {
        if (legDevices.isEmpty() || legDevices.size() > MAX_LEGS) {
            throw new IllegalArgumentException("1.." + MAX_LEGS + " legs, got " + legDevices.size());
        }
        this.options = options;
        this.bitmap = bitmap;
        long min = Long.MAX_VALUE;
        for (int i = 0; i < MAX_LEGS; i++) {
            BlockDevice d = i < legDevices.size() ? legDevices.get(i) : null;
            legs[i] = new MirrorLeg(i);
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
        for (MirrorLeg l : legs) {
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
    }

    /** Wires the parts a drop and a return reach, then combines the legs' device info (may throw). */
    void attach(ActivityLog activityLog, MirrorFanOut fanOut, ResyncDriver resync) {
        this.activityLog = activityLog;
        this.fanOut = fanOut;
        this.resync = resync;
        this.info = combinedInfo();
    }

    /** The mirror's size: the smallest leg's. */
    long size() {
        return size;
    }

    DeviceInfo info() {
        return info;
    }

    boolean isClosed() {
        return closed;
    }

    /** From here on no leg is dropped and the resync gives up (the device is closing). */
    void markClosed() {
        closed = true;
    }

    /** The leg records, indexed by position; the array is never written after construction. */
    MirrorLeg[] legs() {
        return legs;
    }

    LegFlush legFlush() {
        return legFlush;
    }

    List<MirrorListener> listeners() {
        return listeners;
    }

    LegState legState(int leg) {
        return legs[leg].state;
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
    int recoverActivityLog(ActivityLog log) {
        long[] logged = log.loggedSlots();
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
        for (MirrorLeg l : legs) {
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
        log.clear();
        return logged.length;
    }

    private DeviceInfo combinedInfo() {
        DeviceInfo result = null;
        for (MirrorLeg l : legs) {
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

    // ------------------------------------------------------------------------------------------------ flush

    /**
     * The activity log's flush (before an extent leaves it, and at a clean close): FLUSH every live leg that can
     * flush, in parallel (no longer waiting for a leg dropped or removed meanwhile: {@link LegFlush.LegWatch}).
     * A leg that fails or does not answer within twice the leg timeout is dropped if another
     * in-sync leg remains (its unflushed extents are then marked in the bitmap); otherwise the flush failed.
     */
    boolean flushLiveLegs() {
        // Called under the activity log's lock only: the scratch arrays are that lock's.
        BlockDevice[] devices = alFlushDevices;
        long[] epochs = alFlushEpochs;
        int[] statuses = alFlushStatuses;
        Arrays.fill(devices, null);
        int mask = 0;
        for (MirrorLeg l : legs) {
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

    private boolean stillLiveForActivityLogFlush(int leg) {
        // Not "closed": close() itself flushes through here (a clean close empties the activity log).
        LegState st = legs[leg].state;
        return (st == LegState.IN_SYNC || st == LegState.RESYNCING)
                && legs[leg].resyncEpoch == alFlushEpochs[leg];
    }

    // ------------------------------------------------------------------------------------------------ authority

    boolean dropLeg(int leg, int status) {
        return dropLeg(leg, status, -1);
    }

    /**
     * Marks the leg FAILED, persists that, and fails its part of every in-flight request over. Refused for the last
     * IN_SYNC leg (rule 3 of the device's class comment): it stays authoritative, whatever it did.
     *
     * @param onlyEpoch drop only if the leg is still in this resync epoch (-1: whatever its epoch)
     * @return whether this call dropped the leg
     */
    boolean dropLeg(int leg, int status, long onlyEpoch) {
        if (closed) {
            return false;
        }
        MirrorLeg l = legs[leg];
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
            markUnflushedDirty();
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
        fanOut.failOver(leg, droppedEpoch);
        return true;
    }

    /**
     * A leg is being dropped (under {@code control}, before the masks are persisted): its node may lose what it had
     * not flushed, so the bitmap gets the activity log's unflushed extents and the regions of every write in flight.
     */
    private void markUnflushedDirty() {
        activityLog.markUnflushedDirty();
        fanOut.markWritesInFlightDirty();
    }

    boolean otherInSync(int leg) {
        for (MirrorLeg o : legs) {
            if (o.index != leg && o.state == LegState.IN_SYNC) {
                return true;
            }
        }
        return false;
    }

    int inSyncMask() {
        int mask = 0;
        for (MirrorLeg l : legs) {
            if (l.state == LegState.IN_SYNC) {
                mask |= 1 << l.index;
            }
        }
        return mask;
    }

    /**
     * Another leg still needs the bits: FAILED, or RESYNCING (returned while this resync runs; its own resync is
     * queued behind this one and reads the bitmap when it starts).
     */
    boolean anyOtherOutOfSync(MirrorLeg x) {
        for (MirrorLeg l : legs) {
            LegState st = l.state;
            if (l != x && (st == LegState.FAILED || st == LegState.RESYNCING)) {
                return true;
            }
        }
        return false;
    }

    /**
     * The in-sync leg a read (or a resync's copy) goes to, not one in {@code excludeMask}: the least loaded, or with
     * {@link ReadPolicy#MIN_LATENCY} the best latency × load, starting from a rotating position; -1 if none.
     */
    int pickReadLeg(int excludeMask) {
        int start = readRotation++ & 0x7FFF_FFFF;
        int best = -1;
        long bestScore = Long.MAX_VALUE;
        boolean byLatency = options.readPolicy() == ReadPolicy.MIN_LATENCY;
        for (int k = 0; k < MAX_LEGS; k++) {
            int i = (start + k) % MAX_LEGS;
            MirrorLeg l = legs[i];
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

    /**
     * The end of a resync: the target becomes IN_SYNC (persisted, and its full-sync mark gone) if it is still
     * RESYNCING in {@code epoch} and the device is open. With every leg in sync afterwards, bits set behind the copy
     * cursor during the copy (a failed write, a leg that was out for a while) are needed by no leg: they are cleared
     * (left set they would only inflate the next resync; a leg that fails a write from here on is dropped under this
     * lock first and marks its region after).
     *
     * @return null when promoted, else why not (the resync failed)
     */
    String promoteAfterResync(MirrorLeg x, long epoch) {
        synchronized (control) {
            String notResyncing = stillResyncing(x, epoch);
            if (notResyncing != null) {
                return notResyncing;
            }
            x.state = LegState.IN_SYNC;
            persistedInSync |= 1 << x.index;
            persistedFullSync &= ~(1 << x.index);
            if (everyLegInSync()) {
                clearAllBits();
            }
            bitmap.updateLegs(persistedInSync, persistedFullSync);
            return null;
        }
    }

    /**
     * The copy to {@code x} is still wanted: the leg is RESYNCING under {@code epoch}. A leg that failed and was
     * returned again meanwhile has a newer epoch and a newer resync queued behind this one, which must not finish it.
     *
     * @return null if still wanted, else why not
     */
    String stillResyncing(MirrorLeg x, long epoch) {
        if (closed) {
            return "device closed";
        }
        if (x.state != LegState.RESYNCING || x.resyncEpoch != epoch) {
            return "leg " + x.index + " left RESYNCING";
        }
        return null;
    }

    private boolean everyLegInSync() {
        for (MirrorLeg l : legs) {
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

    // ------------------------------------------------------------------------------------------------ control

    /** See {@link MirrorBlockDevice#legReturned}. */
    CompletableFuture<ResyncProgress> legReturned(int leg) {
        checkLeg(leg);
        synchronized (control) {
            MirrorLeg l = legs[leg];
            if (l.state != LegState.FAILED) {
                throw new IllegalStateException("leg " + leg + " is " + l.state + ", not FAILED");
            }
            boolean anyInSync = false;
            for (MirrorLeg o : legs) {
                anyInSync |= o.state == LegState.IN_SYNC;
            }
            if (!anyInSync) {
                if ((persistedInSync & (1 << leg)) == 0) {
                    throw new IllegalStateException("no in-sync leg to copy from, and leg " + leg
                            + " is not the last authoritative one");
                }
                l.state = LegState.IN_SYNC;
                l.resyncDone = CompletableFuture.completedFuture(resync.progress());
            } else {
                l.state = LegState.RESYNCING;
                long epoch = ++l.resyncEpoch;
                bitmap.updateLegs(persistedInSync, persistedFullSync);
                boolean full = (persistedFullSync & (1 << leg)) != 0;
                return startResync(l, epoch, full);
            }
        }
        long now = System.nanoTime();
        for (MirrorListener m : listeners) {
            m.legInSync(leg, now);
        }
        return legs[leg].resyncDone;
    }

    /** See {@link MirrorBlockDevice#resyncLeg}. */
    CompletableFuture<ResyncProgress> resyncLeg(int leg, boolean full) {
        checkLeg(leg);
        synchronized (control) {
            MirrorLeg l = legs[leg];
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
                boolean copyAll = (persistedFullSync & (1 << leg)) != 0;
                return startResync(l, epoch, copyAll);
            }
        }
        return legReturned(leg);
    }

    /** See {@link MirrorBlockDevice#addLeg}. */
    int addLeg(BlockDevice device) {
        if (device.info().size() < size) {
            throw new IllegalArgumentException("leg of " + device.info().size() + " bytes is smaller than " + size);
        }
        synchronized (control) {
            for (MirrorLeg l : legs) {
                if (l.state == LegState.EMPTY) {
                    int leg = l.index;
                    l.device = device;
                    l.readLatencyNanos = 0;
                    persistedInSync &= ~(1 << leg);
                    persistedFullSync |= 1 << leg;
                    bitmap.updateLegs(persistedInSync, persistedFullSync);
                    info = combinedInfo();
                    l.state = LegState.RESYNCING;
                    startResync(l, ++l.resyncEpoch, true);
                    return leg;
                }
            }
        }
        throw new IllegalStateException("all " + MAX_LEGS + " leg positions are in use");
    }

    /**
     * Under {@code control}, the leg just turned RESYNCING in a new {@code epoch}: a new completion, and the copy
     * queued on the resync thread (in the order the epochs were taken).
     */
    private CompletableFuture<ResyncProgress> startResync(MirrorLeg l, long epoch, boolean full) {
        l.resyncDone = new CompletableFuture<>();
        CompletableFuture<ResyncProgress> done = l.resyncDone;
        resync.start(l.index, epoch, full, done);
        return done;
    }

    /** See {@link MirrorBlockDevice#resyncCompletion}. */
    CompletableFuture<ResyncProgress> resyncCompletion(int leg) {
        checkLeg(leg);
        return legs[leg].resyncDone;
    }

    /** See {@link MirrorBlockDevice#removeLeg}. */
    BlockDevice removeLeg(int leg) {
        checkLeg(leg);
        BlockDevice d;
        synchronized (control) {
            MirrorLeg l = legs[leg];
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
        fanOut.failOver(leg, Long.MAX_VALUE);
        return d;
    }

    private static void checkLeg(int leg) {
        if (leg < 0 || leg >= MAX_LEGS) {
            throw new IllegalArgumentException("leg must be 0.." + (MAX_LEGS - 1) + ": " + leg);
        }
    }

    /** One status entry per leg position. */
    List<MirrorStatus.Leg> statusLegs() {
        List<MirrorStatus.Leg> list = new ArrayList<>(MAX_LEGS);
        for (MirrorLeg l : legs) {
            BlockDevice d = l.device;
            list.add(new MirrorStatus.Leg(l.index, l.state, l.inFlight.get(), l.readLatencyNanos,
                    d == null ? "" : d.toString()));
        }
        return List.copyOf(list);
    }
}
