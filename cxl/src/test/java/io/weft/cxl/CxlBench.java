package io.weft.cxl;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.core.process.ChildJvm;
import io.weft.core.store.StoreBlockDevice;
import io.weft.cxl.layout.RegionGeometry;
import io.weft.cxl.layout.RegionHeader;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import org.HdrHistogram.Histogram;
import org.agrona.concurrent.AgentInvoker;

/**
 * Benchmark (not a test): 4 KiB random read and write at queue depth 1 and 32 through the Java {@link BlockDevice}
 * API, on (a) the local {@link StoreBlockDevice} in this JVM and (b) a {@link CxlBlockDevice} whose backend runs in a
 * child JVM serving the same tmpfs file, in the same run. Prints a Markdown table.
 *
 * <p>Usage: {@code CxlBench [seconds-per-case=5] [store-MiB=256] [dir=/dev/shm] [rounds=3]}. Every case runs once
 * per round, cases interleaved, and the table reports the round with the median IOPS (a shared machine's noise hits
 * all targets alike). See bench/cxl/run.sh.
 */
public final class CxlBench {
    private static final int BLOCK = 4096;
    /** Caller-polls driver: how long to spin for a completion before yielding (-Dbench.pollSpinNs). */
    private static final long POLL_SPIN_NS = Long.getLong("bench.pollSpinNs", 3_000);

    private CxlBench() {
    }

    /** One case: which device, how it is driven, op and depth. */
    record Result(String target, String op, int qd, double iops, double p50us, double p99us, long errors) {
    }

    public static void main(String[] args) throws Exception {
        int seconds = args.length > 0 ? Integer.parseInt(args[0]) : 5;
        long storeBytes = (args.length > 1 ? Long.parseLong(args[1]) : 256) << 20;
        Path dir = Path.of(args.length > 2 ? args[2] : "/dev/shm");
        int rounds = args.length > 3 ? Integer.parseInt(args[3]) : 3;
        Path regionPath = dir.resolve("weft-cxl-bench-" + ProcessHandle.current().pid());
        Path storePath = dir.resolve("weft-cxl-bench-store-" + ProcessHandle.current().pid());
        List<Result> results = new ArrayList<>();
        RegionGeometry geometry = new RegionGeometry(4, 4, 4, 4, 64, 128 << 10);
        try {
            prefill(storePath, storeBytes);
        } catch (Exception | Error e) {
            TestSupport.deleteQuietly(storePath); // 256 MiB of tmpfs must not outlive a failed start
            throw e;
        }
        try (CxlRegion region = CxlRegion.format(regionPath, geometry, RegionHeader.FLAG_ENTRY_CRC);
             CxlHost host = CxlHost.register(region, 1, "bench-client", CxlOptions.defaults());
             StoreBlockDevice local = new StoreBlockDevice(io.weft.core.store.FileBackingStore.open(storePath, false));
             ChildJvm backend = TwoJvmIT.startChild(BackendMain.class, regionPath.toString(), "2", storePath.toString(),
                     Long.toString(storeBytes), "1", "CREATE", "NO_DATA_CRC", "FAST", "DEFAULT_TIMING")) {
            String ready = backend.awaitLine("READY", Duration.ofSeconds(60));
            int backendId = Integer.parseInt(ready.replaceAll(".*backend=(\\d+).*", "$1"));
            List<List<Result>> perCase = new ArrayList<>();
            for (int round = 0; round < rounds; round++) {
                List<Result> thisRound = new ArrayList<>();
                CxlBlockDevice viaAgent = host.openBlkdev(backendId, new BlkdevOptions(1, false));
                for (IoOp op : List.of(IoOp.READ, IoOp.WRITE)) {
                    for (int qd : new int[] {1, 32}) {
                        thisRound.add(run("local StoreBlockDevice", local, null, op, qd, seconds, storeBytes));
                        thisRound.add(run("CXL, completion agent", viaAgent, null, op, qd, seconds, storeBytes));
                    }
                }
                viaAgent.close();
                CxlBlockDevice viaInvoker = host.openBlkdev(backendId, new BlkdevOptions(1, true));
                for (IoOp op : List.of(IoOp.READ, IoOp.WRITE)) {
                    for (int qd : new int[] {1, 32}) {
                        thisRound.add(run("CXL, caller polls", viaInvoker, viaInvoker.invoker(), op, qd, seconds,
                                storeBytes));
                    }
                }
                viaInvoker.close();
                for (int i = 0; i < thisRound.size(); i++) {
                    if (round == 0) {
                        perCase.add(new ArrayList<>());
                    }
                    perCase.get(i).add(thisRound.get(i));
                }
            }
            for (List<Result> runs : perCase) {
                runs.sort(java.util.Comparator.comparingDouble(Result::iops));
                results.add(runs.get(runs.size() / 2));
            }
            idleCpu(host, backendId, backend);
            backend.send("stop");
            backend.awaitExit(Duration.ofSeconds(30));
        } finally {
            TestSupport.deleteQuietly(regionPath, storePath);
        }
        print(results);
    }

    /**
     * With a blkdev open and no IO, measures the CPU both JVMs burn over 5 s (handler agent, completion agent and
     * host agents all idle in their back-off idle strategies).
     */
    private static void idleCpu(CxlHost host, int backendId, ChildJvm backend) throws Exception {
        CxlBlockDevice idle = host.openBlkdev(backendId, new BlkdevOptions(1, false));
        com.sun.management.OperatingSystemMXBean os =
                (com.sun.management.OperatingSystemMXBean)
                        java.lang.management.ManagementFactory.getOperatingSystemMXBean();
        long wall0 = System.nanoTime();
        long self0 = os.getProcessCpuTime();
        long child0 = backend.cpuNanos();
        long until = wall0 + 5_000_000_000L;
        while (System.nanoTime() < until) {
            Thread.sleep(100); // the benchmark's own thread must not add CPU while measuring idle use
        }
        long wall = System.nanoTime() - wall0;
        double self = (os.getProcessCpuTime() - self0) * 100.0 / wall;
        double child = (backend.cpuNanos() - child0) * 100.0 / wall;
        idleReport = String.format(Locale.ROOT, "Idle CPU over 5 s with a blkdev open and no IO: client JVM %.1f%%,"
                + " backend JVM %.1f%% (of one core).", self, child);
        System.err.println(idleReport);
        idle.close();
    }

    static String idleReport = "";

    private static void prefill(Path path, long bytes) throws Exception {
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            ByteBuffer chunk = ByteBuffer.allocateDirect(1 << 20);
            SplittableRandom rnd = new SplittableRandom(1);
            while (chunk.hasRemaining()) {
                chunk.putLong(rnd.nextLong());
            }
            for (long pos = 0; pos < bytes; pos += chunk.capacity()) {
                chunk.clear();
                while (chunk.hasRemaining()) {
                    ch.write(chunk, pos + chunk.position());
                }
            }
        }
    }

    /** Keeps {@code qd} requests outstanding from this thread for {@code seconds} (after a 1 s warm-up). */
    static Result run(String target, BlockDevice dev, AgentInvoker invoker, IoOp op, int qd, int seconds,
                      long storeBytes) {
        String only = System.getProperty("bench.cases", ""); // e.g. "polls.*randwrite qd1" to profile one case
        String name = target + " " + (op == IoOp.READ ? "randread" : "randwrite") + " qd" + qd;
        if (!only.isEmpty() && !java.util.regex.Pattern.compile(only).matcher(name).find()) {
            return new Result(target, op == IoOp.READ ? "randread" : "randwrite", qd, Double.NaN, Double.NaN,
                    Double.NaN, 0);
        }
        Driver d = new Driver(dev, invoker, op, qd, storeBytes / BLOCK);
        d.runFor(1_000_000_000L);
        d.reset();
        long start = System.nanoTime();
        d.runFor(seconds * 1_000_000_000L);
        long elapsed = System.nanoTime() - start;
        Result r = new Result(target, op == IoOp.READ ? "randread" : "randwrite", qd,
                d.completed * 1e9 / elapsed, d.latency.getValueAtPercentile(50) / 1000.0,
                d.latency.getValueAtPercentile(99) / 1000.0, d.errors);
        System.err.printf(Locale.ROOT, "%-24s %-9s qd%-2d %10.0f IOPS p50 %7.2f us p99 %7.2f us errors %d %s%n",
                r.target, r.op, r.qd, r.iops, r.p50us, r.p99us, r.errors,
                r.errors == 0 ? "" : "first " + IoStatus.name(d.firstError)
                        + (dev instanceof CxlBlockDevice c ? " " + c.failures() : ""));
        return r;
    }

    /** Pre-allocated per-slot buffers and start times; the completion only counts and records. */
    static final class Driver implements IoCompletion {
        final BlockDevice dev;
        final AgentInvoker invoker;
        final IoOp op;
        final int qd;
        final long blocks;
        final ByteBuffer[] buffers;
        final long[] startNs;
        final int[] freeSlots;
        volatile int freeCount;
        final Histogram latency = new Histogram(3_600_000_000_000L, 3);
        final SplittableRandom rnd = new SplittableRandom(42);
        long completed;
        long errors;
        int firstError;
        private final Object lock = new Object();
        private final int[] done;
        private volatile int doneCount;

        Driver(BlockDevice dev, AgentInvoker invoker, IoOp op, int qd, long blocks) {
            this.dev = dev;
            this.invoker = invoker;
            this.op = op;
            this.qd = qd;
            this.blocks = blocks;
            this.buffers = new ByteBuffer[qd];
            this.startNs = new long[qd];
            this.freeSlots = new int[qd];
            this.done = new int[qd];
            for (int i = 0; i < qd; i++) {
                buffers[i] = ByteBuffer.allocateDirect(BLOCK);
                freeSlots[i] = i;
            }
            freeCount = qd;
        }

        void reset() {
            latency.reset();
            completed = 0;
            errors = 0;
        }

        @Override
        public void onComplete(long tag, int status) {
            long end = System.nanoTime();
            int slot = (int) tag;
            latency.recordValue(Math.max(0, end - startNs[slot]));
            if (status != IoStatus.OK) {
                if (errors++ == 0) {
                    firstError = status;
                }
            }
            synchronized (lock) {
                done[doneCount] = slot;
                doneCount = doneCount + 1;
            }
        }

        void runFor(long ns) {
            long deadline = System.nanoTime() + ns;
            int outstanding = qd - freeCount;
            long idleSinceNs = 0;
            while (true) {
                boolean timeUp = System.nanoTime() >= deadline;
                while (!timeUp && freeCount > 0) {
                    int slot = freeSlots[--freeCount];
                    long block = rnd.nextLong(blocks);
                    ByteBuffer b = buffers[slot];
                    b.clear();
                    outstanding++;
                    startNs[slot] = System.nanoTime();
                    dev.submit(op, block * BLOCK, BLOCK, 0, b, slot, this);
                }
                if (timeUp && outstanding == 0) {
                    return;
                }
                if (invoker != null) {
                    invoker.invoke();
                }
                if (doneCount > 0) {
                    idleSinceNs = 0;
                    synchronized (lock) {
                        for (int i = 0; i < doneCount; i++) {
                            freeSlots[freeCount++] = done[i];
                        }
                        completed += doneCount;
                        outstanding -= doneCount;
                        doneCount = 0;
                    }
                } else {
                    // Waiting: when this thread polls the ring itself, spin up to 3 µs (a round trip is 2-3 µs when
                    // both sides run; longer means the handler waits for a core, possibly this one); when a
                    // completion thread in this JVM must run first, hand it the CPU after 2 µs. Then yield.
                    long now = System.nanoTime();
                    if (idleSinceNs == 0) {
                        idleSinceNs = now;
                    }
                    if (now - idleSinceNs > (invoker != null ? POLL_SPIN_NS : 2_000)) {
                        Thread.yield();
                    } else {
                        Thread.onSpinWait();
                    }
                }
            }
        }
    }

    static void print(List<Result> results) {
        System.out.println("Load average at the end: " + loadAverage());
        System.out.println();
        System.out.println("| target | workload | qd | IOPS | p50 µs | p99 µs | errors |");
        System.out.println("|---|---|---|---|---|---|---|");
        for (Result r : results) {
            System.out.printf(Locale.ROOT, "| %s | %s | %d | %,.0f | %.2f | %.2f | %d |%n", r.target, r.op, r.qd,
                    r.iops, r.p50us, r.p99us, r.errors);
        }
        System.out.println();
        System.out.println(idleReport);
        System.out.println();
        System.out.println("| workload | qd | CXL agent / local IOPS | CXL caller-polls / local IOPS |"
                + " added p50 µs (agent) | added p50 µs (caller polls) |");
        System.out.println("|---|---|---|---|---|---|");
        for (Result local : results) {
            if (!local.target.startsWith("local")) {
                continue;
            }
            Result agent = find(results, "CXL, completion agent", local);
            Result polls = find(results, "CXL, caller polls", local);
            System.out.printf(Locale.ROOT, "| %s | %d | %.2f× | %.2f× | %+.2f | %+.2f |%n", local.op, local.qd,
                    agent.iops / local.iops, polls.iops / local.iops, agent.p50us - local.p50us,
                    polls.p50us - local.p50us);
        }
    }

    private static String loadAverage() {
        try {
            return java.nio.file.Files.readString(Path.of("/proc/loadavg")).trim();
        } catch (java.io.IOException e) {
            return "unknown";
        }
    }

    private static Result find(List<Result> results, String target, Result like) {
        for (Result r : results) {
            if (r.target.equals(target) && r.op.equals(like.op) && r.qd == like.qd) {
                return r;
            }
        }
        throw new IllegalStateException("missing " + target + " " + like.op + " qd" + like.qd);
    }
}
