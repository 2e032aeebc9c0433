package io.weft.node.cli.client;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code weft drill}: runs a failover drill on a device of the node you talk to (its client role) and prints the
 * report. Exit codes differ from the other client commands: the outcome is a verdict on the data.
 */
@Command(name = "drill", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Runs a verifying workload on DEVICE (mapped on the node you talk to) while it kills "
                + "(kill -9, then restarts), freezes (SIGSTOP, then SIGCONT), flaps (repeated freezes just past the "
                + "mirror's leg timeout) or cuts the transport paths to storage node NODE, then prints the report: "
                + "longest IO stall, time to detect, fail over and resync, IOPS before/during/after, whether every "
                + "acknowledged write reads back intact and whether the mirror's legs are byte-identical.",
            "--fault client-kill kills the client node itself (the node you talk to): this command then drives "
                + "the workload through the node's NBD export, kill -9s the node, starts it again with its own "
                + "command line, maps DEVICE again with its current legs and checks every acknowledged write and "
                + "the legs (run it on the node's host).",
            "The workload OVERWRITES the first --working-set bytes of the device: --overwrite confirms it. "
                + "Progress (phase, elapsed time, requests) goes to stderr, the report to stdout.", ""},
        footer = {"", "Exit codes: 0 every acknowledged write intact, 1 data problem or the drill failed, "
                + "2 invalid usage or the node refused the drill or did not answer."})
public final class DrillCommand extends ClientCommand {
    /** Exit code: every acknowledged write intact. */
    static final int INTACT = 0;
    /** Exit code: the report shows a data problem, or the drill could not run to the end. */
    static final int DATA_PROBLEM = 1;
    /** Exit code: invalid usage, or the API refused or did not answer. */
    static final int USAGE_OR_API = 2;

    @Parameters(index = "0", paramLabel = "DEVICE", description = "A device mapped on the node (--node).")
    String device;

    @Option(names = "--fault", required = true, paramLabel = "kill|freeze|flap|cut|client-kill",
            description = "kill: kill -9 of the target node (restarted afterwards unless --no-restart); freeze: "
                    + "SIGSTOP, SIGCONT at recovery; flap: --flaps freezes of the target, each just past the leg "
                    + "timeout; cut: close the transport paths to the target; client-kill: kill -9 of the client "
                    + "node itself, driven from this process (no --target).")
    String fault;

    @Option(names = "--target", paramLabel = "NODE",
            description = "Storage node (weft.node.name) holding a leg of DEVICE (or its only backend); "
                    + "not with client-kill.")
    String target;

    @Option(names = "--flaps", paramLabel = "N", description = "flap only: freezes (default 3).")
    Integer flaps;

    @Option(names = "--freeze-for", paramLabel = "DURATION",
            description = "flap only: length of each freeze (default: the mirror's leg timeout + 300ms).")
    String freezeFor;

    @Option(names = "--run-for", paramLabel = "DURATION",
            description = "flap only: the target runs this long between freezes (default 1s).")
    String runFor;

    @Option(names = "--path", paramLabel = "N",
            description = "cut only: cut one transport path (index) instead of all.")
    Integer path;

    @Option(names = "--no-restart", description = "kill only: leave the killed node down.")
    boolean noRestart;

    @Option(names = "--overwrite", description = "Confirms that the drill overwrites [0, working set) of DEVICE.")
    boolean overwrite;

    @Option(names = "--seed", paramLabel = "N", description = "Workload seed (default: the node picks one; "
            + "printed in the report, re-run with it to repeat the IO sequence).")
    Long seed;

    @Option(names = "--queue-depth", paramLabel = "N", description = "Requests in flight (default 16).")
    Integer queueDepth;

    @Option(names = "--working-set", paramLabel = "SIZE", description = "Bytes of DEVICE used, from 0 (default 64MiB).")
    String workingSet;

    @Option(names = "--min-io", paramLabel = "SIZE", description = "Smallest request (default 4KiB).")
    String minIo;

    @Option(names = "--max-io", paramLabel = "SIZE", description = "Largest request (default 64KiB).")
    String maxIo;

    @Option(names = "--read-percent", paramLabel = "N", description = "Share of reads, 0..100 (default 30).")
    Integer readPercent;

    @Option(names = "--before", paramLabel = "DURATION", description = "Workload before the fault (default 2s).")
    String before;

    @Option(names = "--during", paramLabel = "DURATION", description = "Fault held this long (default 3s).")
    String during;

    @Option(names = "--after", paramLabel = "DURATION",
            description = "Workload after recovery and resync (default 2s).")
    String after;

    @Option(names = "--resync-timeout", paramLabel = "DURATION",
            description = "Longest wait for the leg to be back in sync (default 60s).")
    String resyncTimeout;

    private int verdict = INTACT;

    @Override
    void run(NodeApi api) {
        ObjectNode body = requestBody();
        if (ClientKillDrill.FAULT.equals(body.path("fault").asText())) {
            PrintWriter err = spec.commandLine().getErr();
            if (!json()) {
                err.println("weft drill: client-kill of " + api.node() + " under " + device + ", driven from this"
                        + " process through the node's NBD export");
                err.flush();
            }
            JsonNode status = new ClientKillDrill(api, device, options(body), err, !json()).run();
            verdict = print(status, out(), err, json());
            return;
        }
        JsonNode started = api.post("/weft/drills", body);
        String id = started.path("id").asText();
        if (id.isEmpty()) {
            throw new CliException(CliException.FAILED, api.node() + " accepted the drill but named no id: " + started);
        }
        PrintWriter err = spec.commandLine().getErr();
        if (!json()) {
            err.println("weft drill: " + id + " started on " + api.node() + ": " + fault + " of " + target + " under "
                    + device);
            err.flush();
        }
        long timeout = DrillWatcher.timeoutFor(millisOr(body, "before", 2000), millisOr(body, "during", 3000),
                millisOr(body, "after", 2000), millisOr(body, "resyncTimeout", 60_000));
        JsonNode status = new DrillWatcher(api, err, !json(), DrillWatcher.stderrIsTerminal()).await(id, timeout);
        verdict = print(status, out(), err, json());
    }

    /**
     * Prints a final drill status (the report, or why it failed) and returns the exit code it stands for. The text
     * report goes to {@code out}; a failure is explained on {@code err}; {@code json} prints the whole status.
     */
    public static int print(JsonNode status, PrintWriter out, PrintWriter err, boolean json) {
        if (json) {
            out.println(JsonText.pretty(status));
        }
        String faultDone = status.path("faultDone").asText("");
        if (!json && !faultDone.isEmpty()) {
            err.println("weft drill: " + faultDone);   // e.g. which pid was killed and restarted, where its output goes
            err.flush();
        }
        JsonNode report = status.path("report");
        if (!status.path("phase").asText().equals("done") || !report.isObject()) {
            String error = status.path("error").asText("");
            err.println("weft drill: " + status.path("id").asText("the drill") + " failed"
                    + (error.isEmpty() ? " without a report" : ": " + error));
            err.flush();
            return DATA_PROBLEM;
        }
        boolean intact = report.path("intact").asBoolean(false);
        if (!json) {
            String text = status.path("reportText").asText("");
            out.print(text.isEmpty() ? report.toString() + System.lineSeparator() : text);
            if (!intact) {
                out.println("DATA PROBLEM: " + problems(report) + " (seed " + report.path("seed").asText()
                        + " repeats the IO sequence)");
            }
        }
        out.flush();
        return intact ? INTACT : DATA_PROBLEM;
    }

    /** What made a report not intact, e.g. "3 blocks lost, 12 reads returned wrong data". */
    static String problems(JsonNode report) {
        List<String> found = new ArrayList<>();
        count(found, report, "blocksLost", "block(s) lost (an older version or zeros read back)");
        count(found, report, "blocksCorrupted", "block(s) corrupted");
        count(found, report, "blocksUnreadable", "block(s) unreadable in the final check");
        count(found, report, "readMismatches", "read(s) returned data no write had put there");
        count(found, report, "requestsHung", "request(s) hung");
        long differing = report.path("legDifferingBytes").asLong();
        if (differing > 0) {
            JsonNode first = report.path("legDifferences").path(0);
            found.add("the mirror's legs differ in " + differing + " bytes"
                    + (first.isMissingNode() ? "" : " (" + first.asText() + ")"));
        }
        return found.isEmpty() ? "the node says the data is not intact" : String.join(", ", found);
    }

    private static void count(List<String> found, JsonNode report, String field, String what) {
        long n = report.path(field).asLong();
        if (n > 0) {
            found.add(n + " " + what);
        }
    }

    /** The POST /weft/drills body; invalid options are usage errors. */
    ObjectNode requestBody() {
        if (!overwrite) {
            throw usage("the drill overwrites the working set of " + device
                    + " ([0, " + (workingSet == null ? "64MiB" : workingSet) + ") of the device) with test data; "
                    + "pass --overwrite to confirm");
        }
        String f = fault.toLowerCase(Locale.ROOT);
        if (!List.of("kill", "freeze", "flap", "cut", ClientKillDrill.FAULT).contains(f)) {
            throw usage("--fault is kill, freeze, flap, cut or client-kill; got '" + fault + "'");
        }
        boolean clientKill = f.equals(ClientKillDrill.FAULT);
        if (clientKill && target != null) {
            throw usage("--fault client-kill kills the node you talk to (--node): leave out --target");
        }
        if (!clientKill && (target == null || target.isBlank())) {
            throw usage("--target NODE is required: the storage node the fault hits");
        }
        if ((flaps != null || freezeFor != null || runFor != null) && !f.equals("flap")) {
            throw usage("--flaps, --freeze-for and --run-for go with --fault flap only");
        }
        if (flaps != null && (flaps < 1 || flaps > 100)) {
            throw usage("--flaps is 1..100; got " + flaps);
        }
        if (path != null && !f.equals("cut")) {
            throw usage("--path goes with --fault cut only");
        }
        if (path != null && path < 0) {
            throw usage("--path is a path index (0, 1, ...); got " + path);
        }
        if (noRestart && !f.equals("kill")) {
            throw usage("--no-restart goes with --fault kill only");
        }
        if (readPercent != null && (readPercent < 0 || readPercent > 100)) {
            throw usage("--read-percent is 0..100; got " + readPercent);
        }
        if (queueDepth != null && (queueDepth < 1 || queueDepth > 1024)) {
            throw usage("--queue-depth is 1..1024; got " + queueDepth);
        }
        ObjectNode body = NodeApi.object().put("device", device).put("fault", f).put("overwrite", true);
        if (!clientKill) {
            body.put("target", target);
        }
        if (flaps != null) {
            body.put("flaps", flaps);
        }
        if (path != null) {
            body.put("path", path);
        }
        if (f.equals("kill")) {
            body.put("restart", !noRestart);
        }
        if (seed != null) {
            body.put("seed", seed);
        }
        if (queueDepth != null) {
            body.put("queueDepth", queueDepth);
        }
        if (readPercent != null) {
            body.put("readPercent", readPercent);
        }
        try {
            putBytes(body, "workingSet", "--working-set", workingSet);
            putBytes(body, "minIo", "--min-io", minIo);
            putBytes(body, "maxIo", "--max-io", maxIo);
            putMillis(body, "before", "--before", before);
            putMillis(body, "during", "--during", during);
            putMillis(body, "after", "--after", after);
            putMillis(body, "resyncTimeout", "--resync-timeout", resyncTimeout);
            putMillis(body, "freezeFor", "--freeze-for", freezeFor);
            putMillis(body, "runFor", "--run-for", runFor);
        } catch (IllegalArgumentException e) {
            throw usage(e.getMessage());
        }
        return body;
    }

    /** The workload of a drill this process runs itself (client-kill), from the same fields a node reads. */
    static io.weft.actors.drill.harness.DrillOptions options(ObjectNode body) {
        try {
            return io.weft.actors.json.JsonBodies.read(body, io.weft.actors.drill.DrillRequest.Body.class).options();
        } catch (IllegalArgumentException e) {
            throw usage(e.getMessage());
        }
    }

    /** A usage error found after parsing: one line on stderr (not the whole usage text), exit 2. */
    private static CliException usage(String message) {
        return new CliException(CliException.USAGE, message + " (weft drill --help lists the options)");
    }

    private static void putBytes(ObjectNode body, String field, String option, String text) {
        if (text != null) {
            body.put(field, Units.bytes(option, text));
        }
    }

    private static void putMillis(ObjectNode body, String field, String option, String text) {
        if (text != null) {
            body.put(field, Units.millis(option, text));
        }
    }

    private static long millisOr(ObjectNode body, String field, long fallback) {
        return body.has(field) ? body.get(field).asLong() : fallback;
    }

    @Override
    int exitCode() {
        return verdict;
    }

    @Override
    int exitCode(CliException e) {
        return USAGE_OR_API;
    }
}
