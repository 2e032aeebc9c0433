package io.weft.core.mirror;

import static io.weft.core.mirror.MirrorBlockDevice.MAX_LEGS;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import java.nio.ByteBuffer;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.agrona.concurrent.SleepingIdleStrategy;

/**
 * Copies regions back to a leg that is RESYNCING, on one background thread ("weft-mirror-resync"), one resync at a
 * time in the order {@link LegMembership} started them: the regions marked in the {@link WriteIntentBitmap} (or every
 * region, for a full sync), each read from an in-sync leg and written to the target, throttled to
 * {@link MirrorOptions#resyncBytesPerSecond()}. The target is flushed before the bits of the regions copied to it are
 * cleared (every {@value #CLEAR_BATCH} regions) and before the membership promotes it to IN_SYNC.
 *
 * <p>Races with foreground writes are settled per region through the {@link RegionWriteFence} ({@link #copyRegion}'s
 * rule); a copy request waits at most one leg timeout and no longer than its leg stays where it was
 * ({@link #syncIo}). A target that fails is dropped (only the incarnation this resync copies to); a source that fails
 * is dropped unless it is the last in-sync leg, which is waited for. Progress is published as volatile fields and
 * read as an immutable {@link ResyncProgress} snapshot.
 */
final class ResyncDriver {
    /** Regions copied between two flushes of the resync target (each flush makes their bits clearable). */
    private static final int CLEAR_BATCH = 64;
    /** The resync thread waits for writes that skipped the new leg to set their bits: a check every 50 µs. */
    private static final SleepingIdleStrategy SKIPPED_WRITES_WAIT = new SleepingIdleStrategy(50_000);
    /** The resync thread waits for the writes in flight to a region before copying it: a check every 20 µs. */
    private static final SleepingIdleStrategy REGION_WRITES_WAIT = new SleepingIdleStrategy(20_000);
    private static final int COPIED = 0;
    private static final int SOURCE_DROPPED = 1;
    private static final int SOURCE_UNAVAILABLE = 2;
    /** Internal status: the resync gave up on a copy request because its leg left the state it was issued in. */
    private static final int LEG_LEFT = -3;

    private final LegMembership membership;
    private final MirrorLeg[] legs;
    private final WriteIntentBitmap bitmap;
    private final RegionWriteFence regionWrites;
    private final MirrorOptions options;
    private final LegFlush legFlush;
    /** The resync's flush waits only while its target is still in this resync (see syncIo for the bound). */
    private final LegFlush.LegWatch resyncFlushWatch = this::stillInThisResync;
    private final ExecutorService executor;
    private final int regionShift;
    private final long regionCount;
    private final long size;
    private final SyncIo syncIo = new SyncIo();
    private final AtomicLong regionsCopiedTotal = new AtomicLong();
    /** Resync thread only; replaced when a request holding it was given up on (see syncIo). */
    private ByteBuffer copyBuffer;

    // Progress (written by the resync thread, read by snapshots).
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

    ResyncDriver(LegMembership membership, WriteIntentBitmap bitmap, RegionWriteFence regionWrites,
                 MirrorOptions options) {
        this.membership = membership;
        this.legs = membership.legs();
        this.bitmap = bitmap;
        this.regionWrites = regionWrites;
        this.options = options;
        this.legFlush = membership.legFlush();
        this.regionShift = Integer.numberOfTrailingZeros(bitmap.regionSize());
        this.regionCount = bitmap.regionCount();
        this.size = membership.size();
        this.executor = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "weft-mirror-resync");
            t.setDaemon(true);
            return t;
        });
    }

    /** Queues the copy to {@code target} (now RESYNCING in {@code epoch}); {@code done} completes when it ends. */
    void start(int target, long epoch, boolean full, CompletableFuture<ResyncProgress> done) {
        executor.execute(() -> run(target, epoch, full, done));
    }

    /** Stops the resync thread (a copy in progress sees the device closed and gives up). */
    void close() {
        executor.shutdownNow();
    }

    /** Total regions copied by every resync so far. */
    long regionsCopiedTotal() {
        return regionsCopiedTotal.get();
    }

    private void run(int target, long epoch, boolean full, CompletableFuture<ResyncProgress> done) {
        MirrorLeg x = legs[target];
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
                SKIPPED_WRITES_WAIT.idle();
            }
            resyncTotal = full ? regionCount : bitmap.dirtyCount();
            for (MirrorListener m : membership.listeners()) {
                m.resyncStarted(target, resyncTotal, full, System.nanoTime());
            }
            if (copyBuffer == null) {
                copyBuffer = ByteBuffer.allocateDirect(
                        (int) Math.min(bitmap.regionSize(), membership.info().maxIoSize()));
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
            String notPromoted = membership.promoteAfterResync(x, resyncEpoch);
            if (notPromoted != null) {
                throw new ResyncAbort(notPromoted);
            }
        } catch (ResyncAbort e) {
            error = e.getMessage();
            if (x.state == LegState.RESYNCING) {
                membership.dropLeg(target, IoStatus.EIO, epoch);
            }
        } catch (RuntimeException e) {
            error = e.toString();
            membership.dropLeg(target, IoStatus.EIO, epoch);
        } finally {
            resyncEndNanos = System.nanoTime();
            resyncRunning = false;
            regionWrites.unfence();
        }
        long now = System.nanoTime();
        if (error == null) {
            for (MirrorListener m : membership.listeners()) {
                m.legInSync(target, now);
            }
            done.complete(progress());
        } else {
            resyncError = error;
            for (MirrorListener m : membership.listeners()) {
                m.resyncFailed(target, error, now);
            }
            done.completeExceptionally(new IllegalStateException("resync of leg " + target + " failed: " + error));
        }
    }

    /** Flushes the resync target, then clears the bits of the regions copied to it (see copyRegion's rule). */
    private void flushAndClear(MirrorLeg x, long[] regions, int n) {
        checkStillResyncing(x);
        int st = flushLeg(x);
        if (st != IoStatus.OK) {
            checkStillResyncing(x); // given up on because the leg left this resync: say so
            membership.dropLeg(x.index, st == IoStatus.ESHUTDOWN ? IoStatus.ESHUTDOWN : st, resyncEpoch);
            throw new ResyncAbort("leg " + x.index + " failed the flush after its copy: " + IoStatus.name(st));
        }
        checkStillResyncing(x);
        for (int i = 0; i < n; i++) {
            long region = regions[i];
            if (!membership.anyOtherOutOfSync(x)) {
                bitmap.clear(region);
                // A write that skipped a FAILED leg may have set the bit just before the clear; that leg is
                // still FAILED or RESYNCING now (it cannot get in sync before this resync ends).
                if (membership.anyOtherOutOfSync(x)) {
                    bitmap.markDirty(region << regionShift, 1);
                }
            }
        }
    }

    /** Flushes one leg (the end of its resync); OK if it cannot flush (its writes are durable when answered). */
    private int flushLeg(MirrorLeg x) {
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
        return membership.stillResyncing(legs[leg], resyncEpoch) == null;
    }

    /** Throws {@link ResyncAbort} unless the copy to {@code x} is still wanted (see LegMembership.stillResyncing). */
    private void checkStillResyncing(MirrorLeg x) {
        String notResyncing = membership.stillResyncing(x, resyncEpoch);
        if (notResyncing != null) {
            throw new ResyncAbort(notResyncing);
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
        while ((wait = due - System.nanoTime()) > 0 && !membership.isClosed()) {
            // A sleep until a computed time (re-checking close every 50 ms), not an idle wait for work: a plain park.
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
    private boolean copyRegion(long region, MirrorLeg x) {
        int r = (int) region;
        long start = region << regionShift;
        long end = Math.min(size, start + bitmap.regionSize());
        int attempts = 0;
        int waits = 0;
        try {
            while (true) {
                checkStillResyncing(x);
                if (attempts >= 3 || waits > 2000) {
                    regionWrites.fence(r);
                }
                int s0 = regionWrites.started(r);
                if (regionWrites.finished(r) != s0) {
                    waits++;
                    REGION_WRITES_WAIT.idle();
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
                    regionWrites.unfence();
                    // A retry delay scaled to the leg timeout (one fixed pause per failed copy), not an idle wait.
                    LockSupport.parkNanos(Math.max(1_000_000L, options.legTimeoutNanos() / 4));
                    continue;
                }
                if (regionWrites.fencedRegion() == r || regionWrites.started(r) == s0) {
                    return true;
                }
                attempts++;
                resyncRetries = resyncRetries + 1;
            }
        } finally {
            regionWrites.unfence();
        }
    }

    /**
     * @return COPIED; SOURCE_DROPPED if the source failed and was dropped (try again from another in-sync leg); or
     *         SOURCE_UNAVAILABLE if it failed but is the last in-sync leg, which is never dropped (wait for it)
     */
    private int copyRange(long start, long end, MirrorLeg x) {
        int chunk = copyBuffer.capacity();
        for (long pos = start; pos < end; pos += chunk) {
            int len = (int) Math.min(chunk, end - pos);
            int src = membership.pickReadLeg(1 << x.index);
            if (src < 0) {
                throw new ResyncAbort("no in-sync leg to copy from");
            }
            MirrorLeg source = legs[src];
            long sourceEpoch = source.resyncEpoch;
            BlockDevice sourceDevice = source.device;
            copyBuffer.clear().limit(len);
            int st = sourceDevice == null ? LEG_LEFT
                    : syncIo(sourceDevice, IoOp.READ, pos, len, source, LegState.IN_SYNC, sourceEpoch);
            if (st != IoStatus.OK) {
                // Dropped or removed meanwhile (by us or by the watchdog): copy from another in-sync leg.
                return st == LEG_LEFT || membership.dropLeg(src, st) || source.state != LegState.IN_SYNC
                        ? SOURCE_DROPPED : SOURCE_UNAVAILABLE;
            }
            copyBuffer.clear().limit(len);
            BlockDevice target = x.device;
            st = target == null ? MirrorFanOut.REMOVED
                    : syncIo(target, IoOp.WRITE, pos, len, x, LegState.RESYNCING, resyncEpoch);
            if (st == LEG_LEFT) {
                checkStillResyncing(x); // throws: the leg was dropped, removed or restarted, or the device closed
                throw new ResyncAbort("leg " + x.index + " left RESYNCING");
            }
            if (st != IoStatus.OK) {
                // Only this incarnation: a leg returned again meanwhile belongs to the next resync.
                membership.dropLeg(x.index, st == MirrorFanOut.REMOVED ? IoStatus.ESHUTDOWN : st, resyncEpoch);
                throw new ResyncAbort("leg " + x.index + " failed during resync: " + IoStatus.name(st));
            }
            resyncBytes = resyncBytes + len;
        }
        return COPIED;
    }

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
    private int syncIo(BlockDevice device, IoOp op, long offset, int length, MirrorLeg leg, LegState state,
                       long epoch) {
        int st = syncIo.run(device, op, offset, length, copyBuffer, options.legTimeoutNanos(), leg, state, epoch);
        if (st == IoStatus.ETIMEDOUT || st == LEG_LEFT) {
            // Given up on: the request is cancelled below, but a leg without cancel may still hold the old buffer
            // (and write into it, for a READ). Never hand it out again.
            copyBuffer = ByteBuffer.allocateDirect(copyBuffer.capacity());
        }
        return st;
    }

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
                MirrorLeg leg, LegState state, long epoch) {
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
                boolean left = membership.isClosed() || leg.state != state || leg.resyncEpoch != epoch;
                long remaining = deadline - System.nanoTime();
                if (left || remaining <= 0) {
                    expectedTag.incrementAndGet(); // from now on its completion is stale
                    device.cancel(tag, this);
                    return left ? LEG_LEFT : IoStatus.ETIMEDOUT;
                }
                // Not an idle strategy: onComplete unparks this thread, the park never outlasts the deadline, and
                // the blocker names this wait in a thread dump.
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
    ResyncProgress progress() {
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
}
