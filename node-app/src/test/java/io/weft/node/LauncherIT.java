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

    /**
     * A client command's class path is the launcher's lean one and nothing more: the packaged jar's manifest
     * {@code Class-Path} (lib/..., for {@code java -jar}) must not resolve next to the jar the launcher runs, or the
     * JVM appends every jar of node-app/target/lib to it, Pekko included, and starts slower.
     */
    @Test
    void aClientCommandGetsOnlyTheLeanClassPath() throws Exception {
        Path jdk = Files.createDirectories(elsewhere.resolve("fake-jdk/bin"));
        Path args = elsewhere.resolve("java-args");
        Path fakeJava = jdk.resolve("java");
        Files.writeString(fakeJava, "#!/bin/sh\nprintf '%s\\n' \"$@\" > '" + args + "'\n");
        assertTrue(fakeJava.toFile().setExecutable(true));
        Files.writeString(jdk.getParent().resolve("release"), "JAVA_VERSION=\"17.0.99\"\n");
        List<String> cmd = List.of(LAUNCHER.toString(), "status", "--node", "127.0.0.1:1");
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(elsewhere.toFile()).redirectErrorStream(true);
        pb.environment().put("WEFT_NO_BUILD", "1");
        pb.environment().put("WEFT_CDS", "off");
        pb.environment().put("JAVA_HOME", jdk.getParent().toString());
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "weft status hung");
        assertEquals(0, p.exitValue(), out);

        List<String> javaArgs = Files.readAllLines(args);
        String classPath = javaArgs.get(javaArgs.indexOf("-cp") + 1);
        List<String> reachable = new java.util.ArrayList<>();
        for (String entry : classPath.split(":")) {
            Path jar = Path.of(entry);
            reachable.add(jar.getFileName().toString());
            try (java.util.jar.JarFile file = new java.util.jar.JarFile(jar.toFile())) {
                java.util.jar.Manifest manifest = file.getManifest();
                String manifestPath = manifest == null ? null
                        : manifest.getMainAttributes().getValue(java.util.jar.Attributes.Name.CLASS_PATH);
                for (String relative : manifestPath == null ? new String[0] : manifestPath.trim().split("\\s+")) {
                    if (Files.exists(jar.getParent().resolve(relative))) {
                        reachable.add(relative + " (from " + jar.getFileName() + "'s manifest)");
                    }
                }
            }
        }
        assertEquals(6, reachable.size(), "the CLI, picocli, three Jackson jars and fabric-core: " + reachable);
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
