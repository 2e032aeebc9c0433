package io.weft.node;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.weft.core.process.ChildJvm;
import io.weft.core.testing.RequiredTool;
import io.weft.node.cli.WeftMain;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * The client sub-commands (run in-process) against `weft node` running as a child JVM with a token, checked from
 * outside with nbdinfo. The steps build on each other, so they run in order against one node.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class CliIT {
    private static final String TOKEN = "s3cret";
    private static final Pattern READY = Pattern.compile(
            "weft node ready: unix=(\\S+) http=(127\\.0\\.0\\.1:\\d+) cluster=\\S+ volumes=1 pid=\\d+");
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    static Path cwd;
    private static ChildJvm node;
    private static String http;
    private static Path socket;
    private static String nbdinfo;

    private record Result(int exit, String out, String err) {
        @Override
        public String toString() {
            return "exit " + exit + "\nstdout:\n" + out + "\nstderr:\n" + err;
        }
    }

    @BeforeAll
    static void startNode() throws Exception {
        nbdinfo = RequiredTool.require("nbdinfo", "libnbd-bin").toString();
        node = WeftJvm.start(cwd, List.of(), "node", "--nbd-listen", "off", "--http-listen", "127.0.0.1:0",
                "--cluster-port", "0", "--token", TOKEN, "--name", "n1");
        Matcher ready = READY.matcher(node.awaitLine("weft node ready:", Duration.ofSeconds(90)));
        assertTrue(ready.matches(), node.output());
        socket = Path.of(ready.group(1));
        http = ready.group(2);
    }

    @AfterAll
    static void stopNode() throws Exception {
        if (node != null) {
            node.signal("TERM");
            assertEquals(0, node.awaitExit(Duration.ofSeconds(60)), node.output());
            node.close();
        }
    }

    private static Result weft(String... args) {
        List<String> all = new ArrayList<>(List.of(args));
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        CommandLine cli = WeftMain.commandLine();
        cli.setOut(new PrintWriter(out, true));
        cli.setErr(new PrintWriter(err, true));
        int exit = cli.execute(all.toArray(String[]::new));
        return new Result(exit, out.toString(), err.toString());
    }

    private static Result onNode(String... args) {
        List<String> all = new ArrayList<>(List.of(args));
        all.addAll(List.of("--node", http));
        return weft(all.toArray(String[]::new));
    }

    private static Result changing(String... args) {
        List<String> all = new ArrayList<>(List.of(args));
        all.addAll(List.of("--node", http, "--token", TOKEN));
        return weft(all.toArray(String[]::new));
    }

    /** nbdinfo --size of an export on the node's socket; exit code and output. */
    private static Result nbdSize(String export) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(nbdinfo, "--size", "nbd+unix:///" + export + "?socket=" + socket)
                .redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "nbdinfo hung");
        return new Result(p.exitValue(), out.trim(), "");
    }

    @Test
    @Order(1)
    void statusShowsTheDefaultVolumeAsAReadyDevice() {
        // No --token: the CLI finds the node's token in the user's runtime directory by itself.
        Result r = onNode("status");
        assertEquals(0, r.exit(), r.toString());
        assertTrue(r.out().startsWith("node n1  Up  roles "), r.toString());
        Matcher vol0 = Pattern.compile("(?m)^vol0\\s+ready\\s+1 GiB\\s+rw\\s+n1\\s+\\S+vol0\\.img\\s+inprocess\\s")
                .matcher(r.out());
        assertTrue(vol0.find(), r.toString());
    }

    @Test
    @Order(2)
    void statusJsonParses() throws IOException {
        Result r = onNode("status", "--json");
        assertEquals(0, r.exit(), r.toString());
        JsonNode status = JSON.readTree(r.out());
        assertEquals("n1", status.path("node").path("name").asText());
        assertEquals(1, status.path("devices").size(), r.out());
        JsonNode vol0 = status.path("devices").get(0);
        assertEquals("vol0", vol0.path("id").asText());
        assertEquals(1L << 30, vol0.path("size").asLong());
        assertEquals("ready", vol0.path("state").asText());
        assertTrue(status.path("volumes").toString().contains("vol0.img"), r.out());
    }

    @Test
    @Order(3)
    void aChangeWithoutTheTokenIsRefusedSayingWhatToDo() throws Exception {
        // A CLI that finds no token for the node (a node run by another user leaves it in that user's runtime dir).
        Path empty = Files.createDirectories(cwd.resolve("empty-runtime"));
        Result r;
        System.setProperty("weft.management.http.runtime-dir", empty.toString());
        try {
            r = onNode("volume", "create", "nope.img", "--size", "1MiB");
        } finally {
            System.clearProperty("weft.management.http.runtime-dir");
        }
        assertEquals(1, r.exit(), r.toString());
        // (volume create asks GET /weft/node first: refused there, before anything could change)
        assertTrue(r.err().startsWith("weft volume create: " + http + " refused GET /weft/node: it needs a token"),
                r.toString());
        assertTrue(r.err().contains("no token for " + http + " in " + empty), r.toString());
        assertTrue(r.err().contains("--token TOKEN or set WEFT_TOKEN"), r.toString());
        Result wrong = weft("map", "x", "--path", "vol0.img", "--node", http, "--token", "wrong");
        assertEquals(1, wrong.exit(), wrong.toString());
        assertTrue(wrong.err().contains("needs a token"), wrong.toString());
    }

    @Test
    @Order(4)
    void aCreatedAndMappedVolumeIsAnNbdExport() throws Exception {
        Result created = changing("volume", "create", "vol1.img", "--size", "64MiB");
        assertEquals(0, created.exit(), created.toString());
        assertTrue(created.out().startsWith("created "), created.toString());

        Result mapped = changing("map", "vol1", "--path", "vol1.img");
        assertEquals(0, mapped.exit(), mapped.toString());
        assertTrue(mapped.out().contains("vol1"), mapped.toString());
        Result size = nbdSize("vol1");
        assertEquals(0, size.exit(), size.toString());
        assertEquals(Long.toString(64L << 20), size.out());

        Result again = changing("map", "vol1", "--path", "vol1.img", "--json");
        assertEquals(1, again.exit(), again.toString());
        assertFalse(JSON.readTree(again.out()).path("ok").asBoolean(true), again.toString());
        assertTrue(again.err().startsWith("weft map: device vol1 already exists"), again.toString());
    }

    @Test
    @Order(5)
    void resizeReachesTheNbdExport() throws Exception {
        Result resized = changing("resize", "vol1", "--size", "128MiB", "--json");
        assertEquals(0, resized.exit(), resized.toString());
        assertTrue(JSON.readTree(resized.out()).path("ok").asBoolean(), resized.toString());
        Result size = nbdSize("vol1");
        assertEquals(0, size.exit(), size.toString());
        assertEquals(Long.toString(128L << 20), size.out());
    }

    @Test
    @Order(6)
    void unmapRemovesTheExport() throws Exception {
        Result unmapped = changing("unmap", "vol1", "--force");
        assertEquals(0, unmapped.exit(), unmapped.toString());
        assertNotEquals(0, nbdSize("vol1").exit(), "the export is gone");
        assertEquals(0, nbdSize("vol0").exit(), "vol0 is still served");
        Result status = onNode("status");
        assertFalse(status.out().contains("\nvol1 "), status.toString());
        Result missing = changing("remap", "vol1");
        assertEquals(1, missing.exit(), missing.toString());
        assertTrue(missing.err().contains("vol1"), missing.toString());
    }

    @Test
    @Order(7)
    void noNodeAtTheAddressIsExplained() throws IOException {
        int free;
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            free = s.getLocalPort();
        }
        Result r = weft("status", "--node", "127.0.0.1:" + free);
        assertEquals(3, r.exit(), r.toString());
        assertEquals("weft status: no node answers at 127.0.0.1:" + free + ": is `weft node` running? start it with"
                + " ./weft node --http-listen 127.0.0.1:" + free + " (or point --node at its management address)",
                r.err().trim());
    }
}
