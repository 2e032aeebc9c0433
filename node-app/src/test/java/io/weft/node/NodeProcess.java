package io.weft.node;

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
import java.util.function.Predicate;

/**
 * {@code weft} running as a child JVM with the test class path (which, inside a failsafe fork, holds node-app and
 * every dependency), the JVM flags the launcher uses, and its output captured line by line.
 */
final class NodeProcess implements AutoCloseable {
    private final Process process;
    private final BlockingQueue<String> lines = new LinkedBlockingQueue<>();
    private final StringBuffer output = new StringBuffer();
    private final Thread pump;

    private NodeProcess(Process process) {
        this.process = process;
        this.pump = new Thread(() -> {
            try (BufferedReader reader = new BufferedReader(
                    new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
                String line;
                while ((line = reader.readLine()) != null) {
                    output.append(line).append('\n');
                    lines.add(line);
                }
            } catch (IOException e) {
                output.append("[output closed: ").append(e).append("]\n");
            }
        }, "node-output");
        pump.setDaemon(true);
        pump.start();
    }

    /** Starts {@code weft ARGS...} in {@code workingDir}; {@code jvmArgs} go before the main class. */
    static NodeProcess start(Path workingDir, List<String> jvmArgs, String... args) throws IOException {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(List.of("--add-opens", "java.base/jdk.internal.misc=ALL-UNNAMED",
                "--add-opens", "java.base/sun.nio.ch=ALL-UNNAMED",
                "--add-opens", "java.base/java.nio=ALL-UNNAMED", "-Xmx256m"));
        cmd.addAll(jvmArgs);
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add("io.weft.node.cli.WeftMain");
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(workingDir.toFile()).redirectErrorStream(true);
        return new NodeProcess(pb.start());
    }

    /** Waits for an output line matching {@code test}; fails with everything printed so far on timeout or exit. */
    String awaitLine(Predicate<String> test, long timeoutSeconds) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(timeoutSeconds);
        while (true) {
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                throw new AssertionError("no matching line within " + timeoutSeconds + " s; output:\n" + output);
            }
            String line = lines.poll(Math.min(left, TimeUnit.MILLISECONDS.toNanos(200)), TimeUnit.NANOSECONDS);
            if (line != null && test.test(line)) {
                return line;
            }
            if (line == null && !process.isAlive() && lines.isEmpty() && !pump.isAlive()) {
                throw new AssertionError("weft exited with " + process.exitValue() + " first; output:\n" + output);
            }
        }
    }

    /** Waits for the process to exit and for its output to be read completely; returns the exit code. */
    int awaitExit(long timeoutSeconds) throws InterruptedException {
        if (!process.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            throw new AssertionError("weft did not exit within " + timeoutSeconds + " s; output:\n" + output);
        }
        pump.join(TimeUnit.SECONDS.toMillis(timeoutSeconds));
        return process.exitValue();
    }

    /**
     * Sends a signal (e.g. "TERM", "INT") to the child with kill(1): {@link Process#destroy()} would also close the
     * child's output streams, losing what it prints while it stops.
     */
    void signal(String name) throws IOException, InterruptedException {
        Process kill = new ProcessBuilder("kill", "-" + name, Long.toString(process.pid())).inheritIO().start();
        if (kill.waitFor() != 0) {
            throw new AssertionError("kill -" + name + " failed");
        }
    }

    String output() {
        return output.toString();
    }

    @Override
    public void close() {
        if (process.isAlive()) {
            process.destroyForcibly();
        }
    }
}
