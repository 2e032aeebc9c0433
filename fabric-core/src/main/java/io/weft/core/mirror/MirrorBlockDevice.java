package io.weft.core.mirror;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.DeviceInfo;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoRequests;
import io.weft.core.io.IoStatus;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

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
 * <h2>Parts</h2>
 * This class is the {@link BlockDevice} facade: it checks requests and forwards them, and forwards the operator's
 * control calls. The work is done by four parts, each with one job: {@link MirrorFanOut} (the request slots: a
 * request to its legs, every leg's outcome, completion; hung legs; cancellation and buffer ownership),
 * {@link LegMembership} (leg states and the authority rules above: drops, returns, adds, removals, the persisted
 * masks, the read-leg choice), {@link ResyncDriver} (the background copy to a returning leg) and
 * {@link RegionWriteFence} (where foreground writes and the copy meet, per region). They live in one package and
 * share the {@link MirrorLeg} records.
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

    private final MirrorOptions options;
    private final WriteIntentBitmap bitmap;
    /** Crash consistency (see ActivityLog): extents written to, durable before the write goes to a leg. */
    private final ActivityLog activityLog;
    /** Extents the activity log held at construction (an unclean stop before); 0 after a clean close. */
    private final int recoveredExtents;
    private final LegMembership membership;
    private final RegionWriteFence regionWrites;
    private final MirrorFanOut fanOut;
    private final ResyncDriver resync;
    private final ScheduledExecutorService watchdog;

    /**
     * @param legDevices one device per leg position (1..{@value #MAX_LEGS}); {@code null} = empty position
     * @param bitmap     the write-intent bitmap; its leg masks decide which legs start in sync (legs not in its
     *                   in-sync mask start FAILED and need {@link #legReturned}); its device size must equal the
     *                   mirror's (the smallest leg's)
     * @param options    tunables
     */
    public MirrorBlockDevice(List<BlockDevice> legDevices, WriteIntentBitmap bitmap, MirrorOptions options) {
        this.options = options;
        this.bitmap = bitmap;
        this.membership = new LegMembership(legDevices, bitmap, options);
        // ---- activity log: recover after an unclean stop (issue 11; see LegMembership.recoverActivityLog)
        this.activityLog = new ActivityLog(bitmap, options.activityExtents(), options.activityExtentSize(),
                membership::flushLiveLegs);
        this.recoveredExtents = membership.recoverActivityLog(activityLog);
        // ---- end activity log
        this.regionWrites = new RegionWriteFence(bitmap.regionCount());
        this.fanOut = new MirrorFanOut(membership, bitmap, activityLog, regionWrites, options);
        this.resync = new ResyncDriver(membership, bitmap, regionWrites, options);
        membership.attach(activityLog, fanOut, resync);
        if (options.startWatchdog()) {
            long period = Math.max(1_000_000L, options.legTimeoutNanos() / 4);
            watchdog = Executors.newSingleThreadScheduledExecutor(r -> {
                Thread t = new Thread(r, "weft-mirror-watchdog");
                t.setDaemon(true);
                return t;
            });
            watchdog.scheduleAtFixedRate(() -> checkTimeouts(System.nanoTime()), period, period,
                    TimeUnit.NANOSECONDS);
        } else {
            watchdog = null;
        }
    }

    @Override
    public DeviceInfo info() {
        return membership.info();
    }

    public MirrorOptions options() {
        return options;
    }

    public WriteIntentBitmap bitmap() {
        return bitmap;
    }

    public void addListener(MirrorListener listener) {
        membership.listeners().add(listener);
    }

    public void removeListener(MirrorListener listener) {
        membership.listeners().remove(listener);
    }

    public LegState legState(int leg) {
        return membership.legState(leg);
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
        return resync.regionsCopiedTotal();
    }

    // ------------------------------------------------------------------------------------------------ IO path

    @Override
    public void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                       IoCompletion completion) {
        if (membership.isClosed()) {
            completion.onComplete(tag, IoStatus.ESHUTDOWN);
            return;
        }
        int status = IoRequests.check(membership.info(), op, offset, length, flags);
        if (status == IoStatus.OK && (op == IoOp.READ || op == IoOp.WRITE)
                && (buffer == null || buffer.remaining() < length)) {
            status = IoStatus.EINVAL;
        }
        if (status != IoStatus.OK) {
            completion.onComplete(tag, status);
            return;
        }
        fanOut.submit(op, offset, length, flags, buffer, tag, completion);
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
        fanOut.cancel(tag, completion);
    }

    /** The region the resync has fenced (foreground writes to it wait), or -1; for tests. */
    long fencedRegion() {
        return regionWrites.fencedRegion();
    }

    /**
     * Fails every leg request older than the leg timeout and drops its leg. Called by the device's own watchdog, or
     * by the owner's timer when {@link MirrorOptions#startWatchdog()} is false. Cost: one pass over the slots.
     */
    public void checkTimeouts(long nowNanos) {
        fanOut.checkTimeouts(nowNanos);
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
        return membership.legReturned(leg);
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
        return membership.resyncLeg(leg, full);
    }

    /**
     * Adds a leg at the first empty position and copies the whole device to it in the background. The device must
     * be at least as large as the mirror.
     *
     * @return the leg's position; {@link #resyncCompletion(int)} tells when it is in sync
     */
    public int addLeg(BlockDevice device) {
        return membership.addLeg(device);
    }

    /** The current (or last) resync of {@code leg}; null if none ran. */
    public CompletableFuture<ResyncProgress> resyncCompletion(int leg) {
        return membership.resyncCompletion(leg);
    }

    /**
     * Detaches a leg (operator action). Refused for the last in-sync leg. Its in-flight requests stop counting
     * (reads move to another leg). The caller owns the returned device and closes it.
     */
    public BlockDevice removeLeg(int leg) {
        return membership.removeLeg(leg);
    }

    /** An immutable snapshot of the current or last resync. */
    public ResyncProgress progress() {
        return resync.progress();
    }

    /** An immutable snapshot of legs, bitmap and resync. */
    public MirrorStatus status() {
        return new MirrorStatus(membership.statusLegs(), bitmap.dirtyCount(), bitmap.regionSize(), progress());
    }

    @Override
    public long describeExtents(long offset, long length, ExtentConsumer consumer) {
        int leg = membership.pickReadLeg(0);
        BlockDevice d = leg < 0 ? null : membership.legs()[leg].device;
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
        if (membership.isClosed()) {
            return;
        }
        membership.markClosed();
        if (watchdog != null) {
            watchdog.shutdownNow();
        }
        resync.close();
        // Activity log: with no write in flight and every live leg flushed, the legs agree wherever the log says
        // they may not, so the next start resyncs nothing; otherwise the log stays and the next start resyncs it.
        activityLog.closeCleanly();
        MirrorLeg[] legs = membership.legs();
        for (MirrorLeg l : legs) {
            BlockDevice d = l.device;
            if (d != null) {
                d.close();
            }
        }
        for (MirrorLeg l : legs) {
            // Closed legs complete what they held (ESHUTDOWN); anything still live is cancelled, not abandoned.
            fanOut.failOver(l.index, Long.MAX_VALUE);
        }
        bitmap.close();
    }

    @Override
    public String toString() {
        StringBuilder b = new StringBuilder("MirrorBlockDevice[");
        for (MirrorLeg l : membership.legs()) {
            b.append(l.index).append('=').append(l.state).append(' ');
        }
        return b.append("size=").append(membership.size()).append(']').toString();
    }
}
