package io.weft.node;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.process.ChildJvm;
import io.weft.core.testing.RequiredTool;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * End to end: `weft node` as a child JVM with the default volume, probed by real NBD clients, then stopped by a
 * signal. Needs qemu-utils and libnbd-bin.
 */
class WeftNodeIT {
    private static final Pattern READY = Pattern.compile(
            "weft node ready: nbd=127\\.0\\.0\\.1:(\\d+) unix=(\\S+) http=127\\.0\\.0\\.1:(\\d+)"
                    + " cluster=127\\.0\\.0\\.1:\\d+ volumes=1 pid=\\d+");

    @TempDir
    Path cwd;

    private static String run(String... command) throws IOException, InterruptedException {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError(String.join(" ", command) + " hung");
        }
        assertEquals(0, p.exitValue(), String.join(" ", command) + ":\n" + out);
        return out;
    }

    /** A GET with the management token the node keeps in its data dir (./data/management.token). */
    private HttpResponse<String> get(String url) throws IOException, InterruptedException {
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(url));
        Path token = cwd.resolve("data").resolve("management.token");
        if (Files.exists(token)) {
            request.header("Authorization", "Bearer " + Files.readString(token).strip());
        }
        return HttpClient.newHttpClient().send(request.build(), HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void servesTheDefaultVolumeToRealClientsAndFlushesOnSigterm() throws Exception {
        String qemuImg = RequiredTool.require("qemu-img", "qemu-utils").toString();
        String qemuIo = RequiredTool.require("qemu-io", "qemu-utils").toString();
        String nbdinfo = RequiredTool.require("nbdinfo", "libnbd-bin").toString();
        try (ChildJvm node = WeftJvm.start(cwd, List.of(), "node",
                "--nbd-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--cluster-port", "0")) {
            Matcher ready = READY.matcher(node.awaitLine("weft node ready:", Duration.ofSeconds(60)));
            assertTrue(ready.matches(), node.output());
            int port = Integer.parseInt(ready.group(1));
            Path socket = Path.of(ready.group(2));
            assertEquals(cwd.resolve("data").resolve("nbd.sock").toRealPath(), socket.toRealPath());
            String tcp = "nbd://127.0.0.1:" + port + "/vol0";
            String unix = "nbd+unix:///vol0?socket=" + socket;
            assertTrue(node.output().contains("qemu-img info " + tcp), "start-up says what to try:\n" + node.output());

            String info = run(qemuImg, "info", "--output=json", tcp);
            assertTrue(info.replace(" ", "").contains("\"virtual-size\":1073741824"), info);
            assertEquals("1073741824", run(nbdinfo, "--size", unix).trim());

            run(qemuIo, "-f", "raw", "-c", "write -P 0xa5 4096 1M", tcp);

            String http = "http://127.0.0.1:" + ready.group(3);
            HttpResponse<String> readiness = get(http + "/ready");
            assertEquals(200, readiness.statusCode());
            HttpResponse<String> devices = get(http + "/weft/devices");
            assertEquals(200, devices.statusCode());
            String compact = devices.body().replaceAll("\\s", "");
            assertTrue(compact.contains("\"id\":\"vol0\"") && compact.contains("\"state\":\"ready\"")
                    && compact.contains("\"transport\":\"inprocess\"") && compact.contains("\"size\":1073741824"),
                    devices.body());
            HttpResponse<String> metrics = get(http + "/metrics");
            assertEquals(200, metrics.statusCode());
            assertTrue(Pattern.compile("(?m)^weft_device_bytes_total\\{[^}]*device=\"vol0\"[^}]*direction=\"write\"\\}"
                    + " 1048576(\\.0)?$").matcher(metrics.body()).find(), metrics.body());

            // The README's quick start: `./weft status` with no token and no option finds the node's token (the
            // node left it in the user's runtime directory for its address).
            java.io.StringWriter statusOut = new java.io.StringWriter();
            java.io.StringWriter statusErr = new java.io.StringWriter();
            picocli.CommandLine cli = io.weft.node.cli.WeftMain.commandLine();
            cli.setOut(new java.io.PrintWriter(statusOut, true));
            cli.setErr(new java.io.PrintWriter(statusErr, true));
            assertEquals(0, cli.execute("status", "--node", "127.0.0.1:" + ready.group(3)),
                    statusOut + "\n" + statusErr);
            assertTrue(statusOut.toString().contains("vol0"), statusOut.toString());
            assertTrue(node.output().contains("Console: " + http + "/  (sign in once with this link: " + http
                    + "/login?code="), "start-up prints the console's sign-in link:\n" + node.output());

            node.signal("TERM");
            assertEquals(0, node.awaitExit(Duration.ofSeconds(60)), node.output());
            assertTrue(node.output().contains("stopped: every device flushed"), node.output());
            assertFalse(Files.exists(socket), "the Unix socket is removed");
        }
        Path image = cwd.resolve("data").resolve("vol0.img");
        assertEquals(1L << 30, Files.size(image));
        try (FileChannel ch = FileChannel.open(image)) {
            ByteBuffer written = ByteBuffer.allocate(1 << 20);
            ch.read(written, 4096);
            byte[] expected = new byte[1 << 20];
            Arrays.fill(expected, (byte) 0xa5);
            assertArrayEquals(expected, written.array());
        }
    }

    @Test
    void sigintStopsCleanlyToo() throws Exception {
        try (ChildJvm node = WeftJvm.start(cwd, List.of(), "node", "--data-dir", "elsewhere",
                "--nbd-listen", "off", "--http-listen", "off", "--cluster-port", "0")) {
            node.awaitLine("weft node ready:", Duration.ofSeconds(60));
            assertTrue(Files.exists(cwd.resolve("elsewhere/vol0.img")));
            node.signal("INT");
            assertEquals(0, node.awaitExit(Duration.ofSeconds(60)), node.output());
        }
    }

    /**
     * Issue 13: one extra {@code --export-root} used to replace the data dir as export root, so the default vol0 in
     * the data dir was refused and the node exited. The data dir stays a root for the node's own volumes.
     */
    @Test
    void anExtraExportRootKeepsTheDefaultVolumeInTheDataDir() throws Exception {
        Path extra = Files.createDirectories(cwd.resolve("extra"));
        try (ChildJvm node = WeftJvm.start(cwd, List.of(), "node", "--export-root", extra.toString(),
                "--nbd-listen", "127.0.0.1:0", "--nbd-unix", "off", "--http-listen", "127.0.0.1:0",
                "--cluster-port", "0")) {
            String ready = node.awaitLine("weft node ready:", Duration.ofSeconds(60));
            assertTrue(ready.contains(" volumes=1 "), node.output());
            Matcher http = Pattern.compile("http=(127\\.0\\.0\\.1:\\d+)").matcher(ready);
            assertTrue(http.find(), ready);
            String volumes = get("http://" + http.group(1) + "/weft/volumes").body().replaceAll("\\s", "");
            // vol0.img is listed because the data dir is still an export root
            assertTrue(volumes.contains("vol0.img") && volumes.contains("\"open\":true"), volumes);
            String devices = get("http://" + http.group(1) + "/weft/devices").body().replaceAll("\\s", "");
            assertTrue(devices.contains("\"id\":\"vol0\"") && devices.contains("\"state\":\"ready\""), devices);
            node.signal("TERM");
            assertEquals(0, node.awaitExit(Duration.ofSeconds(60)), node.output());
        }
    }

    @Test
    void aPortInUseIsNamedAndNothingKeepsRunning() throws Exception {
        try (ServerSocket taken = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
             ChildJvm node = WeftJvm.start(cwd, List.of(), "node", "--http-listen", "off", "--cluster-port", "0",
                     "--nbd-unix", "off", "--nbd-listen", "127.0.0.1:" + taken.getLocalPort())) {
            assertEquals(1, node.awaitExit(Duration.ofSeconds(60)), node.output());
            assertTrue(node.output().contains("weft node: weft.nbd.listen: cannot listen on 127.0.0.1:"
                    + taken.getLocalPort()), node.output());
            assertFalse(node.output().contains("\tat "), "no stack trace:\n" + node.output());
        }
    }
}
