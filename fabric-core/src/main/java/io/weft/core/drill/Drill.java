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
 * else (corrupted). The model keeps, per block, the generation of the last acknowledged write and, after a failed
 * write, the in-doubt generation that may also be there.
 *
 * <p>Phases: before (baseline) → {@code fault.inject()} → during → {@code fault.recover()} → wait for the mirror's
 * leg-in-sync event (if a leg was dropped) → after → drain → read back the whole working set.
 */
public final class Drill {
    private static final int BLOCK = DrillOptions.BLOCK;

    private final BlockDevice device;
    private final MirrorBlockDevice mirror;
    private final DrillFault fault;
    private final DrillOptions options;

    private final long blocks;
    private final long[] ackedGen;
    private final long[] doubtGen;
    private final boolean[] busy;

    private final AtomicLong firstDropNanos = new AtomicLong();
    private final AtomicLong inSyncNanos = new AtomicLong();
    private final List<String> events = new CopyOnWriteArrayList<>();
    private volatile long faultNanos;
    private volatile long recoverNanos;
    private volatile Phase phase = Phase.STARTING;
    private volatile boolean cancelled;
    /** Completed requests, published by the driver thread with an ordered store (no fence per IO on x86). */
    private final AtomicLong completedRequests = new AtomicLong();

    /** Where a running drill is, for a status page or progress bar on another thread. */
    public enum Phase {
        /** Constructed, {@link #run()} not yet called. */
        STARTING,
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
        this.blocks = options.workingSetBytes() / BLOCK;
        if (blocks > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("working set too large for the in-memory model");
        }
        this.ackedGen = new long[(int) blocks];
        this.doubtGen = new long[(int) blocks];
        this.busy = new boolean[(int) blocks];
    }

    /** The current phase; safe from any thread. */
    public Phase phase() {
        return phase;
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
                if (f != 0) {
                    firstDropNanos.compareAndSet(0, nanoTime);
                }
                events.add(event(nanoTime, "leg " + leg + " dropped: " + reason));
            }

            @Override
            public void resyncStarted(int leg, long regions, boolean full, long nanoTime) {
                events.add(event(nanoTime, "leg " + leg + " resync started: " + regions + " regions"
                        + (full ? " (full)" : "")));
            }

            @Override
            public void legInSync(int leg, long nanoTime) {
                if (recoverNanos != 0) {
                    inSyncNanos.compareAndSet(0, nanoTime);
                }
                events.add(event(nanoTime, "leg " + leg + " in sync"));
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
            long start = System.nanoTime();
            driver.phaseStart[0] = start;
            phase = Phase.BEFORE;
            thread.start();
            sleepMillis(options.beforeMillis());

            faultNanos = System.nanoTime();
            driver.phaseStart[1] = faultNanos;
            driver.phase = 1;
            phase = Phase.DURING;
            events.add(event(faultNanos, "fault '" + fault.name() + "' injected"));
            fault.inject();
            sleepMillis(options.duringMillis());

            recoverNanos = System.nanoTime();
            driver.phaseStart[2] = recoverNanos;
            driver.phase = 2;
            phase = Phase.RECOVERING;
            events.add(event(recoverNanos, "recover"));
            fault.recover();
            if (mirror != null && firstDropNanos.get() != 0 && fault.legReturns()) {
                phase = Phase.RESYNC;
                long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(options.resyncTimeoutMillis());
                while (inSyncNanos.get() == 0 && System.nanoTime() < deadline && thread.isAlive() && !cancelled) {
                    LockSupport.parkNanos(1_000_000);
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
            double before = nanosToMillis(driver.maxLatency[0]);
            double stall = 0;
            for (long l : driver.maxLatency) {
                stall = Math.max(stall, nanosToMillis(l));
            }
            long drop = firstDropNanos.get();
            long inSync = inSyncNanos.get();
            return new DrillReport(fault.name(), options.seed(), stall, before,
                    drop == 0 ? -1 : nanosToMillis(drop - faultNanos),
                    driver.failoverNanos == 0 ? -1 : nanosToMillis(driver.failoverNanos - faultNanos),
                    inSync == 0 ? -1 : nanosToMillis(inSync - recoverNanos),
                    driver.iops(0), driver.iops(1), driver.iops(3),
                    driver.completed, driver.writesOk, driver.writesFailed, driver.readsFailed,
                    driver.readMismatches, check[0], check[1], check[2], check[3], hung, events);
        } finally {
            driver.running = false;
            if (mirror != null) {
                mirror.removeListener(listener);
            }
        }
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
        long doubt = doubtGen[(int) block];
        long storedBlock = buf.getLong(at);
        long storedGen = buf.getLong(at + 8);
        if (storedBlock == 0 && storedGen == 0 && isZero(buf, at)) {
            return acked == 0 ? 0 : 1;
        }
        if (storedBlock != block || !matchesPattern(buf, at, block, storedGen)) {
            return 2;
        }
        if (storedGen == acked || (doubt != 0 && storedGen == doubt)) {
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
        volatile Throwable failure;
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
                            doubtGen[b] = 0;
                        } else {
                            doubtGen[b] = r.gen;
                        }
                        busy[b] = false;
                    }
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
