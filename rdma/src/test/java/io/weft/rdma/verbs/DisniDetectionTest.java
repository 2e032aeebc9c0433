package io.weft.rdma.verbs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.rdma.verbs.disni.DisniProbe;
import io.weft.rdma.verbs.disni.DisniProvider;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The parts of the DiSNI provider that need no RDMA hardware: detection, the clear errors, the auto fallback and
 * the one-time log line. This machine has no libdisni; where one exists the positive branch is checked instead.
 */
class DisniDetectionTest {
    @TempDir
    Path dir;

    @Test
    void freshJvmExplainsBothLinkageErrorsAndFallsBackOnce() throws Exception {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-opens", "java.base/jdk.internal.misc=ALL-UNNAMED", "--add-opens",
                "java.base/java.nio=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"),
                DisniProbeMain.class.getName()));
        Path err = dir.resolve("stderr.txt");
        Process p = new ProcessBuilder(cmd).redirectError(err.toFile()).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "probe JVM did not finish");
        String log = Files.readString(err);
        String first = line(out, "FIRST ");
        String second = line(out, "SECOND ");
        long logged = log.lines().filter(l -> l.contains("RDMA verbs provider:")).count();
        assertEquals(1, logged, "the provider choice is logged exactly once per JVM:\n" + log);
        if (first.startsWith("false")) {
            assertTrue(first.contains("libdisni is not installed") && first.contains("UnsatisfiedLinkError"), first);
            assertTrue(second.contains("libdisni is not installed") && second.contains("earlier"), second);
            assertEquals("software software", line(out, "AUTO "));
            assertTrue(log.contains("using the software provider"), log);
            String disni = line(out, "DISNI ");
            assertTrue(disni.startsWith("refused RDMA provider 'disni' configured but unavailable: libdisni"), disni);
        } else {
            assertEquals("disni disni", line(out, "AUTO "));
        }
    }

    private static String line(String out, String prefix) {
        return out.lines().filter(l -> l.startsWith(prefix)).map(l -> l.substring(prefix.length())).findFirst()
                .orElseThrow(() -> new AssertionError("no '" + prefix + "' in:\n" + out));
    }

    @Test
    void missingDeviceIsExplainedWithTheSoftRoceHint() {
        String why = DisniProbe.explain(new IOException("rdma_create_event_channel: No such device"));
        assertTrue(why.contains("no RDMA device") && why.contains("rdma link add rxe0 type rxe"), why);
        assertTrue(DisniProbe.explain(new UnsatisfiedLinkError("no disni in java.library.path"))
                .startsWith("libdisni is not installed"));
        assertTrue(DisniProbe.explain(new NoClassDefFoundError("Could not initialize class NativeDispatcher"))
                .startsWith("libdisni is not installed"));
    }

    @Test
    void configuredDisniFailsClearlyWithoutLibdisni() {
        DisniProbe.Result r = DisniProbe.probe();
        if (r.available()) {
            return; // an RDMA machine: nothing to refuse (the fresh-JVM test checks the positive branch)
        }
        RdmaUnavailableException e = assertThrows(RdmaUnavailableException.class,
                () -> VerbsProviders.open(VerbsProviders.Mode.DISNI));
        assertTrue(e.getMessage().contains("libdisni"), e.getMessage());
        assertThrows(RdmaUnavailableException.class, DisniProvider::new);
        assertEquals("software", VerbsProviders.open(VerbsProviders.Mode.AUTO).provider().name());
        assertEquals(r, DisniProbe.probe(), "the probe runs once and is cached");
    }

    @Test
    void modeParsing() {
        assertEquals(VerbsProviders.Mode.AUTO, VerbsProviders.Mode.parse(" Auto "));
        assertEquals(VerbsProviders.Mode.SOFTWARE, VerbsProviders.Mode.parse("software"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> VerbsProviders.Mode.parse("infiniband"));
        assertTrue(e.getMessage().contains("disni, software or auto"));
    }
}
