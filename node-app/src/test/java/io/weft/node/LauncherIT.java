package io.weft.node;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The {@code ./weft} launcher at the repository root, run from an unrelated directory against the node-app just
 * packaged by this build (WEFT_NO_BUILD keeps it from starting a nested Maven build).
 */
class LauncherIT {
    private static final Path LAUNCHER = Path.of("..", "weft").toAbsolutePath().normalize();

    @TempDir
    Path elsewhere;

    private record Result(int exit, String output) {
    }

    private Result weft(String... args) throws IOException, InterruptedException {
        List<String> cmd = new java.util.ArrayList<>(List.of(LAUNCHER.toString()));
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(elsewhere.toFile()).redirectErrorStream(true);
        pb.environment().put("WEFT_NO_BUILD", "1");
        pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "weft " + String.join(" ", args) + " hung");
        return new Result(p.exitValue(), out);
    }

    @Test
    void runsThePackagedNodeFromAnyDirectory() throws Exception {
        assertTrue(Files.isExecutable(LAUNCHER), LAUNCHER + " is executable");
        Result version = weft("--version");
        assertEquals(0, version.exit(), version.output());
        assertTrue(version.output().startsWith("weft "), version.output());

        Result help = weft("node", "--help");
        assertEquals(0, help.exit(), help.output());
        assertTrue(help.output().contains("--nbd-listen"), help.output());
    }

    @Test
    void passesTheExitCodeOfAnInvalidSettingThrough() throws Exception {
        Result bad = weft("node", "--data-dir", "d", "-Dweft.nbd.listen=nowhere");
        assertEquals(2, bad.exit(), bad.output());
        assertEquals("weft node: weft.nbd.listen: expected HOST:PORT (or \"off\"), got \"nowhere\"",
                bad.output().trim());
        assertTrue(Files.notExists(elsewhere.resolve("d")), "nothing created");
    }
}
