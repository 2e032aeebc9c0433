package io.weft.node;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.testing.RequiredTool;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The distribution built by this module's {@code package} ({@code target/weft-VERSION.tar.gz}), unpacked into an
 * empty directory and used as an operator would: a node started with {@code bin/weft node}, a volume created and
 * mapped with the CLI from the tarball, written and read back over NBD by qemu-io, then stopped with SIGTERM. Every
 * process runs from the unpacked tree with a minimal environment (no Maven, nothing of the source tree on a class
 * path, checked on the node's command line). Needs qemu-utils and libnbd-bin.
 */
class DistributionIT {
    private static final Pattern READY = Pattern.compile(
            "weft node ready: nbd=127\\.0\\.0\\.1:(\\d+) http=(127\\.0\\.0\\.1:\\d+) cluster=\\S+"
                    + " volumes=1 pid=(\\d+)");
    private static final Path SOURCE_TREE = Path.of("..").toAbsolutePath().normalize();

    @TempDir
    Path empty;

    private Path home;
    private Path cache;

    private record Result(int exit, String output) {
    }

    private static Path tarball() throws IOException {
        try (Stream<Path> files = Files.list(Path.of("target"))) {
            List<Path> found = files.filter(p -> p.getFileName().toString().matches("weft-.+\\.tar\\.gz")).toList();
            assertEquals(1, found.size(), "exactly one weft-VERSION.tar.gz in target/: " + found);
            return found.get(0).toAbsolutePath();
        }
    }

    /** A minimal environment: PATH for the system tools, a HOME of its own, Java from JAVA_HOME. */
    private ProcessBuilder command(Path workDir, List<String> command) {
        ProcessBuilder pb = new ProcessBuilder(command).directory(workDir.toFile()).redirectErrorStream(true);
        Map<String, String> env = pb.environment();
        env.clear();
        env.put("PATH", "/usr/local/bin:/usr/bin:/bin");
        env.put("HOME", home.toString());
        env.put("WEFT_CACHE_DIR", cache.toString());
        env.put("WEFT_RUNTIME_DIR", home.resolve("run").toString());   // where the node leaves its token for the CLI
        env.put("JAVA_HOME", System.getProperty("java.home"));
        return pb;
    }

    private Result run(Path workDir, List<String> command) throws IOException, InterruptedException {
        Process p = command(workDir, command).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError(String.join(" ", command) + " hung; output:\n" + out);
        }
        return new Result(p.exitValue(), out);
    }

    private Result ok(Path workDir, String... command) throws IOException, InterruptedException {
        Result r = run(workDir, List.of(command));
        assertEquals(0, r.exit(), String.join(" ", command) + ":\n" + r.output());
        return r;
    }

    /** Waits (polling, with a deadline) for a line of the node's log file that starts with {@code prefix}. */
    private static String awaitLine(Path log, Process node, String prefix, long seconds) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        while (System.nanoTime() < deadline) {
            for (String line : Files.readAllLines(log, StandardCharsets.UTF_8)) {
                if (line.startsWith(prefix)) {
                    return line;
                }
            }
            if (!node.isAlive()) {
                throw new AssertionError("the node exited with " + node.exitValue() + "; output:\n"
                        + Files.readString(log));
            }
            node.waitFor(100, TimeUnit.MILLISECONDS);
        }
        throw new AssertionError("no '" + prefix + "' within " + seconds + " s; output:\n" + Files.readString(log));
    }

    @Test
    void aNodeRunsFromTheUnpackedTarballAlone() throws Exception {
        String qemuIo = RequiredTool.require("qemu-io", "qemu-utils").toString();
        String nbdinfo = RequiredTool.require("nbdinfo", "libnbd-bin").toString();
        home = Files.createDirectories(empty.resolve("home"));
        cache = home.resolve(".cache/weft");
        Path unpacked = Files.createDirectories(empty.resolve("opt"));
        Path work = Files.createDirectories(empty.resolve("work"));
        ok(unpacked, "tar", "-xzf", tarball().toString(), "-C", unpacked.toString());
        List<Path> top;
        try (Stream<Path> s = Files.list(unpacked)) {
            top = s.toList();
        }
        assertEquals(1, top.size(), "one top directory weft-VERSION: " + top);
        Path dist = top.get(0);
        assertTrue(dist.getFileName().toString().startsWith("weft-"), dist.toString());

        Path weft = dist.resolve("bin/weft");
        assertTrue(Files.isExecutable(weft), "bin/weft is executable");
        assertTrue(Files.isRegularFile(dist.resolve("lib/weft-node.jar")), "lib/weft-node.jar");
        assertTrue(Files.isRegularFile(dist.resolve("README.md")) && Files.isRegularFile(dist.resolve("docs/cli.md")),
                "README.md and docs/");
        assertTrue(Files.isRegularFile(dist.resolve("config/single-node.conf")), "example configs");
        String unit = Files.readString(dist.resolve("config/weft.service"));
        assertTrue(unit.contains("ExecStart=/opt/weft/bin/weft node") && unit.contains("User=weft")
                && unit.contains("WEFT_TOKEN"), unit);
        assertCompletionWorks(dist.resolve("share/bash-completion/completions/weft"), work);

        Path data = empty.resolve("data");
        Path log = empty.resolve("node.log");
        ProcessBuilder start = command(work, List.of(weft.toString(), "node", "--data-dir", data.toString(),
                "--nbd-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--cluster-port", "0",
                "--nbd-unix", "off"));
        start.redirectOutput(log.toFile());
        Process node = start.start();
        try {
            Matcher ready = READY.matcher(awaitLine(log, node, "weft node ready:", 120));
            assertTrue(ready.matches(), Files.readString(log));
            int nbdPort = Integer.parseInt(ready.group(1));
            String http = ready.group(2);
            assertEquals(node.pid(), Long.parseLong(ready.group(3)), "bin/weft execs the JVM: signals reach it");
            String cmdline = Files.readString(Path.of("/proc", Long.toString(node.pid()), "cmdline"))
                    .replace('\0', ' ');
            assertFalse(cmdline.contains(SOURCE_TREE.toString()), "nothing from the source tree: " + cmdline);
            assertTrue(cmdline.contains(dist.resolve("lib").toString()), cmdline);

            ok(work, weft.toString(), "volume", "create", "scratch.img", "--size", "64MiB", "--node", http);
            Result mapped = ok(work, weft.toString(), "map", "scratch", "--path", "scratch.img", "--node", http);
            String export = "nbd://127.0.0.1:" + nbdPort + "/scratch";
            assertTrue(mapped.output().contains("exported at " + export), mapped.output());

            assertEquals("67108864", ok(work, nbdinfo, "--size", export).output().trim());
            ok(work, qemuIo, "-f", "raw", "-c", "write -P 0x5a 65536 1M", export);
            Result read = ok(work, qemuIo, "-f", "raw", "-c", "read -P 0x5a 65536 1M", export);
            assertTrue(read.output().contains("read 1048576/1048576 bytes")
                    && !read.output().contains("Pattern verification failed"), read.output());

            // a client command loads neither Pekko nor logback (the launcher's lean class path), here with the
            // AppCDS archive the first client command made
            try (Stream<Path> archives = Files.list(cache)) {
                assertTrue(archives.anyMatch(p -> p.toString().endsWith(".jsa")), "an AppCDS archive in " + cache);
            }
            Path classes = empty.resolve("classes.log");
            Result status = run(work, List.of("env", "WEFT_JAVA_OPTS=-Xlog:class+load:file=" + classes,
                    weft.toString(), "status", "--node", http));
            assertEquals(0, status.exit(), status.output());
            assertTrue(status.output().contains("scratch") && status.output().contains("vol0"), status.output());
            String loaded = Files.readString(classes);
            assertTrue(loaded.contains("io.weft.node.cli.client.StatusCommand"), "class log written");
            assertFalse(loaded.contains("org.apache.pekko") || loaded.contains("ch.qos.logback")
                    || loaded.contains("scala."), "a client command loads no Pekko, Scala or logback");
            assertFalse(loaded.contains("sun.security.ssl.TrustStoreManager"),
                    "a client command talking plain HTTP does not load the CA trust store");
            // what made a command take 1.2 s on a quiet machine (docs/BENCHMARKS.md, "CLI start-up time"): the
            // actors jar for the token lookup, java.net.http's client, and picocli's classes outside the archive
            assertFalse(loaded.contains(" io.weft.actors."), "a client command does not load the actors jar:\n"
                    + linesContaining(loaded, " io.weft.actors."));
            assertFalse(loaded.contains(" jdk.internal.net.http."), "a client command does not build "
                    + "java.net.http's client:\n" + linesContaining(loaded, " jdk.internal.net.http."));
            assertFalse(loaded.contains(" com.fasterxml.jackson.databind.ObjectMapper "), "a client command reads "
                    + "and writes JSON without an ObjectMapper (JsonText)");
            for (String cls : List.of("picocli.CommandLine", "io.weft.node.cli.client.StatusCommand",
                    "com.fasterxml.jackson.core.JsonFactory", "io.weft.core.management.ManagementTokenFiles")) {
                String line = linesContaining(loaded, " " + cls + " source:");
                assertTrue(line.contains(cls + " source: shared objects file"),
                        cls + " comes from the AppCDS archive, not from its jar: " + line);
            }

            Process kill = new ProcessBuilder("kill", "-TERM", Long.toString(node.pid())).inheritIO().start();
            assertEquals(0, kill.waitFor());
            assertTrue(node.waitFor(90, TimeUnit.SECONDS), "the node stops on SIGTERM:\n" + Files.readString(log));
            assertEquals(0, node.exitValue(), Files.readString(log));
            assertTrue(Files.readString(log).contains("stopped: every device flushed"), Files.readString(log));
        } finally {
            if (node.isAlive()) {
                node.destroyForcibly();
            }
        }
        assertEquals(64L << 20, Files.size(data.resolve("scratch.img")));
    }

    private static String linesContaining(String text, String part) {
        return String.join("\n", text.lines().filter(l -> l.contains(part)).limit(10).toList());
    }

    /** The generated completion script completes sub-commands and their options in bash. */
    private void assertCompletionWorks(Path script, Path work) throws IOException, InterruptedException {
        assertTrue(Files.isRegularFile(script), script + " exists");
        List<String> bash = new ArrayList<>(List.of("bash", "-c", "source \"$1\"; "
                + "COMP_WORDS=(weft sta); COMP_CWORD=1; COMP_LINE='weft sta'; COMP_POINT=8; _complete_weft; "
                + "echo \"commands: ${COMPREPLY[*]}\"; "
                + "COMP_WORDS=(weft node --data); COMP_CWORD=2; COMP_LINE='weft node --data'; COMP_POINT=16; "
                + "_complete_weft; echo \"options: ${COMPREPLY[*]}\"", "bash", script.toString()));
        Result r = ok(work, bash.toArray(String[]::new));
        assertTrue(r.output().contains("commands: status"), r.output());
        assertTrue(r.output().contains("options: --data-dir"), r.output());
    }
}
