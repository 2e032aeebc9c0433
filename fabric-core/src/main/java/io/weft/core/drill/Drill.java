package io.weft.core.drill;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.core.mirror.MirrorBlockDevice;
import io.weft.core.mirror.MirrorListener;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.agrona.concurrent.BackoffIdleStrategy;
import org.agrona.concurrent.IdleStrategy;
import org.agrona.concurrent.ManyToOneConcurrentArrayQueue;

/**
 * A verifying workload over any {@link BlockDevice} that runs while a {@link DrillFault} happens, then reports stall,
 * detection, failover and resync times, IOPS per phase and whether every acknowledged write reads back intact.
 *
 * <p>Workload: one driver thread keeps {@code queueDepth} requests in flight, random 4–64 KiB writes and reads over
 * the working set, never two in-flight requests on the same block (so every read has exactly one right answer).
 * Every 4 KiB block of a write carries a self-describing pattern:
 * <pre>
 * 0        8          16                                        4096
 * +--------+----------+------------------------------------------+
 * | block  |generation| xorshift64 stream seeded by (block, gen)  |
 * | u64 LE | u64 LE   |                                           |
 * +--------+----------+------------------------------------------+
 * </pre>
 * so a read tells which write it holds: the acknowledged one (verified), an older one or zeros (lost), or anything
 * else (corrupted). The model keeps, per block, the generation of the last acknowledged write and, after failed
 * writes, the range of in-doubt generations that may be there instead (every write to the block since the last
 * acknowledged one failed, so any generation in that range is one of them).
 *
 * <p>Phases: prefill (sequential max-IO writes of generation 1 over the whole working set, so every block has a known
 * acknowledged version whatever an earlier drill left there) → before (baseline) → {@code fault.inject()} → during
 * → {@code fault.recover()} → wait for the mirror's leg-in-sync events of every leg the fault dropped (dropped between
 * the inject and the end of recovery) → after → drain → read back the whole working set → compare the legs block by
 * block (with a {@link LegComparator}: each leg read directly, once every leg is in sync) over
 * {@link #legCompareLength} bytes: any difference is a data problem, as a lost write is.
 */
public final class Drill {
    private static final int BLOCK = DrillOptions.BLOCK;
    /** The legs are compared over at least this much of the device (all of it when smaller): 64 MiB. */
    public static final long LEG_COMPARE_MIN_BYTES = 64L << 20;

    private final BlockDevice device;
    private final MirrorBlockDevice mirror;
    private final DrillFault fault;
    private final DrillOptions options;
    private final LegComparator legComparator;

    private final long blocks;
    private final long[] ackedGen;
    /** Lowest and highest generation of the failed writes since the last acknowledged one; 0 when none. */
    private final long[] doubtMin;
    private final long[] doubtMax;
    private final boolean[] busy;

    private final AtomicLong firstDropNanos = new AtomicLong();
    private final AtomicLong inSyncNanos = new AtomicLong();
    /** Per leg: legs the fault dropped, and when each was last dropped / back in sync / its resync started. */
    private final LegTrack legTrack = new LegTrack();
    /** Drop event of the first fault leg, and when its resync started (0 = not yet): the "leg is out" window. */
    private volatile long outSinceNanos;
    private volatile long outUntilNanos;
    private final int regionSize;
    private final boolean[] regionWritten;
    /**
     * The mirror's activity-log extent (at least one region), as a shift: when a leg is dropped the mirror marks the
     * regions of every extent the log holds unflushed (its node may lose what it had not flushed), so its resync
     * copies those too. 0 on a plain device.
     */
    private final int extentShift;
    /** Per extent of the working set: the latest end of a drill write to it before the fault leg's drop (driver). */
    private final long[] extentLastWriteEnd;
    /** The last successful FLUSHes that completed before the fault (submitted, completed): a ring (driver thread). */
    private final long[] okFlushStart = new long[FLUSH_HISTORY];
    private final long[] okFlushEnd = new long[FLUSH_HISTORY];
    private int okFlushes;
    private static final int FLUSH_HISTORY = 16;
    private long regionsDirtyBeforeFault = -1;
    private final List<String> events = new CopyOnWriteArrayList<>();
    private volatile long faultNanos;
    private volatile long recoverNanos;
    /** Set once recovery has returned: legs dropped later are not the fault's. */
    private volatile boolean resyncWaitStarted;
    private volatile Phase phase = Phase.STARTING;
    private volatile boolean cancelled;
    /** Completed requests, published by the driver thread with an ordered store (no fence per IO on x86). */
    private final AtomicLong completedRequests = new AtomicLong();

    /** Where a running drill is, for a status page or progress bar on another thread. */
    public enum Phase {
        /** Constructed, {@link #run()} not yet called. */
        STARTING,
        /** Writing a known generation over the whole working set. */
        PREFILL,
        /** Baseline workload before the fault. */
        BEFORE,
        /** Fault injected; workload runs through it. */
        DURING,
        /** {@code fault.recover()} is running. */
        RECOVERING,
        /** Waiting for the dropped leg to be back in sync. */
        RESYNC,
        /** Workload after recovery. */
        AFTER,
        /** Draining and reading the whole working set back. */
        VERIFYING,
        /** {@link #run()} returned a report. */
        DONE,
        /** {@link #run()} threw. */
        FAILED
    }

    /**
     * @param device  the device under test (its working set is overwritten)
     * @param mirror  the mirror whose leg events time detection and resync, or null for a plain device
     * @param fault   what to break and how to undo it
     * @param options workload and phases
     */
    public Drill(BlockDevice device, MirrorBlockDevice mirror, DrillFault fault, DrillOptions options) {
        this(device, mirror, fault, options, null);
    }

    /**
     * @param legs compares the legs once the drill has verified the data (null: the device has no legs to compare)
     */
    public Drill(BlockDevice device, MirrorBlockDevice mirror, DrillFault fault, DrillOptions options,
                 LegComparator legs) {
        if (options.workingSetBytes() > device.info().size()) {
            throw new IllegalArgumentException("working set " + options.workingSetBytes() + " exceeds device size "
                    + device.info().size());
        }
        if (options.maxIoBytes() > device.info().maxIoSize()) {
            throw new IllegalArgumentException("max IO " + options.maxIoBytes() + " exceeds the device's "
                    + device.info().maxIoSize());
        }
        this.device = device;
        this.mirror = mirror;
        this.fault = fault;
        this.options = options;
        this.legComparator = legs;
        this.blocks = options.workingSetBytes() / BLOCK;
        if (blocks > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("working set too large for the in-memory model");
        }
        this.ackedGen = new long[(int) blocks];
        this.doubtMin = new long[(int) blocks];
        this.doubtMax = new long[(int) blocks];
        this.busy = new boolean[(int) blocks];
        this.regionSize = mirror == null ? 0 : mirror.bitmap().regionSize();
        this.regionWritten = mirror == null ? new boolean[0]
                : new boolean[(int) ((options.workingSetBytes() + regionSize - 1) / regionSize)];
        this.extentShift = mirror == null ? 0
                : Integer.numberOfTrailingZeros(Math.max(mirror.activityLog().extentSize(), regionSize));
        this.extentLastWriteEnd = mirror == null ? new long[0]
                : new long[(int) ((options.workingSetBytes() + (1L << extentShift) - 1) >>> extentShift)];
    }

    /** The current phase; safe from any thread. */
    public Phase phase() {
        return phase;
    }

    /** {@link System#nanoTime()} when the fault was injected; 0 before. */
    public long faultNanos() {
        return faultNanos;
    }

    /** {@link System#nanoTime()} when recovery began (the fault undone); 0 before. */
    public long recoverNanos() {
        return recoverNanos;
    }

    /** Requests completed so far (any status); safe from any thread, lags the driver by at most a few requests. */
    public long completedRequests() {
        return completedRequests.get();
    }

    /**
     * Cuts the remaining phases short (shutdown of whoever runs the drill): the phase waits end at once, so
     * {@code fault.recover()} runs promptly and the report covers what ran. Safe from any thread.
     */
    public void cancel() {
        cancelled = true;
    }

    /** Runs the drill (blocking, on the caller's thread as the control thread) and returns its report. */
    public DrillReport run() throws Exception {
        try {
            DrillReport report = runPhases();
            phase = Phase.DONE;
            return report;
        } catch (Exception | Error e) {
            phase = Phase.FAILED;
            throw e;
        }
    }

    private DrillReport runPhases() throws Exception {
        MirrorListener listener = new MirrorListener() {
            @Override
            public void legDropped(int leg, String reason, long nanoTime) {
                long f = faultNanos;
                boolean byFault = f != 0 && legTrack.dropped(leg, nanoTime, resyncWaitStarted);
                if (byFault) {
                    // The mirror's own event time, not when this callback ran.
                    firstDropNanos.compareAndSet(0, nanoTime);
                    if (outSinceNanos == 0) {
                        outSinceNanos = nanoTime;
                    }
                }
                events.add(event(nanoTime, "leg " + leg + " dropped: " + reason
                        + (byFault ? " (by the fault)" : "")));
            }

            @Override
            public void resyncStarted(int leg, long regions, boolean full, long nanoTime) {
                if (legTrack.resyncStarted(leg, regions) && outUntilNanos == 0 && outSinceNanos != 0) {
                    outUntilNanos = nanoTime;
                }
                events.add(event(nanoTime, "leg " + leg + " resync started: " + regions + " regions"
                        + (full ? " (full)" : "")));
            }

            @Override
            public void legInSync(int leg, long nanoTime) {
                boolean faultLeg = legTrack.inSync(leg, nanoTime, mirror.progress());
                events.add(event(nanoTime, "leg " + leg + " in sync"
                        + (faultLeg ? " (dropped by the fault: time to resync)" : "")));
            }

            @Override
            public void resyncFailed(int leg, String reason, long nanoTime) {
                events.add(event(nanoTime, "leg " + leg + " resync failed: " + reason));
            }
        };
        if (mirror != null) {
            mirror.addListener(listener);
        }
        Driver driver = new Driver();
        Thread thread = new Thread(driver, "weft-drill-driver");
        thread.setDaemon(true);
        try {
            fault.prepare();
            phase = Phase.PREFILL;
            thread.start();
            while (!driver.prefilled && thread.isAlive() && !cancelled) {
                LockSupport.parkNanos(1_000_000);
            }
            if (!driver.prefilled) {
                driver.running = false;
                thread.join(TimeUnit.SECONDS.toMillis(15));
                throw new IllegalStateException(cancelled ? "drill cancelled during prefill"
                        : "prefill of the working set failed", driver.failure);
            }
            phase = Phase.BEFORE;
            sleepMillis(options.beforeMillis());

            if (mirror != null) {
                regionsDirtyBeforeFault = mirror.bitmap().dirtyCount();
            }
            faultNanos = System.nanoTime();
            driver.phaseStart[1] = faultNanos;
            driver.phase = 1;
            phase = Phase.DURING;
            events.add(event(faultNanos, "fault '" + fault.name() + "' injected"));
            fault.inject();
            long injected = System.nanoTime();
            if (injected - faultNanos > 10_000_000L) {
                events.add(event(injected, "inject returned (took "
                        + String.format(Locale.ROOT, "%.1f ms", nanosToMillis(injected - faultNanos)) + ")"));
            }
            sleepMillis(options.duringMillis());

            recoverNanos = System.nanoTime();
            driver.phaseStart[2] = recoverNanos;
            driver.phase = 2;
            phase = Phase.RECOVERING;
            events.add(event(recoverNanos, "recover"));
            fault.recover();
            resyncWaitStarted = true;
            if (mirror != null && firstDropNanos.get() != 0 && fault.legReturns()) {
                phase = Phase.RESYNC;
                long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(options.resyncTimeoutMillis());
                long back;
                while ((back = legTrack.allFaultLegsBackAfter(recoverNanos)) == 0 && System.nanoTime() < deadline
                        && thread.isAlive() && !cancelled) {
                    LockSupport.parkNanos(1_000_000);
                }
                if (back != 0) {
                    inSyncNanos.set(back);
                } else {
                    events.add(event(System.nanoTime(), "gave up waiting for leg(s) " + legTrack.pendingLegs()
                            + " to be back in sync"));
                }
            }
            long afterStart = System.nanoTime();
            driver.phaseStart[3] = afterStart;
            driver.phase = 3;
            phase = Phase.AFTER;
            sleepMillis(options.afterMillis());
            phase = Phase.VERIFYING;
            driver.phaseEnd = System.nanoTime();
            driver.running = false;
            thread.join(TimeUnit.SECONDS.toMillis(15));
            if (driver.failure != null) {
                throw new IllegalStateException("drill driver failed", driver.failure);
            }
            long hung = driver.inFlightAtEnd;
            long[] check = verifyAll();
            LegComparison.Result legs = compareLegs();
            double before = nanosToMillis(driver.maxLatency[0]);
            double stall = 0;
            for (long l : driver.maxLatency) {
                stall = Math.max(stall, nanosToMillis(l));
            }
            long drop = firstDropNanos.get();
            long inSync = inSyncNanos.get();
            long written = -1;
            if (mirror != null) {
                written = 0;
                for (boolean w : regionWritten) {
                    written += w ? 1 : 0;
                }
            }
            long[] resync = legTrack.resyncCounts(mirror != null);
            long unflushed = regionsUnflushedAtDrop();
            return new DrillReport(fault.name(), options.seed(), stall, before,
                    drop == 0 ? -1 : nanosToMillis(drop - faultNanos),
                    driver.failoverNanos == 0 ? -1 : nanosToMillis(driver.failoverNanos - faultNanos),
                    inSync == 0 ? -1 : nanosToMillis(inSync - recoverNanos),
                    driver.iops(0), driver.iops(1), driver.iops(3),
                    driver.completed, driver.writesOk, driver.writesFailed, driver.readsFailed,
                    driver.readMismatches, check[0], check[1], check[2], check[3], hung,
                    regionsDirtyBeforeFault, resync[0], written, unflushed, resync[1], resync[2],
                    legs == null ? -1 : legs.bytesCompared(), legs == null ? -1 : legs.differingBytes(),
                    legs == null ? List.of() : legs.regions().stream().map(Object::toString).toList(), events);
        } finally {
            driver.running = false;
            if (mirror != null) {
                mirror.removeListener(listener);
            }
        }
    }

    /**
     * The drill's own upper bound, from its writes and flushes only (not the mirror's log), of the regions the mirror
     * marked for the fault leg at its drop besides those written while it was out: every region of each activity-log
     * extent that a drill write ended in after the submission of the last successful FLUSH completed before the fault
     * (the mirror counts a write flushed only by a flush round started after it ended; the fault, not the drop event:
     * the mirror marks the extents a moment before it stamps the drop). Writes before this drill (another drill, a
     * user) are not seen: their unflushed extents are not counted. -1 on a plain device or when no fault leg was
     * dropped.
     */
    private long regionsUnflushedAtDrop() {
        long fault = faultNanos;
        if (mirror == null || outSinceNanos == 0) {
            return -1;
        }
        long lastFlushStart = 0;
        for (int i = 0; i < Math.min(okFlushes, FLUSH_HISTORY); i++) {
            if (okFlushEnd[i] < fault) {
                lastFlushStart = Math.max(lastFlushStart, okFlushStart[i]);
            }
        }
        long deviceRegions = mirror.bitmap().regionCount();
        long regionsPerExtent = (1L << extentShift) / regionSize;
        long count = 0;
        for (int e = 0; e < extentLastWriteEnd.length; e++) {
            long end = extentLastWriteEnd[e];
            if (end == 0 || end < lastFlushStart) {
                continue;
            }
            for (long r = e * regionsPerExtent; r < Math.min((e + 1) * regionsPerExtent, deviceRegions); r++) {
                if (r >= regionWritten.length || !regionWritten[(int) r]) {
                    count++;
                }
            }
        }
        return count;
    }

    /** Bytes of the device the legs are compared over: the working set, at least 64 MiB, at most the device. */
    public long legCompareLength() {
        long size = device.info().size() / BLOCK * BLOCK;
        return Math.min(size, Math.max(options.workingSetBytes(), LEG_COMPARE_MIN_BYTES));
    }

    /**
     * Once every leg is in sync (waited for up to the resync timeout), compares them block by block. Null, with an
     * event saying why, when there is nothing to compare or the legs cannot be compared (a leg still out, a read
     * failing): the report then has -1 for the comparison, which is not in itself a data problem.
     */
    private LegComparison.Result compareLegs() {
        if (legComparator == null) {
            return null;
        }
        if (mirror != null) {
            if (!fault.legReturns()) {
                events.add(event(System.nanoTime(), "legs not compared: the fault's leg does not return"));
                return null;
            }
            long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(options.resyncTimeoutMillis());
            String out;
            while ((out = legsNotInSync()) != null && System.nanoTime() < deadline && !cancelled) {
                LockSupport.parkNanos(1_000_000);
            }
            if (out != null) {
                events.add(event(System.nanoTime(), "legs not compared: " + out));
                return null;
            }
        }
        long length = legCompareLength();
        try {
            LegComparison.Result r = legComparator.compare(length);
            events.add(event(System.nanoTime(), r.describe()));
            return r;
        } catch (Exception | Error e) {
            events.add(event(System.nanoTime(), "legs not compared: " + e.getMessage()));
            return null;
        }
    }

    /** Why the mirror's legs are not all in sync now (a leg out, a resync running), or null when they are. */
    private String legsNotInSync() {
        for (int leg = 0; leg < MirrorBlockDevice.MAX_LEGS; leg++) {
            var state = mirror.legState(leg);
            if (state != io.weft.core.mirror.LegState.IN_SYNC && state != io.weft.core.mirror.LegState.EMPTY) {
                return "leg " + leg + " is " + state.name().toLowerCase(Locale.ROOT);
            }
        }
        return mirror.progress().running() ? "a resync is running" : null;
    }

    private String event(long nanoTime, String what) {
        long f = faultNanos;
        return f == 0 ? what : String.format(Locale.ROOT, "%+.1f ms %s", nanosToMillis(nanoTime - f), what);
    }

    private static double nanosToMillis(long nanos) {
        return nanos / 1e6;
    }

    private void sleepMillis(long millis) {
        // Phase length, not synchronisation: the workload runs on its own thread meanwhile.
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(millis);
        long left;
        while ((left = deadline - System.nanoTime()) > 0 && !cancelled) {
            LockSupport.parkNanos(Math.min(left, 50_000_000L));
        }
    }

    // ------------------------------------------------------------------------------------------ patterns

    static void fillBlock(ByteBuffer buf, int at, long block, long gen) {
        buf.putLong(at, block);
        buf.putLong(at + 8, gen);
        long x = mix(block, gen);
        for (int i = 16; i < BLOCK; i += 8) {
            x ^= x << 13;
            x ^= x >>> 7;
            x ^= x << 17;
            buf.putLong(at + i, x);
        }
    }

    private static long mix(long block, long gen) {
        long x = block * 0x9E37_79B9_7F4A_7C15L ^ (gen + 0x632B_E59B_D9B4_E019L);
        x ^= x >>> 31;
        return x == 0 ? 1 : x;
    }

    /** 0 = verified, 1 = lost (older version or zeros), 2 = corrupted. */
    int classify(ByteBuffer buf, int at, long block) {
        long acked = ackedGen[(int) block];
        long lowDoubt = doubtMin[(int) block];
        long highDoubt = doubtMax[(int) block];
        long storedBlock = buf.getLong(at);
        long storedGen = buf.getLong(at + 8);
        if (storedBlock == 0 && storedGen == 0 && isZero(buf, at)) {
            return acked == 0 ? 0 : 1;
        }
        if (storedBlock != block || !matchesPattern(buf, at, block, storedGen)) {
            return 2;
        }
        if (storedGen == acked || (lowDoubt != 0 && storedGen >= lowDoubt && storedGen <= highDoubt)) {
            return 0;
        }
        return storedGen < acked ? 1 : 2;
    }

    private static boolean isZero(ByteBuffer buf, int at) {
        for (int i = 0; i < BLOCK; i += 8) {
            if (buf.getLong(at + i) != 0) {
                return false;
            }
        }
        return true;
    }

    private static boolean matchesPattern(ByteBuffer buf, int at, long block, long gen) {
        long x = mix(block, gen);
        for (int i = 16; i < BLOCK; i += 8) {
            x ^= x << 13;
            x ^= x >>> 7;
            x ^= x << 17;
            if (buf.getLong(at + i) != x) {
                return false;
            }
        }
        return true;
    }

    /** Reads the whole working set back and classifies every block: verified, lost, corrupted, unreadable. */
    private long[] verifyAll() {
        long[] counts = new long[4];
        int chunkBlocks = Math.max(1, Math.min(options.maxIoBytes(), 1 << 20) / BLOCK);
        ByteBuffer buf = ByteBuffer.allocateDirect(chunkBlocks * BLOCK).order(ByteOrder.LITTLE_ENDIAN);
        WaitingCompletion wait = new WaitingCompletion();
        for (long b = 0; b < blocks; b += chunkBlocks) {
            int n = (int) Math.min(chunkBlocks, blocks - b);
            buf.clear().limit(n * BLOCK);
            int st = wait.run(device, IoOp.READ, b * BLOCK, n * BLOCK, buf);
            if (st == IoStatus.ETIMEDOUT) {
                // The read is still live below: cancelled, but its buffer and completion may yet be used by the
                // device. Neither is used again (ownership rule): fresh ones for the rest of the check.
                device.cancel(0, wait);
                buf = ByteBuffer.allocateDirect(chunkBlocks * BLOCK).order(ByteOrder.LITTLE_ENDIAN);
                wait = new WaitingCompletion();
            }
            for (int k = 0; k < n; k++) {
                if (st != IoStatus.OK) {
                    counts[3]++;
                } else {
                    counts[classify(buf, k * BLOCK, b + k)]++;
                }
            }
        }
        return counts;
    }

    /** Blocking single request with a 10 s bound (verification only). */
    private static final class WaitingCompletion implements IoCompletion {
        private volatile int status;
        private volatile boolean done;
        private final Thread waiter = Thread.currentThread();

        int run(BlockDevice d, IoOp op, long offset, int length, ByteBuffer buf) {
            done = false;
            d.submit(op, offset, length, 0, buf, 0, this);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (!done) {
                if (System.nanoTime() > deadline) {
                    return IoStatus.ETIMEDOUT;
                }
                LockSupport.parkNanos(100_000);
            }
            return status;
        }

        @Override
        public void onComplete(long tag, int st) {
            status = st;
            done = true;
            LockSupport.unpark(waiter);
        }
    }

    // ------------------------------------------------------------------------------------------ workload

    private final class Driver implements Runnable, IoCompletion {
        final Request[] requests = new Request[options.queueDepth()];
        final ManyToOneConcurrentArrayQueue<Request> done =
                new ManyToOneConcurrentArrayQueue<>(Math.max(2, options.queueDepth()));
        final SplittableRandom random = new SplittableRandom(options.seed());
        final long[] phaseStart = new long[4];
        final long[] phaseCount = new long[4];
        final long[] maxLatency = new long[4];
        volatile long phaseEnd;
        volatile int phase;
        volatile boolean running = true;
        /** The working set holds generation 1 everywhere (acknowledged); the baseline phase has begun. */
        volatile boolean prefilled;
        volatile Throwable failure;
        long prefillNext;
        int prefillFailedStatus = IoStatus.OK;
        long generation;
        long completed;
        long writesOk;
        long writesFailed;
        long readsFailed;
        long readMismatches;
        long failoverNanos;
        long inFlightAtEnd;
        int inFlight;
        int writesSinceFlush;

        Driver() {
            for (int i = 0; i < requests.length; i++) {
                requests[i] = new Request(i, options.maxIoBytes());
            }
        }

        double iops(int p) {
            long start = phaseStart[p];
            long end = p == 3 ? phaseEnd : phaseStart[p + 1];
            if (start == 0 || end <= start) {
                return 0;
            }
            return phaseCount[p] * 1e9 / (end - start);
        }

        @Override
        public void run() {
            try {
                IdleStrategy idle = new BackoffIdleStrategy(100, 10, 1_000, 200_000);
                if (!prefill(idle)) {
                    return;
                }
                phaseStart[0] = System.nanoTime();
                prefilled = true;
                while (running) {
                    int work = drain();
                    for (Request r : requests) {
                        if (!r.inUse && running) {
                            work += issue(r) ? 1 : 0;
                        }
                    }
                    idle.idle(work);
                }
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                while (inFlight > 0 && System.nanoTime() < deadline) {
                    if (drain() == 0) {
                        LockSupport.parkNanos(100_000);
                    }
                }
                inFlightAtEnd = inFlight;
            } catch (Throwable t) {
                failure = t;
            }
        }

        /**
         * Writes generation 1 over the whole working set, sequentially in max-IO requests with the queue depth in
         * flight, and waits for all of them. False (with {@link #failure} set) if any failed or the drill stopped.
         */
        private boolean prefill(IdleStrategy idle) {
            int chunk = options.maxIoBytes() / BLOCK;
            generation = 1;
            while (running && (prefillNext < blocks || inFlight > 0) && prefillFailedStatus == IoStatus.OK) {
                int work = done.drain(this::completePrefill);
                for (Request r : requests) {
                    if (!r.inUse && prefillNext < blocks && running) {
                        int n = (int) Math.min(chunk, blocks - prefillNext);
                        ByteBuffer buf = r.buffer;
                        buf.clear().limit(n * BLOCK);
                        for (int k = 0; k < n; k++) {
                            fillBlock(buf, k * BLOCK, prefillNext + k, 1);
                        }
                        r.start(IoOp.WRITE, prefillNext, n, 1);
                        device.submit(IoOp.WRITE, prefillNext * BLOCK, n * BLOCK, 0, buf, r.index, this);
                        prefillNext += n;
                        work++;
                    }
                }
                idle.idle(work);
            }
            if (prefillFailedStatus != IoStatus.OK || prefillNext < blocks || inFlight > 0) {
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                while (inFlight > 0 && System.nanoTime() < deadline) {
                    if (done.drain(this::completePrefill) == 0) {
                        LockSupport.parkNanos(100_000);
                    }
                }
                failure = new IllegalStateException(prefillFailedStatus != IoStatus.OK
                        ? "a prefill write failed: " + IoStatus.name(prefillFailedStatus) : "prefill stopped");
                return false;
            }
            return true;
        }

        private void completePrefill(Request r) {
            inFlight--;
            r.inUse = false;
            noteWriteEnd(r);
            if (r.status == IoStatus.OK) {
                for (int k = 0; k < r.blocks; k++) {
                    ackedGen[(int) (r.firstBlock + k)] = r.gen;
                }
            } else if (prefillFailedStatus == IoStatus.OK) {
                prefillFailedStatus = r.status;
            }
        }

        /** Marks the bitmap regions of a write that completed (either way) while a fault leg was out. */
        private void countWhileOut(Request r) {
            long since = outSinceNanos;
            if (since == 0 || r.endNanos < since) {
                return;
            }
            long until = outUntilNanos;
            if (until != 0 && r.startNanos >= until) {
                return;
            }
            long first = r.firstBlock * BLOCK / regionSize;
            long last = ((r.firstBlock + r.blocks) * BLOCK - 1) / regionSize;
            for (long g = first; g <= last; g++) {
                regionWritten[(int) g] = true;
            }
        }

        /**
         * Remembers when a write (either outcome: a failed one may have landed) to each extent last ended before the
         * drop. One that ended later but is seen before the drop event only makes the bound larger, never smaller.
         */
        private void noteWriteEnd(Request r) {
            long since = outSinceNanos;
            if (extentLastWriteEnd.length == 0 || (since != 0 && r.endNanos >= since)) {
                return;
            }
            long first = r.firstBlock * BLOCK >>> extentShift;
            long last = ((r.firstBlock + r.blocks) * BLOCK - 1) >>> extentShift;
            for (long e = first; e <= last; e++) {
                extentLastWriteEnd[(int) e] = Math.max(extentLastWriteEnd[(int) e], r.endNanos);
            }
        }

        /** A successful FLUSH that ended before the fault (seen before it or not: filtered again by its end). */
        private void noteFlushOk(Request r) {
            long fault = faultNanos;
            if (fault != 0 && r.endNanos >= fault) {
                return;
            }
            int i = okFlushes++ % FLUSH_HISTORY;
            okFlushStart[i] = r.startNanos;
            okFlushEnd[i] = r.endNanos;
        }

        private boolean issue(Request r) {
            int pick = random.nextInt(100);
            if (pick >= options.readPercent() && writesSinceFlush >= 50) {
                writesSinceFlush = 0;
                r.start(IoOp.FLUSH, 0, 0, 0);
                device.submit(IoOp.FLUSH, 0, 0, 0, null, r.index, this);
                return true;
            }
            int minBlocks = options.minIoBytes() / BLOCK;
            int maxBlocks = options.maxIoBytes() / BLOCK;
            int n = minBlocks + random.nextInt(maxBlocks - minBlocks + 1);
            for (int attempt = 0; attempt < 8; attempt++) {
                long first = random.nextLong(blocks - n + 1);
                if (anyBusy(first, n)) {
                    continue;
                }
                for (int k = 0; k < n; k++) {
                    busy[(int) (first + k)] = true;
                }
                ByteBuffer buf = r.buffer;
                buf.clear().limit(n * BLOCK);
                if (pick < options.readPercent()) {
                    r.start(IoOp.READ, first, n, 0);
                    device.submit(IoOp.READ, first * BLOCK, n * BLOCK, 0, buf, r.index, this);
                } else {
                    long gen = ++generation;
                    for (int k = 0; k < n; k++) {
                        fillBlock(buf, k * BLOCK, first + k, gen);
                    }
                    writesSinceFlush++;
                    r.start(IoOp.WRITE, first, n, gen);
                    device.submit(IoOp.WRITE, first * BLOCK, n * BLOCK, 0, buf, r.index, this);
                }
                return true;
            }
            return false;
        }

        private boolean anyBusy(long first, int n) {
            for (int k = 0; k < n; k++) {
                if (busy[(int) (first + k)]) {
                    return true;
                }
            }
            return false;
        }

        @Override
        public void onComplete(long tag, int status) {
            Request r = requests[(int) tag];
            r.status = status;
            r.endNanos = System.nanoTime();
            while (!done.offer(r)) {
                Thread.onSpinWait();
            }
        }

        private int drain() {
            return done.drain(this::complete);
        }

        private void complete(Request r) {
            inFlight--;
            r.inUse = false;
            completed++;
            completedRequests.lazySet(completed);
            int p = phase;
            long latency = r.endNanos - r.startNanos;
            phaseCount[p]++;
            if (latency > maxLatency[p]) {
                maxLatency[p] = latency;
            }
            long drop = firstDropNanos.get();
            if (failoverNanos == 0 && r.status == IoStatus.OK && drop != 0 && r.startNanos >= drop) {
                failoverNanos = r.endNanos;
            }
            switch (r.op) {
                case WRITE:
                    for (int k = 0; k < r.blocks; k++) {
                        int b = (int) (r.firstBlock + k);
                        if (r.status == IoStatus.OK) {
                            ackedGen[b] = r.gen;
                            doubtMin[b] = 0;
                            doubtMax[b] = 0;
                        } else {
                            // Generations only grow, and a success clears the range: min stays, max moves up.
                            if (doubtMin[b] == 0) {
                                doubtMin[b] = r.gen;
                            }
                            doubtMax[b] = r.gen;
                        }
                        busy[b] = false;
                    }
                    countWhileOut(r);
                    noteWriteEnd(r);
                    if (r.status == IoStatus.OK) {
                        writesOk++;
                    } else {
                        writesFailed++;
                    }
                    break;
                case READ:
                    if (r.status != IoStatus.OK) {
                        readsFailed++;
                    }
                    for (int k = 0; k < r.blocks; k++) {
                        long b = r.firstBlock + k;
                        if (r.status == IoStatus.OK && classify(r.buffer, k * BLOCK, b) != 0) {
                            readMismatches++;
                        }
                        busy[(int) b] = false;
                    }
                    break;
                case FLUSH:
                    if (r.status == IoStatus.OK) {
                        noteFlushOk(r);
                    }
                    break;
                default:
                    break;
            }
        }

        private final class Request {
            final int index;
            final ByteBuffer buffer;
            IoOp op;
            long firstBlock;
            int blocks;
            long gen;
            long startNanos;
            volatile long endNanos;
            volatile int status;
            boolean inUse;

            Request(int index, int maxBytes) {
                this.index = index;
                this.buffer = ByteBuffer.allocateDirect(maxBytes).order(ByteOrder.LITTLE_ENDIAN);
            }

            void start(IoOp op, long firstBlock, int blocks, long gen) {
                this.op = op;
                this.firstBlock = firstBlock;
                this.blocks = blocks;
                this.gen = gen;
                this.inUse = true;
                inFlight++;
                this.startNanos = System.nanoTime();
            }
        }
    }

    /**
     * Which legs the fault dropped (dropped after the inject, before recovery returned) and how each came back.
     * Updated from the mirror's event threads, read by the control thread; events are rare, so a lock is fine.
     */
    private static final class LegTrack {
        private final long[] dropNanos = new long[MirrorBlockDevice.MAX_LEGS];
        private final long[] inSyncNanos = new long[MirrorBlockDevice.MAX_LEGS];
        private final long[] dirtyAtStart = new long[MirrorBlockDevice.MAX_LEGS];
        private final long[] regionsCopied = new long[MirrorBlockDevice.MAX_LEGS];
        private final long[] bytesCopied = new long[MirrorBlockDevice.MAX_LEGS];
        private final boolean[] resyncSinceDrop = new boolean[MirrorBlockDevice.MAX_LEGS];
        private int faultLegs;

        /** @return whether the leg counts as dropped by the fault */
        synchronized boolean dropped(int leg, long nanoTime, boolean afterRecovery) {
            if (!afterRecovery) {
                faultLegs |= 1 << leg;
            }
            dropNanos[leg] = nanoTime;
            inSyncNanos[leg] = 0;
            resyncSinceDrop[leg] = false;
            return (faultLegs & (1 << leg)) != 0 && !afterRecovery;
        }

        /** @return whether the leg is one the fault dropped */
        synchronized boolean resyncStarted(int leg, long regions) {
            dirtyAtStart[leg] = regions;
            resyncSinceDrop[leg] = true;
            return (faultLegs & (1 << leg)) != 0;
        }

        /** @return whether the leg is one the fault dropped */
        synchronized boolean inSync(int leg, long nanoTime, io.weft.core.mirror.ResyncProgress progress) {
            inSyncNanos[leg] = nanoTime;
            if (resyncSinceDrop[leg] && progress.leg() == leg && !progress.running()) {
                regionsCopied[leg] = progress.regionsDone();
                bytesCopied[leg] = progress.bytesCopied();
            } else {
                // Made in sync without a copy (it was the last authoritative leg).
                dirtyAtStart[leg] = 0;
                regionsCopied[leg] = 0;
                bytesCopied[leg] = 0;
            }
            return (faultLegs & (1 << leg)) != 0;
        }

        /** When the last fault leg came back in sync after {@code since}, or 0 while any is still out. */
        synchronized long allFaultLegsBackAfter(long since) {
            long last = 0;
            for (int leg = 0; leg < dropNanos.length; leg++) {
                if ((faultLegs & (1 << leg)) != 0) {
                    long back = inSyncNanos[leg];
                    if (back == 0 || back < dropNanos[leg]) {
                        return 0;
                    }
                    last = Math.max(last, Math.max(back, since));
                }
            }
            return last;
        }

        synchronized String pendingLegs() {
            StringBuilder b = new StringBuilder();
            for (int leg = 0; leg < dropNanos.length; leg++) {
                if ((faultLegs & (1 << leg)) != 0 && inSyncNanos[leg] == 0) {
                    b.append(b.length() == 0 ? "" : ", ").append(leg);
                }
            }
            return b.toString();
        }

        /** {regions dirty at the return, regions copied, bytes copied} summed over the fault legs back in sync. */
        synchronized long[] resyncCounts(boolean mirrored) {
            if (!mirrored || faultLegs == 0) {
                return new long[] {-1, -1, -1};
            }
            long[] sums = new long[3];
            boolean anyBack = false;
            for (int leg = 0; leg < dropNanos.length; leg++) {
                if ((faultLegs & (1 << leg)) != 0 && inSyncNanos[leg] != 0) {
                    anyBack = true;
                    sums[0] += dirtyAtStart[leg];
                    sums[1] += regionsCopied[leg];
                    sums[2] += bytesCopied[leg];
                }
            }
            return anyBack ? sums : new long[] {-1, -1, -1};
        }
    }

    /** For tests and tools: the expected content of {@code block} written by generation {@code gen}. */
    public static ByteBuffer patternFor(long block, long gen) {
        ByteBuffer b = ByteBuffer.allocate(BLOCK).order(ByteOrder.LITTLE_ENDIAN);
        fillBlock(b, 0, block, gen);
        return b;
    }

    /** Lists the drill's options for people (one line). */
    public String describe() {
        List<String> parts = new ArrayList<>();
        parts.add("qd " + options.queueDepth());
        parts.add(options.minIoBytes() / 1024 + "-" + options.maxIoBytes() / 1024 + " KiB");
        parts.add(options.readPercent() + "% reads");
        parts.add((options.workingSetBytes() >> 20) + " MiB");
        return String.join(", ", parts);
    }
}
