package io.weft.node.cli.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.weft.actors.drill.harness.DrillEventAt;
import io.weft.actors.drill.harness.DrillReport;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.util.List;
import org.junit.jupiter.api.Test;

/** {@code weft drill} against a fake node: the request it sends, what it prints and its exit codes. */
class DrillCommandTest extends CommandAgainstFakeNode {
    private static final ObjectMapper JSON = new ObjectMapper();

    static DrillReport report(long lost) {
        return new DrillReport("kill", 7, 412.5, 3.25, 180.0, 230.0, 950.0, 12000, 9000, 11800, 45678, 30000, 12,
                0, 0, 8192 - lost, lost, 0, 0, 0, 3, 8, 8, 8, 32L << 20, 64L << 20, 0, List.of(),
                List.of(DrillEventAt.fromText("+181 ms leg 1 dropped"),
                        DrillEventAt.fromText("+2950 ms leg 1 in sync")));
    }

    static String status(String phase, double progress, DrillReport report, String error) throws Exception {
        ObjectNode s = JSON.createObjectNode().put("id", "drill-1").put("device", "m0").put("fault", "kill")
                .put("target", "b").put("seed", 7).put("phase", phase).put("elapsedMillis", 2300)
                .put("requests", 51234).put("progress", progress).put("error", error);
        if (report != null) {
            s.set("report", JSON.readTree(report.toJson()));
            s.put("reportText", report.toText());
        } else {
            s.putNull("report");
            s.put("reportText", "");
        }
        return s.toString();
    }

    private void drillAnswers(String... statuses) {
        node.on("POST /weft/drills", 202,
                "{\"id\":\"drill-1\",\"device\":\"m0\",\"fault\":\"kill\",\"target\":\"b\",\"phase\":\"starting\"}");
        node.on("GET /weft/drills/drill-1", 200, statuses);
    }

    @Test
    void anIntactDrillPrintsTheReportAndExitsZero() throws Exception {
        drillAnswers(status("starting", 0, null, ""), status("during", 0.4, null, ""),
                status("resync", 0.7, null, ""), status("done", 1, report(0), ""));
        int exit = weft("drill", "m0", "--fault", "kill", "--target", "b", "--overwrite", "--node", node.address(),
                "--token", "s3cret", "--seed", "7", "--before", "1s", "--during", "500ms", "--after", "1500",
                "--working-set", "16MiB", "--queue-depth", "8");
        assertEquals(0, exit, err.toString());
        assertEquals(report(0).toText(), out.toString());
        assertTrue(err.toString().contains("drill-1 started on " + node.address()), err.toString());
        for (String phase : List.of("starting", "during", "resync", "done")) {
            assertTrue(err.toString().contains(phase), "progress shows phase " + phase + ":\n" + err);
        }
        FakeNode.Request post = node.requests("POST", "/weft/drills").get(0);
        assertEquals("Bearer s3cret", post.authorization());
        JsonNode body = JSON.readTree(post.body());
        assertEquals("m0", body.path("device").asText());
        assertEquals("kill", body.path("fault").asText());
        assertEquals("b", body.path("target").asText());
        assertTrue(body.path("overwrite").asBoolean());
        assertTrue(body.path("restart").asBoolean());
        assertEquals(7, body.path("seed").asLong());
        assertEquals(1000, body.path("before").asLong());
        assertEquals(500, body.path("during").asLong());
        assertEquals(1500, body.path("after").asLong());
        assertEquals(16L << 20, body.path("workingSet").asLong());
        assertEquals(8, body.path("queueDepth").asInt());
        assertFalse(body.has("path"), body.toString());
        assertTrue(node.requests("GET", "/weft/drills/drill-1").size() >= 4, "polled until done");
    }

    @Test
    void aDoneDrillIsAwaitedUntilItsReportIsThere() throws Exception {
        // the node may publish phase "done" a moment before the report
        drillAnswers(status("verifying", 0.99, null, ""), status("done", 1, null, ""), status("done", 1, null, ""),
                status("done", 1, report(0), ""));
        int exit = weft("drill", "m0", "--fault", "kill", "--target", "b", "--overwrite", "--node", node.address());
        assertEquals(0, exit, err.toString());
        assertEquals(report(0).toText(), out.toString());
        assertEquals(4, node.requests("GET", "/weft/drills/drill-1").size());
    }

    @Test
    void aDataProblemExitsOne() throws Exception {
        drillAnswers(status("verifying", 0.95, null, ""), status("done", 1, report(3), ""));
        int exit = weft("drill", "m0", "--fault", "kill", "--target", "b", "--overwrite", "--node", node.address());
        assertEquals(1, exit, err.toString());
        assertTrue(out.toString().startsWith("drill kill (seed 7): DATA PROBLEM"), out.toString());
        assertTrue(out.toString().contains("DATA PROBLEM: 3 block(s) lost (an older version or zeros read back) "
                + "(seed 7 repeats the IO sequence)"), out.toString());
    }

    @Test
    void aFailedDrillSaysWhyAndExitsOne() throws Exception {
        drillAnswers(status("during", 0.3, null, ""),
                status("failed", 0.3, null, "cannot restart b: /proc/4242/cmdline is gone"));
        int exit = weft("drill", "m0", "--fault", "kill", "--target", "b", "--overwrite", "--node", node.address());
        assertEquals(1, exit);
        assertTrue(err.toString().contains("weft drill: drill-1 failed: cannot restart b: /proc/4242/cmdline is gone"),
                err.toString());
        assertEquals("", out.toString());
    }

    @Test
    void jsonPrintsTheFinalStatusAndNoProgress() throws Exception {
        drillAnswers(status("during", 0.5, null, ""), status("done", 1, report(0), ""));
        int exit = weft("drill", "m0", "--fault", "freeze", "--target", "b", "--overwrite", "--json",
                "--node", node.address());
        assertEquals(0, exit, err.toString());
        JsonNode printed = JSON.readTree(out.toString());
        assertEquals("done", printed.path("phase").asText());
        assertTrue(printed.path("report").path("intact").asBoolean());
        assertEquals(412.5, printed.path("report").path("longestStallMillis").asDouble());
        assertEquals("", err.toString());
        JsonNode body = JSON.readTree(node.requests("POST", "/weft/drills").get(0).body());
        assertFalse(body.has("restart"), "restart goes with kill only: " + body);
    }

    @Test
    void withoutOverwriteNothingIsSentAndTheMessageSaysWhy() {
        int exit = weft("drill", "m0", "--fault", "kill", "--target", "b", "--node", node.address());
        assertEquals(2, exit);
        assertTrue(err.toString().startsWith("weft drill: the drill overwrites the working set of m0"), err.toString());
        assertFalse(err.toString().contains("Usage:"), "one line, not the whole usage: " + err);
        assertTrue(err.toString().contains("--overwrite"), err.toString());
        assertTrue(node.requests.isEmpty(), "no request: " + node.requests);
    }

    @Test
    void invalidOptionsAreUsageErrors() {
        assertEquals(2, weft("drill", "m0", "--fault", "melt", "--target", "b", "--overwrite", "--node",
                node.address()));
        assertTrue(err.toString().contains("--fault is kill, freeze, flap, cut or client-kill"), err.toString());
        assertEquals(2, weft("drill", "m0", "--fault", "kill", "--path", "1", "--target", "b", "--overwrite",
                "--node", node.address()));
        assertTrue(err.toString().contains("--path goes with --fault cut only"), err.toString());
        assertEquals(2, weft("drill", "m0", "--fault", "cut", "--target", "b", "--overwrite", "--during", "soon",
                "--node", node.address()));
        assertTrue(err.toString().contains("--during: expected a duration"), err.toString());
        assertEquals(2, weft("drill", "m0", "--target", "b", "--overwrite", "--node", node.address()));
        assertTrue(node.requests.isEmpty(), "no request: " + node.requests);
    }

    @Test
    void aFlapSendsItsSchedule() throws Exception {
        drillAnswers(status("done", 1, report(0), ""));
        assertEquals(0, weft("drill", "m0", "--fault", "flap", "--target", "b", "--flaps", "4", "--freeze-for",
                "800ms", "--run-for", "1s", "--overwrite", "--node", node.address()), err.toString());
        JsonNode body = JSON.readTree(node.requests("POST", "/weft/drills").get(0).body());
        assertEquals("flap", body.path("fault").asText());
        assertEquals(4, body.path("flaps").asInt());
        assertEquals(800, body.path("freezeFor").asLong());
        assertEquals(1000, body.path("runFor").asLong());
        assertEquals(2, weft("drill", "m0", "--fault", "freeze", "--target", "b", "--flaps", "2", "--overwrite",
                "--node", node.address()));
        assertTrue(err.toString().contains("--flaps, --freeze-for and --run-for go with --fault flap only"),
                err.toString());
    }

    /** The client-kill driver reads its workload from the body the CLI built, through the node's own body record. */
    @Test
    void theClientKillWorkloadComesFromTheBodyTheCliBuilt() {
        ObjectNode body = JSON.createObjectNode().put("device", "m0").put("fault", "client-kill").put("overwrite", true)
                .put("seed", 11).put("queueDepth", 4).put("workingSet", 8L << 20).put("maxIo", 32768)
                .put("before", 100).put("during", 2500);
        io.weft.actors.drill.harness.DrillOptions o = DrillCommand.options(body);
        assertEquals(11, o.seed());
        assertEquals(4, o.queueDepth());
        assertEquals(8L << 20, o.workingSetBytes());
        assertEquals(32768, o.maxIoBytes());
        assertEquals(4096, o.minIoBytes(), "the default");
        assertEquals(100, o.beforeMillis());
        assertEquals(2500, o.duringMillis());
        assertEquals(2000, o.afterMillis(), "the default");
    }

    @Test
    void legsThatDifferAreADataProblemEvenWithEveryWriteIntact() throws Exception {
        DrillReport differing = new DrillReport("kill", 7, 412.5, 3.25, 180.0, 230.0, 950.0, 12000, 9000, 11800,
                45678, 30000, 12, 0, 0, 8192, 0, 0, 0, 0, 3, 8, 8, 8, 32L << 20, 64L << 20, 8192,
                List.of("leg 1 differs from leg 0 in [4096, 12288) (8 KiB at 0.00 MiB)"), List.of());
        drillAnswers(status("done", 1, differing, ""));
        int exit = weft("drill", "m0", "--fault", "kill", "--target", "b", "--overwrite", "--node", node.address());
        assertEquals(1, exit, err.toString());
        assertTrue(out.toString().contains("DATA PROBLEM: the mirror's legs differ in 8192 bytes (leg 1 differs"
                + " from leg 0 in [4096, 12288)"), out.toString());
        assertTrue(out.toString().contains("legs compared                 64 MiB, DIFFERENT in 8192 bytes"),
                out.toString());
    }

    @Test
    void aClientKillTakesNoTargetAndIsRefusedForANodeOnAnotherHost() throws Exception {
        assertEquals(2, weft("drill", "m0", "--fault", "client-kill", "--target", "b", "--overwrite", "--node",
                node.address()));
        assertTrue(err.toString().contains("--fault client-kill kills the node you talk to (--node): leave out"
                + " --target"), err.toString());
        assertEquals(2, weft("drill", "m0", "--fault", "kill", "--overwrite", "--node", node.address()));
        assertTrue(err.toString().contains("--target NODE is required"), err.toString());
        assertTrue(node.requests.isEmpty(), "no request: " + node.requests);

        node.on("GET /weft/node", 200, "{\"name\":\"c\",\"pid\":4242,\"bootId\":\"another-host\"}");
        assertEquals(2, weft("drill", "m0", "--fault", "client-kill", "--overwrite", "--node", node.address()));
        assertTrue(err.toString().contains("node c runs on another host (boot id another-host"), err.toString());
        assertTrue(node.requests("POST", "/weft/drills").isEmpty(), "a client-kill is not run by the node");
    }

    @Test
    void cutOfOnePathSendsItsIndex() throws Exception {
        drillAnswers(status("done", 1, report(0), ""));
        assertEquals(0, weft("drill", "m0", "--fault", "cut", "--path", "1", "--target", "b", "--overwrite",
                "--node", node.address()), err.toString());
        JsonNode body = JSON.readTree(node.requests("POST", "/weft/drills").get(0).body());
        assertEquals("cut", body.path("fault").asText());
        assertEquals(1, body.path("path").asInt());
    }

    @Test
    void aRefusedDrillIsAnApiErrorExitTwo() {
        node.on("POST /weft/drills", 409, "{\"error\":\"a drill is already running on m0 (drill-1)\"}");
        int exit = weft("drill", "m0", "--fault", "kill", "--target", "b", "--overwrite", "--node", node.address());
        assertEquals(2, exit);
        assertTrue(err.toString().contains("weft drill: a drill is already running on m0 (drill-1)"), err.toString());
    }

    @Test
    void noNodeIsAnApiErrorExitTwo() throws Exception {
        int port;
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            port = s.getLocalPort();
        }
        int exit = weft("drill", "m0", "--fault", "kill", "--target", "b", "--overwrite", "--node",
                "127.0.0.1:" + port);
        assertEquals(2, exit);
        assertTrue(err.toString().contains("no node answers at 127.0.0.1:" + port), err.toString());
    }

    @Test
    void theProgressLineShowsPhaseShareAndCounts() throws Exception {
        String line = DrillWatcher.progressLine(JSON.readTree(status("during", 0.4, null, "")));
        assertEquals("drill-1 kill b  [########------------]  40%  during        2.3 s  51234 requests", line);
        String done = DrillWatcher.progressLine(JSON.readTree(status("done", 0.97, report(0), "")));
        assertTrue(done.contains("[####################] 100%  done"), done);
    }
}
