package io.weft.node.cli;

import com.fasterxml.jackson.databind.JsonNode;
import io.weft.cxl.CxlRegion;
import io.weft.cxl.layout.RegionGeometry;
import io.weft.cxl.layout.RegionHeader;
import io.weft.node.cli.client.CliException;
import io.weft.node.cli.client.DrillCommand;
import io.weft.node.cli.client.DrillWatcher;
import io.weft.node.cli.client.NodeApi;
import java.io.File;
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
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Supplier;
import java.util.stream.Stream;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code weft demo}: a local three-node cluster in child JVMs (storage nodes {@code a} and {@code b}, client node
 * {@code c}), a mirrored device {@code demo0} on c with a leg on a and one on b, exported over NBD, and a short
 * drill that kills node a under IO (and restarts it). Then it waits for Ctrl-C and stops every node.
 *
 * <p>The nodes are stopped by the pids they report ({@code GET /weft/node}), not only as this JVM's children: the
 * drill restarts node a as a child of node c. The nodes run in a session of their own ({@code setsid}) so that a
 * Ctrl-C in the terminal reaches the demo only, which then stops them with one SIGTERM each (a node that gets two
 * signals exits without flushing).
 */
@Command(name = "demo", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Starts a local three-node cluster (child JVMs): storage nodes a and b, client node c. Maps "
                + "a mirrored device demo0 on c (one leg on a, one on b) over the CXL transport (a region under "
                + "/dev/shm) or software RDMA, exports it over NBD, runs a short drill (kill -9 of node a under IO, "
                + "then its restart), prints the report and keeps the cluster running until Ctrl-C.", ""},
        footer = {"", "Exit codes: 0 the drill found every acknowledged write intact, 1 it did not (or the demo "
                + "could not start), 2 invalid usage."})
public final class DemoCommand implements Callable<Integer> {
    static final String DEVICE = "demo0";
    static final String VOLUME = "demo0.img";
    static final String VOLUME_SIZE = "64MiB";
    static final String WORKING_SET = "32MiB";
    /** The stall the demo promises: IO goes on within a second of a storage node's death. */
    static final long STALL_BOUND_MILLIS = 1000;
    private static final Duration START_TIMEOUT = Duration.ofSeconds(180);
    private static final Duration STEP_TIMEOUT = Duration.ofSeconds(60);
    private static final Duration STOP_TIMEOUT = Duration.ofSeconds(30);

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Option(names = "--transport", paramLabel = "cxl|rdma", defaultValue = "cxl",
            description = "Transport of the legs: cxl (a shared-memory region in /dev/shm) or rdma (the software "
                    + "provider over loopback TCP) (default ${DEFAULT-VALUE}).")
    String transport;

    @Option(names = "--dir", paramLabel = "DIR",
            description = "Keep data dirs and logs here (kept afterwards); default: a temporary directory, removed "
                    + "at the end.")
    Path dir;

    @Option(names = "--no-wait", description = "Stop the cluster and exit after the drill report (for scripts).")
    boolean noWait;

    @Option(names = "--no-drill", description = "Only start the cluster and map the device; run drills yourself.")
    boolean noDrill;

    @Option(names = "--base-port", paramLabel = "P",
            description = "Use ports P..P+6 (cluster a, b, c; HTTP a, b, c; NBD of c); default: free ports.")
    Integer basePort;

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

    private final Object lock = new Object();
    private final List<Process> children = new ArrayList<>();
    private final Map<String, NodePlan> plans = new LinkedHashMap<>();
    /** Every node pid seen (node a's changes when the drill restarts it), in case a node does not answer at stop. */
    private final java.util.Set<Long> nodePids = java.util.concurrent.ConcurrentHashMap.newKeySet();
    private final AtomicBoolean stopped = new AtomicBoolean();
    private boolean stopping;
    private boolean temporaryDir;
    private Path region;
    private PrintWriter out;
    private PrintWriter err;

    @Override
    public Integer call() throws Exception {
        out = spec.commandLine().getOut();
        err = spec.commandLine().getErr();
        transport = transport.toLowerCase(Locale.ROOT);
        if (!transport.equals("cxl") && !transport.equals("rdma")) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                    "--transport is cxl or rdma; got '" + transport + "'");
        }
        if (basePort != null && (basePort < 1024 || basePort > 65535 - 6)) {
            throw new CommandLine.ParameterException(spec.commandLine(),
                    "--base-port must leave room for 7 ports in 1024..65535; got " + basePort);
        }
        if (dir == null) {
            dir = Files.createTempDirectory("weft-demo-");
            temporaryDir = true;
        } else {
            dir = Files.createDirectories(dir.toAbsolutePath().normalize());
        }
        Thread hook = new Thread(this::stop, "weft-demo-stop");
        Runtime.getRuntime().addShutdownHook(hook);
        int exit;
        try {
            exit = runDemo();
        } catch (DemoFailure | CliException | IOException e) {
            // e.g. /dev/shm not writable for the region, a node that does not come up, a refused map
            err.println("weft demo: " + (e instanceof IOException ? e.toString() : e.getMessage()));
            err.println("weft demo: node logs are in " + dir + (temporaryDir ? " (removed now; keep them with --dir)"
                    : ""));
            err.flush();
            printLogTails();
            stopAndForget(hook);
            return WeftMain.EXIT_FAILURE;
        }
        if (noWait) {
            stopAndForget(hook);
            return exit;
        }
        out.println();
        out.println("The cluster keeps running; Ctrl-C stops all three nodes" + (temporaryDir
                ? " and removes " + dir : "") + (region != null ? " and the CXL region " + region : "") + ".");
        out.flush();
        new CountDownLatch(1).await();   // until Ctrl-C / SIGTERM: the shutdown hook stops the nodes
        return exit;
    }

    private void stopAndForget(Thread hook) {
        stop();
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException shuttingDown) {
            // the JVM is exiting already; the hook found everything stopped
        }
    }

    private int runDemo() throws IOException, InterruptedException {
        List<NodePlan> nodes = plan(dir, basePort != null ? basePort : -1);
        nodes.forEach(n -> plans.put(n.name(), n));
        Path config = dir.resolve("demo.conf");
        if (transport.equals("cxl")) {
            region = Path.of("/dev/shm", "weft-demo-" + ProcessHandle.current().pid() + "-"
                    + Long.toHexString(ThreadLocalRandom.current().nextLong() & Long.MAX_VALUE));
            // the defaults of `weft cxl format`: 16 channels of 128 x 128 KiB, sparse on tmpfs
            CxlRegion.format(region, new RegionGeometry(16, 16, 64, 16, 128, 128 << 10),
                    RegionHeader.FLAG_ENTRY_CRC).close();
            out.println("formatted CXL region " + region + " (shared memory for nodes a, b and c)");
        }
        Files.writeString(config, config(region, nodes), StandardCharsets.UTF_8);
        out.println("starting nodes a, b (storage) and c (client) in " + dir + "; their output goes to "
                + dir.resolve("a.log") + ", b.log and c.log");
        out.flush();

        NodePlan a = plans.get("a");
        NodePlan b = plans.get("b");
        NodePlan c = plans.get("c");
        Process pc = start(c, config);
        awaitUp(c, pc);
        Process pa = start(a, config);
        Process pb = start(b, config);
        awaitUp(a, pa);
        awaitUp(b, pb);
        NodeApi client = api(c);
        await("c sees storage nodes a and b", () -> {
            JsonNode storage = client.get("/weft/storage-nodes");
            return contains(storage, "a") && contains(storage, "b");
        });
        long pidA = client(a).get("/weft/node").path("pid").asLong(pa.pid());
        nodePids.add(pidA);
        out.printf(Locale.ROOT, "nodes up: a pid %d (http %s), b pid %d (http %s), c pid %d (http %s)%n", pidA,
                a.http(), pb.pid(), b.http(), pc.pid(), c.http());

        for (String storage : List.of("a", "b")) {
            retryWhileNotFound(() -> {
                try {
                    return client.post("/weft/volumes", NodeApi.object().put("path", VOLUME).put("size", VOLUME_SIZE)
                            .put("storageNode", storage)).path("message").asText();
                } catch (CliException e) {
                    if (e.getMessage().contains("already exists")) {
                        return VOLUME + " exists on " + storage + " already (kept in --dir)";
                    }
                    throw e;
                }
            });
        }
        var body = NodeApi.object().put("id", DEVICE).put("mode", "rw").put("transport", transport);
        var legs = body.putArray("legs");
        legs.addObject().put("storage", "a").put("path", VOLUME);
        legs.addObject().put("storage", "b").put("path", VOLUME);
        retryWhileNotFound(() -> client.post("/weft/devices", body).path("message").asText());
        JsonNode device = client.get("/weft/devices/" + DEVICE);
        String tcp = device.path("export").asText("nbd://127.0.0.1:" + c.nbdPort() + "/" + DEVICE);
        String unix = "nbd+unix:///" + DEVICE + "?socket=" + c.socket();
        out.println("device " + DEVICE + " (" + device.path("state").asText() + ", mirror of a:" + VOLUME + " and b:"
                + VOLUME + " over " + transport + ") is exported at");
        out.println("  " + tcp);
        out.println("  " + unix);
        out.println();
        int exit = 0;
        if (noDrill) {
            out.println("no drill (--no-drill); run one with the weft drill commands below");
        } else {
            out.println("drill: kill -9 of storage node a under IO (1 s before, 2 s down, 1 s after; working set "
                    + WORKING_SET + "), then node a restarts and its leg resyncs");
            out.flush();
            JsonNode status = runDrill(client);
            exit = DrillCommand.print(status, out, err, false);
            JsonNode report = status.path("report");
            if (report.isObject()) {
                double stall = report.path("longestStallMillis").asDouble(-1);
                out.printf(Locale.ROOT, "%s: node a died under IO; the longest IO stall was %.1f ms (%s the %d ms "
                                + "bound), %s%n", exit == 0 ? "OK" : "PROBLEM", stall,
                        stall <= STALL_BOUND_MILLIS ? "within" : "ABOVE", STALL_BOUND_MILLIS,
                        report.path("intact").asBoolean() ? "every acknowledged write intact" : "DATA PROBLEM");
            }
            reportRestart(a, pidA);
        }
        out.println();
        out.println("Next:");
        out.println("  nbdinfo " + tcp);
        out.println("  ./weft status --node " + c.http() + "       # legs, resync progress, IO counters");
        out.println("  ./weft drill " + DEVICE + " --target b --fault freeze --overwrite --node " + c.http());
        out.println("  ./weft drill " + DEVICE + " --target a --fault cut --overwrite --node " + c.http());
        out.println("  curl -H \"Authorization: Bearer $(cat " + c.dataDir().resolve("management.token") + ")\" http://"
                + c.http() + "/metrics");
        consoleLink(client).ifPresent(link -> out.println("Console of c (cluster, devices, drills): " + link
                + "   (a one-time sign-in link)"));
        out.println("Logs: " + dir.resolve("a.log") + ", b.log, c.log");
        out.flush();
        return exit;
    }

    /** A one-time sign-in link to c's web console (docs/console.md); empty when c does not give one. */
    private static java.util.Optional<String> consoleLink(NodeApi client) {
        try {
            String url = client.post("/weft/sign-in-link", NodeApi.object()).path("url").asText("");
            return url.isEmpty() ? java.util.Optional.empty() : java.util.Optional.of(url);
        } catch (RuntimeException e) {
            return java.util.Optional.empty(); // the demo's result does not depend on the console
        }
    }

    private JsonNode runDrill(NodeApi client) {
        var drill = NodeApi.object().put("device", DEVICE).put("fault", "kill").put("target", "a")
                .put("restart", true).put("overwrite", true).put("workingSet", WORKING_SET)
                .put("before", 1000).put("during", 2000).put("after", 1000);
        JsonNode started = client.post("/weft/drills", drill);
        String id = started.path("id").asText();
        if (id.isEmpty()) {
            throw new DemoFailure("node c accepted the drill but named no id: " + started);
        }
        DrillWatcher watcher = new DrillWatcher(client, err, true, DrillWatcher.stderrIsTerminal());
        return watcher.await(id, DrillWatcher.timeoutFor(1000, 2000, 1000, 60_000));
    }

    /** Says whether the drill's restart of node a came back (it is node c's child now, not ours). */
    private void reportRestart(NodePlan a, long oldPid) {
        NodeApi api = client(a);
        long deadline = System.nanoTime() + STEP_TIMEOUT.toNanos();
        while (System.nanoTime() - deadline < 0) {
            try {
                JsonNode node = api.get("/weft/node");
                long pid = node.path("pid").asLong(-1);
                if (pid > 0) {
                    nodePids.add(pid);
                }
                if (pid != oldPid && "Up".equals(node.path("status").asText())) {
                    out.println("node a was killed (pid " + oldPid + ") and restarted by the drill as pid " + pid);
                    return;
                }
            } catch (CliException notYet) {
                // still starting
            }
            pause();
        }
        out.println("node a (killed, pid " + oldPid + ") is not back up after " + STEP_TIMEOUT.toSeconds()
                + " s; see " + dir.resolve("a.log") + " and c.log");
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

    /** {@code java FLAGS -cp CLASSPATH io.weft.node.cli.WeftMain node ...} for one node. */
    static List<String> nodeCommand(NodePlan n, Path config) {
        List<String> cmd = new ArrayList<>();
        cmd.add(javaBinary());
        cmd.addAll(jvmFlags(Runtime.version().feature(), System.getenv("WEFT_JAVA_OPTS")));
        cmd.add("-cp");
        cmd.add(classPath());
        cmd.add(WeftMain.class.getName());
        cmd.addAll(List.of("node", "--config", config.toString(), "--name", n.name(), "--roles", n.roles(),
                "--data-dir", n.dataDir().toString(), "--cluster-port", Integer.toString(n.clusterPort()),
                "--http-listen", n.http(), "--nbd-listen", n.nbdPort() > 0 ? "127.0.0.1:" + n.nbdPort() : "off",
                "--nbd-unix", n.socket().toString()));
        return cmd;
    }

    /** The flags the {@code ./weft} launcher gives the JVM, a modest heap, then {@code WEFT_JAVA_OPTS}. */
    static List<String> jvmFlags(int javaFeature, String weftJavaOpts) {
        List<String> flags = new ArrayList<>(List.of(
                "--add-opens", "java.base/jdk.internal.misc=ALL-UNNAMED",
                "--add-opens", "java.base/sun.nio.ch=ALL-UNNAMED",
                "--add-opens", "java.base/java.nio=ALL-UNNAMED"));
        if (javaFeature >= 22) {
            flags.add("--enable-native-access=ALL-UNNAMED");
        }
        if (javaFeature >= 23) {
            flags.add("--sun-misc-unsafe-memory-access=allow");
        }
        flags.add("-Xmx512m");
        if (weftJavaOpts != null && !weftJavaOpts.isBlank()) {
            flags.addAll(List.of(weftJavaOpts.trim().split("\\s+")));
        }
        return flags;
    }

    private static String javaBinary() {
        return ProcessHandle.current().info().command()
                .orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    }

    /** This JVM's class path with every entry absolute (the drill restarts node a from its command line). */
    private static String classPath() {
        StringBuilder cp = new StringBuilder();
        for (String entry : System.getProperty("java.class.path").split(File.pathSeparator)) {
            if (!entry.isEmpty()) {
                cp.append(cp.length() == 0 ? "" : File.pathSeparator)
                        .append(Path.of(entry).toAbsolutePath().normalize());
            }
        }
        return cp.toString();
    }

    private Process start(NodePlan n, Path config) throws IOException {
        Files.createDirectories(n.dataDir());
        List<String> cmd = new ArrayList<>();
        Path setsid = Path.of("/usr/bin/setsid");
        if (Files.isExecutable(setsid)) {
            cmd.add(setsid.toString());   // own session: the terminal's Ctrl-C goes to the demo only
        }
        cmd.addAll(nodeCommand(n, config));
        Path log = dir.resolve(n.name() + ".log");
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(n.dataDir().toFile()).redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
        synchronized (lock) {
            if (stopping) {
                throw new DemoFailure("stopping");
            }
            Process p = pb.start();
            children.add(p);
            return p;
        }
    }

    private void awaitUp(NodePlan n, Process p) {
        NodeApi api = client(n);
        long deadline = System.nanoTime() + START_TIMEOUT.toNanos();
        while (true) {
            if (!p.isAlive()) {
                throw new DemoFailure("node " + n.name() + " exited with " + p.exitValue() + " during start-up; see "
                        + dir.resolve(n.name() + ".log"));
            }
            try {
                if ("Up".equals(api.get("/weft/node").path("status").asText())) {
                    return;
                }
            } catch (CliException notYet) {
                // not listening yet
            }
            if (System.nanoTime() - deadline > 0) {
                throw new DemoFailure("node " + n.name() + " is not up after " + START_TIMEOUT.toSeconds()
                        + " s; see " + dir.resolve(n.name() + ".log"));
            }
            pause();
        }
    }

    private void await(String what, Supplier<Boolean> condition) {
        long deadline = System.nanoTime() + STEP_TIMEOUT.toNanos();
        CliException last = null;
        while (System.nanoTime() - deadline < 0) {
            try {
                if (condition.get()) {
                    return;
                }
            } catch (CliException e) {
                last = e;
            }
            pause();
        }
        throw new DemoFailure("waited " + STEP_TIMEOUT.toSeconds() + " s for " + what
                + (last != null ? " (last error: " + last.getMessage() + ")" : ""));
    }

    /** Runs {@code step}; the client may not know a just-started storage node yet ("not found"): retry a while. */
    private String retryWhileNotFound(Supplier<String> step) {
        long deadline = System.nanoTime() + STEP_TIMEOUT.toNanos();
        while (true) {
            try {
                String message = step.get();
                out.println(message);
                out.flush();
                return message;
            } catch (CliException e) {
                if (!e.getMessage().contains("not found") || System.nanoTime() - deadline > 0) {
                    throw e;
                }
            }
            pause();
        }
    }

    private static boolean contains(JsonNode array, String value) {
        for (JsonNode v : array) {
            if (v.asText().equals(value)) {
                return true;
            }
        }
        return false;
    }

    private static void pause() {
        LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(DrillWatcher.POLL_MILLIS));
        if (Thread.interrupted()) {
            throw new DemoFailure("interrupted");
        }
    }

    private NodeApi api(NodePlan n) {
        return new NodeApi(n.http(), null, Duration.ofSeconds(60));
    }

    /** A short-timeout API for probing whether a node is up. */
    private static NodeApi client(NodePlan n) {
        return new NodeApi(n.http(), null, Duration.ofSeconds(5));
    }

    /**
     * Stops every node once: SIGTERM to the pid each reports (node a may have been restarted by node c), or to the
     * child this JVM started when a node does not answer; waits for them, kills what is left; removes the region and
     * the temporary dir. Runs from the shutdown hook on Ctrl-C and directly with --no-wait or after a failure.
     */
    void stop() {
        if (!stopped.compareAndSet(false, true)) {
            return;
        }
        List<Process> started;
        synchronized (lock) {
            stopping = true;
            started = new ArrayList<>(children);
        }
        PrintWriter say = err != null ? err : new PrintWriter(System.err, true);
        List<ProcessHandle> targets = new ArrayList<>();
        for (NodePlan n : plans.values()) {
            try {
                long pid = new NodeApi(n.http(), null, Duration.ofSeconds(2)).get("/weft/node").path("pid")
                        .asLong(-1);
                ProcessHandle.of(pid).filter(DemoCommand::isWeftNode).ifPresent(targets::add);
            } catch (CliException notAnswering) {
                // stopped already, or never came up: its child process (if any) is stopped below
            }
        }
        for (long pid : nodePids) {
            ProcessHandle.of(pid).filter(DemoCommand::isWeftNode)
                    .filter(h -> targets.stream().noneMatch(t -> t.pid() == pid)).ifPresent(targets::add);
        }
        for (Process p : started) {
            if (p.isAlive() && targets.stream().noneMatch(h -> h.pid() == p.pid())) {
                targets.add(p.toHandle());
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

    private void printLogTails() {
        for (String name : plans.keySet()) {
            Path log = dir.resolve(name + ".log");
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

    /** The demo could not go on; the message says where to look. */
    static final class DemoFailure extends RuntimeException {
        DemoFailure(String message) {
            super(message);
        }
    }
}
