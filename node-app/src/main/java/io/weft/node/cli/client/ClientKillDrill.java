package io.weft.node.cli.client;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.weft.actors.drill.ProcFs;
import io.weft.actors.drill.ProcessTarget;
import io.weft.actors.drill.harness.Drill;
import io.weft.actors.drill.harness.DrillFault;
import io.weft.actors.drill.harness.DrillOptions;
import io.weft.actors.drill.harness.DrillReport;
import io.weft.actors.drill.harness.LegComparator;
import io.weft.actors.drill.harness.LegComparison;
import io.weft.actors.drill.harness.NbdDriveDevice;
import io.weft.actors.drill.ProcessSignals;
import java.io.IOException;
import java.io.PrintWriter;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Supplier;

/**
 * The client-kill drill, driven from outside the client node it kills: this (CLI) process runs the verifying
 * {@link Drill} workload through the node's NBD export of the device ({@link NbdDriveDevice}), so it keeps the record
 * of every acknowledged write while the node dies. Then:
 * <ol>
 * <li>inject: {@code kill -9} of the client node (its pid and boot id from {@code GET /weft/node}; same host only;
 * the pid's start time checked again right before the signal);</li>
 * <li>during: the node stays dead; the workload's requests in flight at the kill failed (in doubt), new ones wait;</li>
 * <li>recover: the node is started again with its own command line, working directory and environment (read from
 * {@code /proc} before the kill), the device is mapped again with the leg list it had (unless the node mapped it
 * by itself), the driver waits until it is ready with every leg in sync and reconnects to its export;</li>
 * <li>after: the workload runs on; then every acknowledged write is read back through the export and the legs are
 * compared block by block by the node ({@code POST /weft/devices/{id}/compare-legs}).</li>
 * </ol>
 * The result has the shape of a node's drill status ({@code GET /weft/drills/{id}}), so {@code weft drill} prints it
 * the same way.
 */
final class ClientKillDrill {
    static final String FAULT = "client-kill";

    private final NodeApi api;
    private final String device;
    private final DrillOptions options;
    private final PrintWriter err;
    private final boolean progress;

    ClientKillDrill(NodeApi api, String device, DrillOptions options, PrintWriter err, boolean progress) {
        this.api = api;
        this.device = device;
        this.options = options;
        this.err = err;
        this.progress = progress;
    }

    /** Runs the drill and returns its status (phase done with a report, or failed with an error). */
    ObjectNode run() {
        JsonNode node = api.get("/weft/node");
        String nodeName = node.path("name").asText("client");
        long pid = node.path("pid").asLong(-1);
        checkSameHost(nodeName, pid, node.path("bootId").asText(""));
        JsonNode dev = api.get("/weft/devices/" + device);
        String notReady = notReady(dev);
        if (notReady != null) {
            throw new CliException(CliException.FAILED, "device " + device + " on " + nodeName + " " + notReady
                    + "; a drill starts from a ready device with every leg in sync");
        }
        ObjectNode mapBody = mapBody(dev);
        boolean mirrored = dev.path("mirror").isObject();
        ProcFs.ProcessImage image;
        try {
            image = ProcFs.snapshot(pid);
        } catch (IOException e) {
            throw new CliException(CliException.FAILED, "cannot read how " + nodeName + " (pid " + pid
                    + ") was started from /proc/" + pid + ": " + e.getMessage() + "; run weft drill as the user the"
                    + " node runs as");
        }
        Path fallbackLog = Path.of(node.path("dataDir").asText(".")).resolve("drill-restart-" + nodeName + ".log");
        ObjectNode status = NodeApi.object().put("id", FAULT).put("device", device).put("fault", FAULT)
                .put("target", nodeName).put("seed", options.seed());
        ClientKill fault = new ClientKill(ProcessTarget.of(nodeName, pid), image, fallbackLog, mapBody);
        long started = System.nanoTime();
        try (NbdDriveDevice nbd = new NbdDriveDevice(exportName(dev), options.queueDepth())) {
            fault.nbd = nbd;
            nbd.connect(exportAddress(dev));
            LegComparator legs = mirrored ? this::compareLegs : null;
            Drill drill = new Drill(nbd, null, fault, options, legs);
            DrillReport report = runWatched(drill);
            status.put("phase", "done").put("error", "");
            status.set("report", JsonText.parse(report.toJson()));
            status.put("reportText", report.toText());
        } catch (IOException | RuntimeException e) {
            Throwable cause = e.getCause() != null && e instanceof IllegalStateException ? e.getCause() : e;
            status.put("phase", "failed").put("error", e.getMessage() + (cause != e ? ": " + cause : ""));
            status.putNull("report");
            status.put("reportText", "");
        } finally {
            fault.close();
        }
        status.put("elapsedMillis", (System.nanoTime() - started) / 1_000_000);
        status.put("faultDone", fault.describe());
        return status;
    }

    private void checkSameHost(String nodeName, long pid, String bootId) {
        String here = ProcFs.bootId();
        if (pid <= 1 || bootId.isEmpty() || !bootId.equals(here)) {
            throw new CliException(CliException.FAILED, "node " + nodeName + " runs on another host (boot id "
                    + (bootId.isEmpty() ? "unknown" : bootId) + ", here " + (here.isEmpty() ? "unknown" : here)
                    + "); a client-kill drill kills and restarts the node's process: run weft drill on its host");
        }
        if (pid == ProcessHandle.current().pid() || !ProcFs.visible(pid)) {
            throw new CliException(CliException.FAILED, "node " + nodeName + "'s pid " + pid + " is not another"
                    + " process visible here (another PID namespace or container?)");
        }
    }

    /** Why the device cannot be drilled now, or null. */
    static String notReady(JsonNode dev) {
        if (!"ready".equals(dev.path("state").asText())) {
            return "is " + dev.path("state").asText("in an unknown state");
        }
        JsonNode mirror = dev.path("mirror");
        if (mirror.isObject()) {
            for (JsonNode leg : mirror.path("legs")) {
                if (!"in-sync".equals(leg.path("state").asText())) {
                    return "has leg " + leg.path("index").asText() + " " + leg.path("state").asText();
                }
            }
        }
        return null;
    }

    /** The {@code POST /weft/devices} body that maps the device again as it is now (its current leg list). */
    static ObjectNode mapBody(JsonNode dev) {
        ObjectNode body = NodeApi.object().put("id", dev.path("id").asText()).put("mode", dev.path("mode").asText("rw"))
                .put("transport", dev.path("transport").asText(""));
        JsonNode mirror = dev.path("mirror");
        if (mirror.isObject()) {
            ArrayNode legs = body.putArray("legs");
            for (JsonNode leg : mirror.path("legs")) {
                legs.addObject().put("storage", leg.path("storageNode").asText())
                        .put("path", leg.path("path").asText());
            }
        } else {
            body.put("storageNode", dev.path("storageNode").asText()).put("path", dev.path("path").asText());
        }
        return body;
    }

    private static URI exportUri(JsonNode dev) {
        String export = dev.path("export").asText("");
        URI uri;
        try {
            uri = URI.create(export);
        } catch (IllegalArgumentException e) {
            uri = null;
        }
        if (uri == null || !"nbd".equals(uri.getScheme()) || uri.getHost() == null || uri.getPort() < 0) {
            throw new CliException(CliException.FAILED, "device " + dev.path("id").asText() + " is exported as '"
                    + export + "'; a client-kill drill drives its workload through a TCP NBD export"
                    + " (nbd://host:port/name)");
        }
        return uri;
    }

    static InetSocketAddress exportAddress(JsonNode dev) {
        URI uri = exportUri(dev);
        return new InetSocketAddress(uri.getHost(), uri.getPort());
    }

    static String exportName(JsonNode dev) {
        String path = exportUri(dev).getPath();
        return path == null || path.length() <= 1 ? dev.path("id").asText() : path.substring(1);
    }

    private DrillReport runWatched(Drill drill) {
        DrillReport[] report = new DrillReport[1];
        Throwable[] failure = new Throwable[1];
        Thread t = new Thread(() -> {
            try {
                report[0] = drill.run();
            } catch (Throwable e) {
                failure[0] = e;
            }
        }, "weft-client-kill-drill");
        t.start();
        Drill.Phase shown = null;
        while (t.isAlive()) {
            Drill.Phase now = drill.phase();
            if (progress && now != shown) {
                err.println("weft drill: " + FAULT + " of " + device + ": " + now.name().toLowerCase(Locale.ROOT)
                        + " (" + drill.completedRequests() + " requests)");
                err.flush();
                shown = now;
            }
            try {
                t.join(200);
            } catch (InterruptedException e) {
                drill.cancel();
                Thread.currentThread().interrupt();
            }
        }
        if (failure[0] != null) {
            throw failure[0] instanceof RuntimeException r ? r : new IllegalStateException(failure[0]);
        }
        return report[0];
    }

    /** Asks the (restarted) node to compare the legs; waits while it says a leg is not in sync yet. */
    private LegComparison.Result compareLegs(long length) {
        JsonNode r = retry("the legs of " + device + " compared", () -> api.post("/weft/devices/" + device
                + "/compare-legs", NodeApi.object().put("length", length)));
        List<LegComparison.Region> regions = new ArrayList<>();
        for (JsonNode g : r.path("regions")) {
            regions.add(new LegComparison.Region(g.path("leg").asInt(), g.path("offset").asLong(),
                    g.path("length").asLong()));
        }
        return new LegComparison.Result(r.path("legs").asInt(), r.path("bytesCompared").asLong(),
                r.path("differingBytes").asLong(), regions);
    }

    /** Calls {@code call} until it answers (the node restarting, a lease still held, a leg not in sync yet). */
    private <T> T retry(String what, Supplier<T> call) {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(options.resyncTimeoutMillis());
        while (true) {
            try {
                return call.get();
            } catch (CliException e) {
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("gave up waiting for " + what + " after "
                            + options.resyncTimeoutMillis() + " ms: " + e.getMessage());
                }
                LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(200)); // polling interval of the node's API
            }
        }
    }

    /** Waits until {@code condition} holds, polling the node. */
    private void await(String what, Supplier<Boolean> condition) {
        retry(what, () -> {
            if (!condition.get()) {
                throw new CliException(CliException.FAILED, "not yet");
            }
            return Boolean.TRUE;
        });
    }

    /** kill -9 of the client node, then its restart, the map and the reconnect. Never leaves the node dead. */
    private final class ClientKill implements DrillFault {
        private final ProcessTarget target;
        private final ProcFs.ProcessImage image;
        private final Path fallbackLog;
        private final ObjectNode mapBody;
        NbdDriveDevice nbd;
        private boolean killed; // guarded by this
        private Process restarted; // guarded by this
        private final StringBuilder done = new StringBuilder("nothing yet"); // guarded by this

        ClientKill(ProcessTarget target, ProcFs.ProcessImage image, Path fallbackLog, ObjectNode mapBody) {
            this.target = target;
            this.image = image;
            this.fallbackLog = fallbackLog;
            this.mapBody = mapBody;
        }

        @Override
        public String name() {
            return FAULT;
        }

        @Override
        public void prepare() {
            target.signal(ProcessSignals.CHECK);
        }

        @Override
        public synchronized void inject() {
            target.signal(ProcessSignals.SIGKILL);
            killed = true;
            done.setLength(0);
            done.append("SIGKILL sent to ").append(target);
        }

        @Override
        public void recover() throws Exception {
            long t0 = System.nanoTime();
            long newPid = restart();
            await(target.node() + " answering again as pid " + newPid,
                    () -> api.get("/weft/node").path("pid").asLong() == newPid);
            long up = System.nanoTime();
            // The node may map its devices by itself; else map it again as it was (the old incarnation's lease on
            // the storage nodes may refuse it for a while: retried).
            boolean remapped = false;
            if (!exists()) {
                retry(device + " mapped again on " + target.node(), () -> api.post("/weft/devices", mapBody));
                remapped = true;
            }
            JsonNode[] dev = new JsonNode[1];
            await(device + " ready with every leg in sync", () -> {
                dev[0] = api.get("/weft/devices/" + device);
                return notReady(dev[0]) == null;
            });
            long ready = System.nanoTime();
            nbd.connect(exportAddress(dev[0]));
            synchronized (this) {
                done.append(String.format(Locale.ROOT, "; restarted as pid %d (output to %s), up in %.1f s, %s"
                                + " ready with every leg in sync %.1f s later; workload reconnected to %s", newPid,
                        image.stdoutFile() != null ? image.stdoutFile() : fallbackLog, (up - t0) / 1e9,
                        remapped ? "mapped again and" : "mapped by itself and", (ready - up) / 1e9,
                        dev[0].path("export").asText()));
            }
        }

        private boolean exists() {
            try {
                api.get("/weft/devices/" + device);
                return true;
            } catch (CliException e) {
                return false;
            }
        }

        private synchronized long restart() throws IOException {
            if (restarted == null) {
                restarted = image.start(fallbackLog);
            }
            return restarted.pid();
        }

        synchronized String describe() {
            return done.toString();
        }

        /** However the drill ended: a killed node is started again. */
        void close() {
            boolean mustRestart;
            synchronized (this) {
                mustRestart = killed && restarted == null;
            }
            if (mustRestart) {
                try {
                    long pid = restart();
                    synchronized (this) {
                        done.append("; restarted as pid ").append(pid).append(" after the drill ended early");
                    }
                } catch (IOException e) {
                    synchronized (this) {
                        done.append("; restart FAILED: ").append(e.getMessage());
                    }
                }
            }
        }
    }
}
