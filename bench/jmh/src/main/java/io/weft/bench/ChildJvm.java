package io.weft.bench;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * A storage child JVM running {@code LoadGen serve-...} with this JVM's classpath. It serves until its stdin
 * closes; stdout lines are read on a daemon thread, stderr goes to a log file under the temp directory.
 */
final class ChildJvm implements AutoCloseable {
    private final Process process;
    private final BlockingQueue<String> lines = new LinkedBlockingQueue<>();
    private final Path log;

    private ChildJvm(Process process, Path log) {
        this.process = process;
        this.log = log;
        Thread reader = new Thread(() -> {
            try (BufferedReader in = new BufferedReader(
                    new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
                String line;
                while ((line = in.readLine()) != null) {
                    lines.add(line);
                }
            } catch (IOException e) {
                lines.add("EOF " + e);
            }
        }, "loadgen-child-stdout");
        reader.setDaemon(true);
        reader.start();
    }

    static ChildJvm start(String... args) throws IOException {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(List.of("--add-opens", "java.base/jdk.internal.misc=ALL-UNNAMED",
                "--add-opens", "java.base/sun.nio.ch=ALL-UNNAMED", "--add-opens", "java.base/java.nio=ALL-UNNAMED",
                "-Xmx512m", "-cp", System.getProperty("java.class.path"), LoadGen.class.getName()));
        cmd.addAll(List.of(args));
        Path log = Path.of(System.getProperty("java.io.tmpdir"),
                "weft-loadgen-" + args[0] + "-" + ProcessHandle.current().pid() + "-" + System.nanoTime() + ".log");
        Process p = new ProcessBuilder(cmd).redirectError(log.toFile()).start();
        return new ChildJvm(p, log);
    }

    /** Waits (up to 60 s) for a line starting with {@code prefix}. */
    String awaitLine(String prefix) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (System.nanoTime() < deadline) {
            String line = lines.poll(100, TimeUnit.MILLISECONDS);
            if (line != null && line.startsWith(prefix)) {
                return line;
            }
            if (line == null && !process.isAlive()) {
                break;
            }
        }
        throw new IOException("storage child JVM did not print " + prefix + " (exit "
                + (process.isAlive() ? "still running" : process.exitValue()) + "); see " + log);
    }

    @Override
    public void close() {
        try {
            process.getOutputStream().close(); // the child's cue to stop
        } catch (IOException e) {
            // already gone
        }
        try {
            if (!process.waitFor(10, TimeUnit.SECONDS)) {
                process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public String toString() {
        return "child JVM " + process.pid();
    }
}
