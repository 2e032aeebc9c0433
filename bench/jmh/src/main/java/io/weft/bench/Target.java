package io.weft.bench;

import io.weft.core.io.BlockDevice;
import io.weft.core.mirror.ActivityLog;
import io.weft.core.mirror.MirrorBlockDevice;
import io.weft.core.mirror.MirrorOptions;
import io.weft.core.mirror.WriteIntentBitmap;
import io.weft.core.process.ChildJvm;
import io.weft.core.store.FileBackingStore;
import io.weft.core.store.StoreBlockDevice;
import io.weft.cxl.BackendOptions;
import io.weft.cxl.BlkdevOptions;
import io.weft.cxl.CxlBackend;
import io.weft.cxl.CxlBlockDevice;
import io.weft.cxl.CxlHost;
import io.weft.cxl.CxlOptions;
import io.weft.cxl.CxlRegion;
import io.weft.cxl.layout.RegionGeometry;
import io.weft.cxl.layout.RegionHeader;
import io.weft.rdma.client.PathSpec;
import io.weft.rdma.client.RdmaClientConfig;
import io.weft.rdma.client.RdmaSession;
import io.weft.rdma.verbs.soft.SoftwareProvider;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.agrona.concurrent.AgentInvoker;

/**
 * One device to drive, opened from a target spec, plus everything that must be closed after it (child JVMs,
 * hosts, regions, providers; closed in reverse order).
 *
 * <ul>
 *   <li>{@code local:FILE}: {@link StoreBlockDevice} over FILE in this JVM.</li>
 *   <li>{@code cxl:REGION}: formats REGION (must not exist), backend over {@code --file} and blkdev both in this
 *       JVM; {@code cxl+child:REGION}: the backend runs in a storage child JVM; {@code cxl:REGION#ID}: attaches to a
 *       region someone else formatted and opens backend ID. A {@code +poll} suffix on the kind
 *       ({@code cxl+poll:}, {@code cxl+child+poll:}) or {@code --cxl-poll} makes the driving thread poll the
 *       completion ring (invoker mode) instead of a completion agent thread.</li>
 *   <li>{@code rdma:HOST:PORT}: software-provider session to a running RDMA storage server (device
 *       {@code --device}); {@code rdma+child:HOST:PORT}: starts that server in a child JVM first (port 0 = any).</li>
 *   <li>{@code mirror:FILE1,FILE2[#EXTENTS]}: a {@link MirrorBlockDevice} over two local legs (same size), with a
 *       new write-intent bitmap in a temporary directory and its activity log of EXTENTS extents of 4 MiB (default
 *       {@value ActivityLog#DEFAULT_EXTENTS}): the mirror's write cost, activity log included, against
 *       {@code local:FILE1}. The table label carries EXTENTS.</li>
 * </ul>
 */
final class Target implements AutoCloseable {
    final String spec;
    /** The spec's kind ({@code local}, {@code cxl+child}, ...): the table's target column. */
    final String label;
    final BlockDevice device;
    final AgentInvoker invoker;
    private final List<AutoCloseable> resources;

    private Target(String spec, BlockDevice device, AgentInvoker invoker, List<AutoCloseable> resources) {
        this(spec, spec.substring(0, spec.indexOf(':')), device, invoker, resources);
    }

    private Target(String spec, String label, BlockDevice device, AgentInvoker invoker,
                   List<AutoCloseable> resources) {
        this.spec = spec;
        this.label = label;
        this.device = device;
        this.invoker = invoker;
        this.resources = resources;
    }

    /** Options shared by every target of a run. */
    record Options(Path file, int maxIoSize, int maxQd, boolean cxlPoll, String rdmaDevice) {
    }

    static Target open(String spec, Options o) throws Exception {
        List<AutoCloseable> resources = new ArrayList<>();
        try {
            int colon = spec.indexOf(':');
            if (colon < 0) {
                throw new IllegalArgumentException("target needs KIND:WHERE: " + spec);
            }
            String kind = spec.substring(0, colon);
            String where = spec.substring(colon + 1);
            boolean poll = o.cxlPoll() || kind.endsWith("+poll");
            if (kind.endsWith("+poll")) {
                kind = kind.substring(0, kind.length() - "+poll".length());
            }
            switch (kind) {
                case "local": {
                    StoreBlockDevice d = new StoreBlockDevice(FileBackingStore.open(Path.of(where), false));
                    resources.add(d);
                    return new Target(spec, d, null, resources);
                }
                case "cxl":
                case "cxl+child":
                    return openCxl(spec, kind.equals("cxl+child"), poll, where, o, resources);
                case "rdma":
                case "rdma+child":
                    return openRdma(spec, kind.equals("rdma+child"), where, o, resources);
                case "mirror":
                    return openMirror(spec, where, o, resources);
                default:
                    throw new IllegalArgumentException("unknown target kind '" + kind + "' in " + spec);
            }
        } catch (Exception | Error e) {
            closeAll(resources);
            throw e;
        }
    }

    private static Target openMirror(String spec, String where, Options o, List<AutoCloseable> resources)
            throws IOException {
        int hash = where.indexOf('#');
        int extents = hash < 0 ? ActivityLog.DEFAULT_EXTENTS : Integer.parseInt(where.substring(hash + 1));
        String[] files = (hash < 0 ? where : where.substring(0, hash)).split(",");
        if (files.length != 2) {
            throw new IllegalArgumentException("mirror:FILE1,FILE2[#EXTENTS]: " + spec);
        }
        List<BlockDevice> legs = new ArrayList<>();
        for (String f : files) {
            legs.add(new StoreBlockDevice(FileBackingStore.open(Path.of(f), false)));
        }
        long size = Math.min(legs.get(0).info().size(), legs.get(1).info().size());
        Path dir = Files.createTempDirectory("loadgen-mirror");
        WriteIntentBitmap bitmap = WriteIntentBitmap.create(dir.resolve("bench.wib"), size,
                WriteIntentBitmap.DEFAULT_REGION_SIZE);
        MirrorBlockDevice mirror = new MirrorBlockDevice(legs, bitmap, MirrorOptions.defaults()
                .withMaxInFlight(Math.max(64, o.maxQd() * 2)).withResyncBytesPerSecond(0)
                .withActivityLog(extents, ActivityLog.DEFAULT_EXTENT_SIZE));
        resources.add(() -> {
            Files.deleteIfExists(dir.resolve("bench.wib"));
            Files.deleteIfExists(dir);
        });
        resources.add(mirror);
        resources.add(() -> System.err.println(spec + ": " + mirror.activityLog())); // closed first: before close
        return new Target(spec, "mirror (activity log " + extents + " × 4 MiB)", mirror, null, resources);
    }

    /** A region whose data slots take the largest request of the run, 64 entries per ring (qd up to 64). */
    static RegionGeometry geometry(int maxIoSize, int maxQd) {
        int depth = Math.max(64, Integer.highestOneBit(Math.max(1, maxQd - 1)) << 1);
        int slot = Math.max(RegionGeometry.PAGE, (maxIoSize + RegionGeometry.PAGE - 1) & -RegionGeometry.PAGE);
        return new RegionGeometry(4, 4, 4, 4, depth, slot);
    }

    private static Target openCxl(String spec, boolean child, boolean poll, String where, Options o,
                                  List<AutoCloseable> res)
            throws Exception {
        int hash = where.indexOf('#');
        CxlRegion region;
        int backendId;
        CxlHost host;
        if (hash >= 0) {
            region = CxlRegion.attach(Path.of(where.substring(0, hash)));
            res.add(region);
            host = CxlHost.register(region, ProcessHandle.current().pid(), "loadgen", CxlOptions.defaults());
            res.add(host);
            backendId = Integer.parseInt(where.substring(hash + 1));
        } else {
            Path regionPath = Path.of(where);
            region = CxlRegion.format(regionPath, geometry(o.maxIoSize(), o.maxQd()), RegionHeader.FLAG_ENTRY_CRC);
            res.add(() -> Files.deleteIfExists(regionPath));
            res.add(region);
            host = CxlHost.register(region, 1, "loadgen-client", CxlOptions.defaults());
            res.add(host);
            if (child) {
                String ready = startStorageChild(res, "serve-cxl", where, o.file().toString());
                backendId = Integer.parseInt(ready.replaceAll(".*backend=(\\d+).*", "$1"));
            } else {
                StoreBlockDevice store = new StoreBlockDevice(FileBackingStore.open(o.file(), false));
                res.add(store);
                CxlBackend backend = host.createBackend(store, o.file().toString(),
                        BackendOptions.defaults().withChannels(1));
                res.add(backend);
                backendId = backend.id();
            }
        }
        CxlBlockDevice dev = host.openBlkdev(backendId, new BlkdevOptions(1, poll));
        res.add(dev);
        return new Target(spec, dev, dev.invoker(), res);
    }

    /**
     * Starts a storage child JVM running {@code LoadGen serve-...} with this JVM's class path and returns its READY
     * line. It serves until its stdin closes (the resource added to {@code res} closes it, then kills it after 10 s);
     * its stderr goes to a log file under the temp directory.
     */
    private static String startStorageChild(List<AutoCloseable> res, String... args) throws IOException {
        Path log = Path.of(System.getProperty("java.io.tmpdir"),
                "weft-loadgen-" + args[0] + "-" + ProcessHandle.current().pid() + "-" + System.nanoTime() + ".log");
        ChildJvm storage = ChildJvm.builder(LoadGen.class).jvmOptions("-Xmx512m").args(args).errorsTo(log).start();
        res.add(() -> storage.stopByClosingInput(Duration.ofSeconds(10)));
        try {
            return storage.awaitLine("READY", Duration.ofSeconds(60));
        } catch (IllegalStateException e) {
            throw new IOException("storage child JVM did not print READY; see " + log + ": " + e.getMessage(), e);
        }
    }

    private static Target openRdma(String spec, boolean child, String where, Options o, List<AutoCloseable> res)
            throws Exception {
        int colon = where.lastIndexOf(':');
        String hostName = where.substring(0, colon);
        int port = Integer.parseInt(where.substring(colon + 1));
        String capability = System.getenv(LoadGen.RDMA_CAPABILITY_ENV);
        if (child) {
            String ready = startStorageChild(res, "serve-rdma", o.file().toString(), hostName + ":" + port,
                    Integer.toString(o.maxIoSize()), o.rdmaDevice());
            port = Integer.parseInt(ready.replaceAll(".*port=(\\d+).*", "$1"));
            capability = ready.replaceAll(".*capability=(\\S+).*", "$1");
        } else if (capability == null) {
            throw new IllegalArgumentException("an rdma: target needs the server's grant in "
                    + LoadGen.RDMA_CAPABILITY_ENV + " (serve-rdma prints it on its READY line)");
        }
        io.weft.rdma.protocol.Grant grant = io.weft.rdma.protocol.Grant.decode(LoadGen.RDMA_CLIENT,
                LoadGen.RDMA_CLIENT, capability);
        SoftwareProvider provider = new SoftwareProvider();
        res.add(provider);
        RdmaClientConfig config = RdmaClientConfig.DEFAULTS.withMaxIoSize(Math.max(o.maxIoSize(), 4096))
                .withQueueDepth(Math.max(RdmaClientConfig.DEFAULTS.queueDepth(), o.maxQd()));
        RdmaSession session = RdmaSession.open(provider, "loadgen-" + ProcessHandle.current().pid(), o.rdmaDevice(),
                grant, List.of(PathSpec.to(new InetSocketAddress(hostName, port))), config);
        res.add(session);
        return new Target(spec, session.device(), null, res);
    }

    @Override
    public void close() {
        closeAll(resources);
    }

    private static void closeAll(List<AutoCloseable> resources) {
        for (int i = resources.size() - 1; i >= 0; i--) {
            try {
                resources.get(i).close();
            } catch (Exception e) {
                System.err.println("closing " + resources.get(i) + ": " + e);
            }
        }
        resources.clear();
    }

    /** Fails early with the reason when a spec names a file that is not there. */
    static void requireFile(Path file) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new IOException("no such file: " + file);
        }
    }
}
