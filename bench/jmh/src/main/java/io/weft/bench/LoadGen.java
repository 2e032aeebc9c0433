package io.weft.bench;

import io.weft.core.io.IoStatus;
import io.weft.core.store.FileBackingStore;
import io.weft.core.store.StoreBlockDevice;
import io.weft.cxl.BackendOptions;
import io.weft.cxl.CxlBackend;
import io.weft.cxl.CxlHost;
import io.weft.cxl.CxlOptions;
import io.weft.cxl.CxlRegion;
import io.weft.core.io.BlockDevice;
import io.weft.rdma.server.RdmaServer;
import io.weft.rdma.server.RdmaServerConfig;
import io.weft.rdma.verbs.soft.SoftwareProvider;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Closed-loop load generator for any Weft {@link BlockDevice}: {@code qd} requests in flight from one thread,
 * random offsets aligned to the block size, HdrHistogram latency. Every target of one invocation runs every case
 * in the same process, cases interleaved across targets and passes, so ratios against the first target come from
 * one run on one machine. See {@link Target} for the target specs and docs/benchmarks-java.md for usage.
 */
public final class LoadGen {
    private static final String USAGE = String.join("\n",
            "usage: LoadGen [options] TARGET...",
            "  TARGET: local:FILE | cxl:REGION | cxl+child:REGION | cxl:REGION#BACKEND_ID | rdma:HOST:PORT"
                    + " | rdma+child:HOST:PORT | mirror:FILE1,FILE2[#EXTENTS]"
                    + "   (cxl kinds take a +poll suffix: cxl+poll:, cxl+child+poll:)",
            "  --file FILE      store served by cxl/cxl+child/rdma+child (default: the first local: target's file)",
            "  --rw LIST        randread,randwrite,mixed (default randread)",
            "  --mix PCT        reads in percent for mixed (default 70)",
            "  --bs LIST        block sizes, 4k..1m (default 4k)",
            "  --qd LIST        queue depths (default 1,32)",
            "  --runtime S      measured seconds per run (default 5)",
            "  --warmup S       unmeasured seconds before each run (default 1)",
            "  --passes N       interleaved passes; the table shows the median (default 1)",
            "  --cxl-poll       CXL: the driving thread polls completions (no completion agent)",
            "  --device NAME    RDMA device name (default vol0)",
            "  --no-header      rows only",
            "  LoadGen serve-cxl REGION FILE | serve-rdma FILE HOST:PORT MAX_IO DEVICE   (storage child JVMs)");

    private LoadGen() {
    }

    record Case(String rw, int readPercent, int blockSize, int qd) {
        String name() {
            return rw + " " + size(blockSize) + " qd" + qd;
        }
    }

    record Result(String target, Case c, double iops, double mibps, double p50us, double p99us, double p999us,
                  long errors, String firstError) {
    }

    public static void main(String[] args) throws Exception {
        if (args.length > 0 && args[0].equals("serve-cxl")) {
            serveCxl(Path.of(args[1]), Path.of(args[2]));
            return;
        }
        if (args.length > 0 && args[0].equals("serve-rdma")) {
            serveRdma(Path.of(args[1]), args[2], Integer.parseInt(args[3]), args[4]);
            return;
        }
        Path file = null;
        List<String> rws = List.of("randread");
        int mix = 70;
        List<Integer> sizes = List.of(4096);
        List<Integer> depths = List.of(1, 32);
        double runtime = 5;
        double warmup = 1;
        int passes = 1;
        boolean cxlPoll = false;
        boolean header = true;
        String device = "vol0";
        List<String> targets = new ArrayList<>();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            switch (a) {
                case "--file": file = Path.of(args[++i]); break;
                case "--rw": rws = Arrays.asList(args[++i].split(",")); break;
                case "--mix": mix = Integer.parseInt(args[++i]); break;
                case "--bs": sizes = Arrays.stream(args[++i].split(",")).map(LoadGen::parseSize).toList(); break;
                case "--qd": depths = Arrays.stream(args[++i].split(",")).map(Integer::valueOf).toList(); break;
                case "--runtime": runtime = Double.parseDouble(args[++i]); break;
                case "--warmup": warmup = Double.parseDouble(args[++i]); break;
                case "--passes": passes = Integer.parseInt(args[++i]); break;
                case "--cxl-poll": cxlPoll = true; break;
                case "--device": device = args[++i]; break;
                case "--no-header": header = false; break;
                case "-h": case "--help": System.out.println(USAGE); return;
                default:
                    if (a.startsWith("--")) {
                        System.err.println("unknown option " + a + "\n" + USAGE);
                        System.exit(2);
                    }
                    targets.add(a);
            }
        }
        if (targets.isEmpty()) {
            System.err.println(USAGE);
            System.exit(2);
        }
        if (file == null) {
            for (String t : targets) {
                if (t.startsWith("local:")) {
                    file = Path.of(t.substring(6));
                    break;
                }
            }
        }
        List<Case> cases = new ArrayList<>();
        for (String rw : rws) {
            int reads = switch (rw) {
                case "randread" -> 100;
                case "randwrite" -> 0;
                case "mixed" -> mix;
                default -> throw new IllegalArgumentException("--rw takes randread, randwrite or mixed: " + rw);
            };
            for (int bs : sizes) {
                for (int qd : depths) {
                    cases.add(new Case(rw.equals("mixed") ? "mixed" + mix : rw, reads, bs, qd));
                }
            }
        }
        int maxIo = sizes.stream().mapToInt(Integer::intValue).max().orElseThrow();
        int maxQd = depths.stream().mapToInt(Integer::intValue).max().orElseThrow();
        Target.Options options = new Target.Options(file, maxIo, maxQd, cxlPoll, device);
        if (file != null) {
            Target.requireFile(file);
        }
        List<Target> open = new ArrayList<>();
        // results[target][case][pass]
        Result[][][] results = new Result[targets.size()][cases.size()][passes];
        try {
            for (String spec : targets) {
                open.add(Target.open(spec, options));
            }
            for (int pass = 0; pass < passes; pass++) {
                for (int ci = 0; ci < cases.size(); ci++) {
                    for (int k = 0; k < open.size(); k++) {
                        int ti = (k + pass) % open.size(); // rotate who goes first
                        Result r = run(open.get(ti), cases.get(ci), warmup, runtime);
                        results[ti][ci][pass] = r;
                        System.err.println("pass " + (pass + 1) + ": " + row(r, Double.NaN));
                    }
                }
            }
        } finally {
            for (int i = open.size() - 1; i >= 0; i--) {
                open.get(i).close();
            }
        }
        System.out.println("Load average at the end: " + loadAverage());
        System.out.println();
        if (header) {
            System.out.println("Targets: " + String.join(" ", targets));
            System.out.println();
            System.out.println("| target | workload | IOPS | MiB/s | p50 µs | p99 µs | p99.9 µs | errors | IOPS × "
                    + open.get(0).label + " |");
            System.out.println("|---|---|---|---|---|---|---|---|---|");
        }
        for (int ci = 0; ci < cases.size(); ci++) {
            for (int ti = 0; ti < targets.size(); ti++) {
                double[] ratios = new double[passes];
                for (int p = 0; p < passes; p++) {
                    ratios[p] = results[ti][ci][p].iops() / results[0][ci][p].iops();
                }
                System.out.println(row(median(results[ti][ci]), median(ratios)));
            }
        }
    }

    static Result run(Target target, Case c, double warmupSeconds, double runtimeSeconds) {
        ClosedLoop loop = new ClosedLoop(target.device, target.invoker, c.qd(), c.blockSize(), c.readPercent());
        loop.runFor((long) (warmupSeconds * 1e9));
        loop.reset();
        long start = System.nanoTime();
        loop.runFor((long) (runtimeSeconds * 1e9));
        double elapsed = (System.nanoTime() - start) / 1e9;
        double iops = loop.completed / elapsed;
        return new Result(target.label, c, iops, iops * c.blockSize() / (1 << 20),
                loop.latency.getValueAtPercentile(50) / 1e3, loop.latency.getValueAtPercentile(99) / 1e3,
                loop.latency.getValueAtPercentile(99.9) / 1e3, loop.errors,
                loop.errors == 0 ? "" : IoStatus.name(loop.firstError));
    }

    private static Result median(Result[] passes) {
        Result[] sorted = passes.clone();
        Arrays.sort(sorted, (a, b) -> Double.compare(a.iops(), b.iops()));
        return sorted[sorted.length / 2];
    }

    private static double median(double[] values) {
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        return sorted[sorted.length / 2];
    }

    static String row(Result r, double ratio) {
        return String.format(Locale.ROOT, "| %s | %s | %,.0f | %,.1f | %.1f | %.1f | %.1f | %d%s | %s |", r.target(),
                r.c().name(), r.iops(), r.mibps(), r.p50us(), r.p99us(), r.p999us(), r.errors(),
                r.errors() == 0 ? "" : " (first " + r.firstError() + ")",
                Double.isNaN(ratio) ? "" : String.format(Locale.ROOT, "%.2f×", ratio));
    }

    static int parseSize(String s) {
        String v = s.trim().toLowerCase(Locale.ROOT);
        int mult = 1;
        if (v.endsWith("k")) {
            mult = 1 << 10;
            v = v.substring(0, v.length() - 1);
        } else if (v.endsWith("m")) {
            mult = 1 << 20;
            v = v.substring(0, v.length() - 1);
        }
        int n = Integer.parseInt(v) * mult;
        if (n < 4096 || n > (1 << 20) || n % 4096 != 0) {
            throw new IllegalArgumentException("block size must be a multiple of 4k in 4k..1m: " + s);
        }
        return n;
    }

    static String size(int bytes) {
        return bytes >= (1 << 20) && bytes % (1 << 20) == 0 ? (bytes >> 20) + "m" : (bytes >> 10) + "k";
    }

    private static String loadAverage() {
        try {
            return Files.readString(Path.of("/proc/loadavg")).trim();
        } catch (IOException e) {
            return "unknown";
        }
    }

    /** Storage child for {@code cxl+child:}: attach the region, serve FILE as one backend until stdin closes. */
    private static void serveCxl(Path region, Path file) throws Exception {
        try (CxlRegion r = CxlRegion.attach(region);
             CxlHost host = CxlHost.register(r, 2, "loadgen-storage", CxlOptions.defaults());
             StoreBlockDevice store = new StoreBlockDevice(FileBackingStore.open(file, false))) {
            CxlBackend backend = host.createBackend(store, file.toString(), BackendOptions.defaults().withChannels(1));
            System.out.println("READY backend=" + backend.id());
            System.out.flush();
            waitForStdinClose();
            backend.close();
        }
    }

    /** The environment variable that gives an {@code rdma:} target (and serve-rdma) the load generator's grant. */
    static final String RDMA_CAPABILITY_ENV = "WEFT_RDMA_CAPABILITY";
    static final String RDMA_CLIENT = "loadgen";

    /** Storage child for {@code rdma+child:}: a software-provider RDMA server for FILE until stdin closes. */
    private static void serveRdma(Path file, String listen, int maxIo, String device) throws Exception {
        int colon = listen.lastIndexOf(':');
        InetSocketAddress address = new InetSocketAddress(listen.substring(0, colon),
                Integer.parseInt(listen.substring(colon + 1)));
        RdmaServerConfig d = RdmaServerConfig.DEFAULTS;
        RdmaServerConfig config = new RdmaServerConfig(d.maxQueueDepth(), Math.max(maxIo, d.maxIoSize()), 1,
                d.heartbeatTimeout(), d.handshakeTimeout(), d.maxUnauthenticatedPerAddress(), d.maxSessionsPerClient(),
                d.maxMemoryPerClient());
        // The load generator's grant: WEFT_RDMA_CAPABILITY if set (an external client knows it), else a fresh one
        // that the READY line hands to the parent.
        String given = System.getenv(RDMA_CAPABILITY_ENV);
        io.weft.rdma.protocol.Grant grant = given != null
                ? io.weft.rdma.protocol.Grant.decode(RDMA_CLIENT, RDMA_CLIENT, given)
                : io.weft.rdma.protocol.Grant.issue(RDMA_CLIENT, RDMA_CLIENT);
        try (StoreBlockDevice store = new StoreBlockDevice(FileBackingStore.open(file, false));
             SoftwareProvider provider = new SoftwareProvider();
             RdmaServer server = RdmaServer.start(provider, config,
                     Map.of(device, new io.weft.rdma.server.ServedDevice(store, grant)), List.of(address))) {
            System.out.println("READY port=" + server.listenAddresses().get(0).getPort() + " capability="
                    + grant.encodedCapability());
            System.out.flush();
            waitForStdinClose();
        }
    }

    private static void waitForStdinClose() throws IOException {
        InputStream in = System.in;
        byte[] sink = new byte[256];
        while (in.read(sink) >= 0) {
            // the parent closes our stdin to stop us
        }
    }
}
