package io.weft.node;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.process.ChildJvm;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code weft demo --no-wait} in a child JVM: three more JVMs, a mirrored device over CXL, a kill -9 of storage node
 * a under IO. The report must say every acknowledged write is intact with the longest stall within a second, and
 * the demo must leave nothing running: neither its nodes nor the node a the drill restarted, nor the region. Node
 * logs: {@code target/demo-it/run-*}.
 */
class DemoIT {
    private static final Pattern STALL = Pattern.compile("(?m)^\\s+longest IO stall\\s+([0-9.]+) ms");
    private static final Pattern PIDS = Pattern.compile("nodes up: a pid (\\d+) .*, b pid (\\d+) .*, c pid (\\d+) ");
    private static final Pattern RESTARTED = Pattern.compile("restarted by the drill as pid (\\d+)");
    private static final Pattern REGION = Pattern.compile("formatted CXL region (\\S+)");

    @TempDir
    Path cwd;

    /** The nodes' data and logs, kept under target/ for a look after a failure (CI keeps target/ of failed runs). */
    private static Path demoDir() {
        return Path.of("target", "demo-it", "run-" + ProcessHandle.current().pid() + "-" + System.nanoTime())
                .toAbsolutePath();
    }

    @Test
    void aStorageNodeDiesUnderIoWithinTheStallBoundAndNothingIsLost() throws Exception {
        Path dir = demoDir();
        String output;
        int exit;
        try (ChildJvm demo = WeftJvm.start(cwd, List.of(), "demo", "--no-wait", "--transport", "cxl",
                "--dir", dir.toString())) {
            exit = demo.awaitExit(Duration.ofSeconds(600));
            output = demo.output();
        }
        System.out.println(output);   // the report's numbers in the build log of every run, not only failed ones
        assertEquals(0, exit, "node logs in " + dir + "\n" + output);
        assertTrue(output.contains("drill kill (seed "), output);
        assertTrue(output.contains("every acknowledged write intact"), output);
        Matcher stall = STALL.matcher(output);
        assertTrue(stall.find(), output);
        double stallMillis = Double.parseDouble(stall.group(1));
        assertTrue(stallMillis <= 1000, "longest IO stall " + stallMillis + " ms is above a second:\n" + output);
        assertTrue(output.contains("within the 1000 ms bound"), output);
        assertTrue(output.contains("nbd://127.0.0.1:") && output.contains("nbd+unix:///demo0?socket="), output);
        assertTrue(output.contains("./weft drill demo0 --target b --fault freeze --overwrite --node 127.0.0.1:"),
                output);

        List<Long> pids = new ArrayList<>();
        Matcher up = PIDS.matcher(output);
        assertTrue(up.find(), output);
        for (int i = 1; i <= 3; i++) {
            pids.add(Long.parseLong(up.group(i)));
        }
        Matcher restarted = RESTARTED.matcher(output);
        assertTrue(restarted.find(), "node a came back after the kill:\n" + output);
        pids.add(Long.parseLong(restarted.group(1)));
        for (long pid : pids) {
            assertFalse(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false),
                    "pid " + pid + " still runs after the demo:\n" + output);
        }
        Matcher region = REGION.matcher(output);
        assertTrue(region.find(), output);
        assertFalse(Files.exists(Path.of(region.group(1))), "the region is removed");
        for (String node : List.of("a", "b", "c")) {
            assertTrue(Files.size(dir.resolve(node + ".log")) > 0, node + ".log is kept with --dir");
        }
    }
}
