package io.weft.node.cli;

import io.weft.core.process.ChildJvm;
import io.weft.cxl.CxlRegion;
import io.weft.cxl.layout.RegionGeometry;
import io.weft.cxl.layout.RegionHeader;
import io.weft.node.cli.client.CliException;
import io.weft.node.cli.client.DrillWatcher;
import io.weft.node.cli.client.NodeApi;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.LockSupport;
import java.util.stream.Stream;

/**
 * {@code weft demo}'s local cluster: storage nodes {@code a} and {@code b} and client node {@code c}, each a real
 * {@code weft node} in a child JVM started through {@link ChildJvm}, on loopback ports, with one config file they
 * share and (for the CXL transport) a region under {@code /dev/shm}. It plans the ports and data dirs, starts a node
 * and waits until it says Up, and stops the whole cluster once; {@link DemoCommand} drives it and prints.
 *
 * <p>The nodes are stopped by the pids they report ({@code GET /weft/node}), not only as this JVM's children: a kill
 * drill restarts node a as a child of node c. The nodes run in a session of their own ({@code setsid}) so that a
 * Ctrl-C in the terminal reaches the demo only, which then stops them with one SIGTERM each (a node that gets two
 * signals exits without flushing).
 */
final class LocalCluster {
    private static final Duration START_TIMEOUT = Duration.ofSeconds(180);
    private static final Duration STOP_TIMEOUT = Duration.ofSeconds(30);

    /** The three nodes: name, roles, ports and data dir. {@code nbdPort} 0: no NBD over TCP. */
    record NodePlan(String name, String roles, int clusterPort, int httpPort, int nbdPort, Path dataDir) {
        String http() {
            return "127.0.0.1:" + httpPort;
        }

        String cluster() {
            return "127.0.0.1:" + clusterPort;
        }

        Path socket() {
            return dataDir.resolve("nbd.sock");
        }
    }

    /** The cluster could not start (a node exited or stayed down); the message says where to look. */
    static final class StartFailure extends RuntimeException {
        StartFailure(String message) {
            super(message);
        }
    }

    private final Path dir;
    private final boolean temporaryDir;
    private final int basePort;
    private final Object lock = new Object();
    private final List<ChildJvm> children = new ArrayList<>(); // guarded by lock
    private boolean stopping; // guarded by lock
    private final Map<String, NodePlan> plans = new LinkedHashMap<>();
    /** Every node pid seen (node a's changes when a drill restarts it), in case a node does not answer at stop. */
    private final Set<Long> nodePids = ConcurrentHashMap.newKeySet();
    private final AtomicBoolean stopped = new AtomicBoolean();
    private volatile Path region;
    private Path config;

    /**
     * @param dir          data dirs, logs and the config file go here
     * @param temporaryDir remove {@code dir} when the cluster stops
     * @param basePort     ports from here on (7 of them), or free ports when negative
     */
    LocalCluster(Path dir, boolean temporaryDir, int basePort) {
        this.dir = dir;
        this.temporaryDir = temporaryDir;
        this.basePort = basePort;
    }

    /**
     * Plans the nodes, formats the CXL region when {@code cxl} (and says so on {@code out}), and writes the nodes'
     * config file.
     */
    void prepare(boolean cxl, PrintWriter out) throws IOException {
        plan(dir, basePort).forEach(n -> plans.put(n.name(), n));
        config = dir.resolve("demo.conf");
        if (cxl) {
            region = Path.of("/dev/shm", "weft-demo-" + ProcessHandle.current().pid() + "-"
                    + Long.toHexString(ThreadLocalRandom.current().nextLong() & Long.MAX_VALUE));
            // the defaults of `weft cxl format`: 16 channels of 128 x 128 KiB, sparse on tmpfs
            CxlRegion.format(region, new RegionGeometry(16, 16, 64, 16, 128, 128 << 10),
                    RegionHeader.FLAG_ENTRY_CRC).close();
            out.println("formatted CXL region " + region + " (shared memory for nodes a, b and c)");
        }
        Files.writeString(config, config(region, List.copyOf(plans.values())), StandardCharsets.UTF_8);
    }

    Path dir() {
        return dir;
    }

    boolean temporaryDir() {
        return temporaryDir;
    }

    /** The CXL region the nodes share, if the transport is CXL. */
    Optional<Path> region() {
        return Optional.ofNullable(region);
    }

    NodePlan node(String name) {
        return plans.get(name);
    }

    /** Where node {@code name}'s output goes. */
    Path log(String name) {
        return dir.resolve(name + ".log");
    }

    /** Remembers a pid a node reported, so that {@link #stop} ends it even when the node no longer answers. */
    void rememberPid(long pid) {
        nodePids.add(pid);
    }

    /** Ports and data dirs of a, b and c: from {@code basePort} on, or free ports when it is negative. */
    static List<NodePlan> plan(Path dir, int basePort) throws IOException {
        int[] ports = basePort > 0 ? new int[] {basePort, basePort + 1, basePort + 2, basePort + 3, basePort + 4,
            basePort + 5, basePort + 6} : freePorts(7);
        return List.of(
                new NodePlan("a", "storage", ports[0], ports[3], 0, dir.resolve("a")),
                new NodePlan("b", "storage", ports[1], ports[4], 0, dir.resolve("b")),
                new NodePlan("c", "client", ports[2], ports[5], ports[6], dir.resolve("c")));
    }

    private static int[] freePorts(int n) throws IOException {
        List<ServerSocket> held = new ArrayList<>();
        try {
            int[] ports = new int[n];
            for (int i = 0; i < n; i++) {
                ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
                held.add(s);
                ports[i] = s.getLocalPort();
            }
            return ports;
        } finally {
            for (ServerSocket s : held) {
                s.close();
            }
        }
    }

    /**
     * The nodes' shared settings. Every node lists the same seeds, client node c first: the first seed is the one
     * that forms the cluster, and c is the node the drills never kill (a killed first seed rejoins the running
     * cluster too, but only after asking the others). c starts first; it waits {@code seed-node-timeout} for the
     * other seeds before it forms the cluster, shortened here.
     */
    static String config(Path region, List<NodePlan> nodes) {
        StringBuilder s = new StringBuilder("# written by weft demo\n");
        s.append("weft.volumes = []\n");
        List<NodePlan> seeds = new ArrayList<>(nodes);
        seeds.sort(Comparator.comparing((NodePlan n) -> !n.roles().equals("client")));
        s.append("weft.cluster.seed-nodes = [");
        for (int i = 0; i < seeds.size(); i++) {
            s.append(i == 0 ? "" : ", ").append('"').append(seeds.get(i).cluster()).append('"');
        }
        s.append("]\n");
        s.append("weft.cluster.seed-node-timeout = 2s\n");
        s.append("weft.rdma.provider = software\n");
        if (region != null) {
            s.append("weft.cxl.regions = [\"").append(region).append("\"]\n");
        }
        return s.toString();
    }

    /** {@code weft node ...} for one node: the launcher's JVM flags and this JVM's class path (made absolute). */
    static ChildJvm.Builder nodeJvm(NodePlan n, Path config) {
        return ChildJvm.builder(WeftMain.class).withoutLauncherFlags()
                .jvmOptions(jvmFlags(Runtime.version().feature(), System.getenv("WEFT_JAVA_OPTS")))
                .args("node", "--config", config.toString(), "--name", n.name(), "--roles", n.roles(),
                        "--data-dir", n.dataDir().toString(), "--cluster-port", Integer.toString(n.clusterPort()),
                        "--http-listen", n.http(), "--nbd-listen", n.nbdPort() > 0 ? "127.0.0.1:" + n.nbdPort() : "off",
                        "--nbd-unix", n.socket().toString());
    }

    /** {@code java FLAGS -cp CLASSPATH io.weft.node.cli.WeftMain node ...} for one node. */
    static List<String> nodeCommand(NodePlan n, Path config) {
        return nodeJvm(n, config).command();
    }

    /** The flags the {@code ./weft} launcher gives the JVM, a modest heap, then {@code WEFT_JAVA_OPTS}. */
    static List<String> jvmFlags(int javaFeature, String weftJavaOpts) {
        List<String> flags = new ArrayList<>(ChildJvm.launcherFlags(javaFeature));
        flags.add("-Xmx512m");
        flags.addAll(ChildJvm.splitOptions(weftJavaOpts));
        return flags;
    }

    /**
     * Starts node {@code name} in its own session (the terminal's Ctrl-C goes to the demo only), its output appended
     * to {@link #log}, its input from /dev/null.
     */
    ChildJvm start(String name) throws IOException {
        NodePlan n = plans.get(name);
        Files.createDirectories(n.dataDir());
        ChildJvm.Builder jvm = nodeJvm(n, config).newSession().directory(n.dataDir()).logTo(log(name), true)
                .inputFromNull();
        synchronized (lock) {
            if (stopping) {
                throw new StartFailure("stopping");
            }
            ChildJvm p = jvm.start();
            children.add(p);
            return p;
        }
    }

    /** Waits until node {@code name} (started as {@code p}) reports status Up. */
    void awaitUp(String name, ChildJvm p) {
        NodeApi api = probe(plans.get(name));
        long deadline = System.nanoTime() + START_TIMEOUT.toNanos();
        while (true) {
            if (!p.isAlive()) {
                throw new StartFailure("node " + name + " exited with " + p.exitValue()
                        + " during start-up; see " + log(name));
            }
            try {
                if ("Up".equals(api.get("/weft/node").path("status").asText())) {
                    return;
                }
            } catch (CliException notYet) {
                // not listening yet
            }
            if (System.nanoTime() - deadline > 0) {
                throw new StartFailure("node " + name + " is not up after " + START_TIMEOUT.toSeconds()
                        + " s; see " + log(name));
            }
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(DrillWatcher.POLL_MILLIS));
            if (Thread.interrupted()) {
                throw new StartFailure("interrupted");
            }
        }
    }

    /** A short-timeout API for probing whether a node is up. */
    static NodeApi probe(NodePlan n) {
        return new NodeApi(n.http(), null, Duration.ofSeconds(5));
    }

    /**
     * Stops every node once: SIGTERM to the pid each reports (node a may have been restarted by node c), or to the
     * child this JVM started when a node does not answer; waits for them, kills what is left; removes the region and
     * the temporary dir. Messages go to {@code say}.
     */
    void stop(PrintWriter say) {
        if (!stopped.compareAndSet(false, true)) {
            return;
        }
        List<ChildJvm> started;
        synchronized (lock) {
            stopping = true;
            started = new ArrayList<>(children);
        }
        List<ProcessHandle> targets = new ArrayList<>();
        for (NodePlan n : plans.values()) {
            try {
                long pid = new NodeApi(n.http(), null, Duration.ofSeconds(2)).get("/weft/node").path("pid")
                        .asLong(-1);
                ProcessHandle.of(pid).filter(LocalCluster::isWeftNode).ifPresent(targets::add);
            } catch (CliException notAnswering) {
                // stopped already, or never came up: its child process (if any) is stopped below
            }
        }
        for (long pid : nodePids) {
            ProcessHandle.of(pid).filter(LocalCluster::isWeftNode)
                    .filter(h -> targets.stream().noneMatch(t -> t.pid() == pid)).ifPresent(targets::add);
        }
        for (ChildJvm p : started) {
            if (p.isAlive() && targets.stream().noneMatch(h -> h.pid() == p.pid())) {
                targets.add(p.handle());
            }
        }
        if (!targets.isEmpty()) {
            say.println("weft demo: stopping " + targets.size() + " node(s) (SIGTERM to pid "
                    + String.join(", ", targets.stream().map(h -> Long.toString(h.pid())).toList()) + ") ...");
            say.flush();
        }
        targets.forEach(ProcessHandle::destroy);
        long deadline = System.nanoTime() + STOP_TIMEOUT.toNanos();
        for (ProcessHandle h : targets) {
            try {
                h.onExit().get(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
            } catch (Exception stillRunning) {
                say.println("weft demo: pid " + h.pid() + " did not stop within " + STOP_TIMEOUT.toSeconds()
                        + " s; killing it");
                h.destroyForcibly();
            }
        }
        try {
            if (region != null) {
                Files.deleteIfExists(region);
            }
            if (temporaryDir && dir != null) {
                deleteTree(dir);
            }
        } catch (IOException | UncheckedIOException e) {
            say.println("weft demo: could not remove everything: " + e.getMessage());
        }
        say.println("weft demo: stopped" + (temporaryDir ? "" : "; data and logs kept in " + dir));
        say.flush();
    }

    /**
     * Guards the SIGTERMs against a pid reused by another program since the node reported it. Reads
     * /proc/PID/cmdline itself: {@link ProcessHandle.Info#commandLine()} stops after a page, before the main class
     * that follows our long class path.
     */
    static boolean isWeftNode(ProcessHandle h) {
        if (!h.isAlive()) {
            return false;
        }
        try {
            String cmdline = new String(Files.readAllBytes(Path.of("/proc", Long.toString(h.pid()), "cmdline")),
                    StandardCharsets.UTF_8);
            return cmdline.contains(WeftMain.class.getName());
        } catch (IOException | UncheckedIOException e) {
            return true;   // no /proc to ask: the pid came from the node a moment ago
        }
    }

    private static void deleteTree(Path root) throws IOException {
        if (!Files.exists(root)) {
            return;
        }
        try (Stream<Path> paths = Files.walk(root)) {
            for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }

    /** The last lines of every node's log, after a failure. */
    void printLogTails(PrintWriter err) {
        for (String name : plans.keySet()) {
            Path log = log(name);
            try {
                if (Files.exists(log)) {
                    List<String> lines = Files.readAllLines(log, StandardCharsets.UTF_8);
                    err.println("--- last lines of " + log + ":");
                    lines.subList(Math.max(0, lines.size() - 8), lines.size()).forEach(err::println);
                }
            } catch (IOException | UncheckedIOException e) {
                err.println("--- " + log + ": " + e.getMessage());
            }
        }
        err.flush();
    }
}
