package io.weft.node.cli;

import com.fasterxml.jackson.databind.JsonNode;
import io.weft.core.process.ChildJvm;
import io.weft.node.cli.client.CliException;
import io.weft.node.cli.client.DrillCommand;
import io.weft.node.cli.client.DrillWatcher;
import io.weft.node.cli.client.NodeApi;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Supplier;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code weft demo}: a local three-node cluster in child JVMs (storage nodes {@code a} and {@code b}, client node
 * {@code c}; {@link LocalCluster} starts and stops them), a mirrored device {@code demo0} on c with a leg on a and one
 * on b, exported over NBD, and a short drill that kills node a under IO (and restarts it). Then it waits for Ctrl-C
 * and stops every node. This class parses the options, drives the steps over c's HTTP API and prints.
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
    private static final Duration STEP_TIMEOUT = Duration.ofSeconds(60);

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

    private LocalCluster cluster;
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
        boolean temporaryDir = dir == null;
        dir = temporaryDir ? Files.createTempDirectory("weft-demo-")
                : Files.createDirectories(dir.toAbsolutePath().normalize());
        cluster = new LocalCluster(dir, temporaryDir, basePort != null ? basePort : -1);
        Thread hook = new Thread(this::stop, "weft-demo-stop");
        Runtime.getRuntime().addShutdownHook(hook);
        int exit;
        try {
            exit = runDemo();
        } catch (DemoFailure | LocalCluster.StartFailure | CliException | IOException e) {
            // e.g. /dev/shm not writable for the region, a node that does not come up, a refused map
            err.println("weft demo: " + (e instanceof IOException ? e.toString() : e.getMessage()));
            err.println("weft demo: node logs are in " + dir + (temporaryDir ? " (removed now; keep them with --dir)"
                    : ""));
            err.flush();
            cluster.printLogTails(err);
            stopAndForget(hook);
            return WeftMain.EXIT_FAILURE;
        }
        if (noWait) {
            stopAndForget(hook);
            return exit;
        }
        out.println();
        out.println("The cluster keeps running; Ctrl-C stops all three nodes" + (temporaryDir
                ? " and removes " + dir : "") + cluster.region().map(r -> " and the CXL region " + r).orElse("")
                + ".");
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
        cluster.prepare(transport.equals("cxl"), out);
        out.println("starting nodes a, b (storage) and c (client) in " + dir + "; their output goes to "
                + dir.resolve("a.log") + ", b.log and c.log");
        out.flush();

        LocalCluster.NodePlan a = cluster.node("a");
        LocalCluster.NodePlan b = cluster.node("b");
        LocalCluster.NodePlan c = cluster.node("c");
        ChildJvm pc = cluster.start("c");
        cluster.awaitUp("c", pc);
        ChildJvm pa = cluster.start("a");
        ChildJvm pb = cluster.start("b");
        cluster.awaitUp("a", pa);
        cluster.awaitUp("b", pb);
        NodeApi client = api(c);
        await("c sees storage nodes a and b", () -> {
            JsonNode storage = client.get("/weft/storage-nodes");
            return contains(storage, "a") && contains(storage, "b");
        });
        long pidA = LocalCluster.probe(a).get("/weft/node").path("pid").asLong(pa.pid());
        cluster.rememberPid(pidA);
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
    private void reportRestart(LocalCluster.NodePlan a, long oldPid) {
        NodeApi api = LocalCluster.probe(a);
        long deadline = System.nanoTime() + STEP_TIMEOUT.toNanos();
        while (System.nanoTime() - deadline < 0) {
            try {
                JsonNode node = api.get("/weft/node");
                long pid = node.path("pid").asLong(-1);
                if (pid > 0) {
                    cluster.rememberPid(pid);
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

    private static NodeApi api(LocalCluster.NodePlan n) {
        return new NodeApi(n.http(), null, Duration.ofSeconds(60));
    }

    /** Stops the cluster (once); runs from the shutdown hook on Ctrl-C and directly with --no-wait or a failure. */
    void stop() {
        if (cluster != null) {
            cluster.stop(err != null ? err : new PrintWriter(System.err, true));
        }
    }

    /** The demo could not go on; the message says where to look. */
    static final class DemoFailure extends RuntimeException {
        DemoFailure(String message) {
            super(message);
        }
    }
}
