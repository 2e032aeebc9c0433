package io.weft.core.process;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Predicate;

/**
 * The one way Weft starts a JVM of its own: {@code weft demo}'s local cluster, the storage processes of the
 * benchmarks and every test that needs a second process (a node, a CXL backend, an RDMA storage server). The child
 * runs the java binary of this JVM with this JVM's class path (every entry made absolute, so a child restarted from
 * its own command line elsewhere finds it), the flags the {@code ./weft} launcher gives a node ({@link
 * #launcherFlags}), then the caller's JVM options, system properties, main class and arguments.
 *
 * <p>Its output either stays in this JVM ({@link Builder#captureOutput()}, the default: one daemon thread reads it
 * line by line for {@link #awaitLine} and {@link #output}) or goes to a log file ({@link Builder#logTo}: nothing is
 * read in this JVM; {@link #awaitLine} reads the file's new lines; a file is what a node restarted from {@code
 * /proc/PID} by a kill drill can write to again). Readiness is a line the child prints; signals go through {@code
 * kill(1)} so that {@code SIGSTOP}/{@code SIGCONT}/{@code SIGTERM} leave the child's output streams open ({@link
 * Process#destroy()} would close them); {@link #kill9()} is a real {@code kill -9}.
 *
 * <p>Control plane and tests only: a child is started, waited for and stopped on the caller's thread; nothing here
 * runs per IO.
 */
public final class ChildJvm implements AutoCloseable {
    /** Output kept by {@link #output()} for a captured child (the first characters; a chatty child is cut). */
    private static final int OUTPUT_LIMIT = 1 << 20;
    private static final long POLL_NANOS = TimeUnit.MILLISECONDS.toNanos(50);
    private static final Duration KILL_WAIT = Duration.ofSeconds(30);

    private final Process process;
    private final List<String> command;
    private final Path log;
    private final BlockingQueue<String> lines = new LinkedBlockingQueue<>();
    private final StringBuilder output = new StringBuilder(); // guarded by itself
    private final AtomicLong lineCount = new AtomicLong();
    private final Thread pump;
    /** Where {@link #awaitLine} goes on reading a log file (log mode only; the caller's thread). */
    private long logOffset;

    private ChildJvm(Process process, List<String> command, Path log, long logStart) {
        this.process = process;
        this.command = command;
        this.log = log;
        this.logOffset = logStart;
        if (log == null) {
            pump = new Thread(this::pumpOutput, "child-jvm-" + process.pid() + "-output");
            pump.setDaemon(true);
            pump.start();
        } else {
            pump = null;
        }
    }

    /** A child running {@code mainClass}. */
    public static Builder builder(String mainClass) {
        return new Builder(mainClass);
    }

    /** A child running {@code mainClass}. */
    public static Builder builder(Class<?> mainClass) {
        return new Builder(mainClass.getName());
    }

    /**
     * The JVM flags the {@code ./weft} launcher gives a node: the {@code --add-opens} Agrona and the transports
     * need, and from Java 22 / 23 on the flags that keep native access and {@code sun.misc.Unsafe} quiet.
     */
    public static List<String> launcherFlags(int javaFeature) {
        List<String> flags = new ArrayList<>(List.of(
                "--add-opens", "java.base/jdk.internal.misc=ALL-UNNAMED",
                "--add-opens", "java.base/sun.nio.ch=ALL-UNNAMED",
                "--add-opens", "java.base/java.nio=ALL-UNNAMED"));
        if (javaFeature >= 22) {
            flags.add("--enable-native-access=ALL-UNNAMED");
        }
        if (javaFeature >= 23) {
            flags.add("--sun-misc-unsafe-memory-access=allow");
        }
        return flags;
    }

    /** Options split at white space ({@code " -Xmx1g  -Dx=y "} → two); none for null or blank. */
    public static List<String> splitOptions(String options) {
        return options == null || options.isBlank() ? List.of() : List.of(options.trim().split("\\s+"));
    }

    /** The java binary this JVM runs. */
    public static String javaBinary() {
        return ProcessHandle.current().info().command()
                .orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    }

    /** This JVM's class path with every entry absolute. */
    public static String classPath() {
        StringBuilder cp = new StringBuilder();
        for (String entry : System.getProperty("java.class.path").split(File.pathSeparator)) {
            if (!entry.isEmpty()) {
                cp.append(cp.length() == 0 ? "" : File.pathSeparator)
                        .append(Path.of(entry).toAbsolutePath().normalize());
            }
        }
        return cp.toString();
    }

    private void pumpOutput() {
        try (BufferedReader reader = new BufferedReader(
                new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
            String line;
            while ((line = reader.readLine()) != null) {
                keep(line);
                lines.add(line);
                lineCount.incrementAndGet();
            }
        } catch (IOException e) {
            keep("[output closed: " + e + "]");
        }
    }

    private void keep(String line) {
        synchronized (output) {
            if (output.length() < OUTPUT_LIMIT) {
                output.append(line).append('\n');
                if (output.length() >= OUTPUT_LIMIT) {
                    output.append("[... output cut at ").append(OUTPUT_LIMIT).append(" characters]\n");
                }
            }
        }
    }

    public long pid() {
        return process.pid();
    }

    public ProcessHandle handle() {
        return process.toHandle();
    }

    public boolean isAlive() {
        return process.isAlive();
    }

    /** The exit code; {@link IllegalThreadStateException} while the child runs. */
    public int exitValue() {
        return process.exitValue();
    }

    /** The command line the child was started with. */
    public List<String> command() {
        return command;
    }

    /** The log file the child writes to, or null when its output is captured. */
    public Path log() {
        return log;
    }

    /** Lines the child has printed so far (captured output only). */
    public long lineCount() {
        return lineCount.get();
    }

    /** Everything the child printed so far: the captured output, or the log file. */
    public String output() {
        if (log != null) {
            try {
                return Files.readString(log, StandardCharsets.UTF_8);
            } catch (IOException e) {
                return "(no log: " + e + ")";
            }
        }
        synchronized (output) {
            return output.toString();
        }
    }

    /** The lines printed and not yet taken by {@link #awaitLine} (captured output only). */
    public List<String> drain() {
        List<String> out = new ArrayList<>();
        lines.drainTo(out);
        return out;
    }

    /** The next line starting with {@code prefix}, skipping others. */
    public String awaitLine(String prefix, Duration timeout) {
        return awaitLine(line -> line.startsWith(prefix), "a line starting with '" + prefix + "'", timeout);
    }

    /** The next line matching {@code test}, skipping others. */
    public String awaitLine(Predicate<String> test, Duration timeout) {
        return awaitLine(test, "a matching line", timeout);
    }

    /**
     * The next line matching {@code test}, skipping others; fails with everything the child printed when the child
     * exits first or {@code timeout} passes.
     */
    public String awaitLine(Predicate<String> test, String what, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (true) {
            String line = nextLine(Math.min(POLL_NANOS, Math.max(1, deadline - System.nanoTime())));
            if (line != null) {
                if (test.test(line)) {
                    return line;
                }
                continue;
            }
            if (!process.isAlive() && outputDrained()) {
                throw new IllegalStateException("child JVM " + pid() + " exited with " + process.exitValue()
                        + " before it printed " + what + "; output:\n" + output());
            }
            if (System.nanoTime() - deadline >= 0) {
                throw new IllegalStateException("child JVM " + pid() + " did not print " + what + " within "
                        + timeout.toSeconds() + " s (alive=" + process.isAlive() + "); output:\n" + output());
            }
        }
    }

    /** Everything the child printed has been read. */
    private boolean outputDrained() {
        if (log == null) {
            return !pump.isAlive() && lines.isEmpty();
        }
        try {
            return Files.size(log) <= logOffset;
        } catch (IOException e) {
            return true;
        }
    }

    private String nextLine(long waitNanos) {
        if (log == null) {
            try {
                return lines.poll(waitNanos, TimeUnit.NANOSECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted waiting for child JVM " + pid());
            }
        }
        String line = readLogLine();
        if (line == null) {
            java.util.concurrent.locks.LockSupport.parkNanos(waitNanos);
        }
        return line;
    }

    /** The next complete line of the log file after {@link #logOffset}, or null. */
    private String readLogLine() {
        try (RandomAccessFile file = new RandomAccessFile(log.toFile(), "r")) {
            long length = file.length();
            if (length <= logOffset) {
                return null;
            }
            byte[] tail = new byte[(int) Math.min(length - logOffset, 1 << 16)];
            file.seek(logOffset);
            file.readFully(tail);
            for (int i = 0; i < tail.length; i++) {
                if (tail[i] == '\n') {
                    logOffset += i + 1;
                    return new String(tail, 0, i, StandardCharsets.UTF_8);
                }
            }
            if (tail.length == 1 << 16) { // a line longer than the window: hand it over in pieces
                logOffset += tail.length;
                return new String(tail, StandardCharsets.UTF_8);
            }
            return null;
        } catch (IOException e) {
            return null;
        }
    }

    /** Writes one line to the child's standard input. */
    public void send(String line) throws IOException {
        OutputStream in = process.getOutputStream();
        in.write((line + "\n").getBytes(StandardCharsets.UTF_8));
        in.flush();
    }

    /** Closes the child's standard input (a child serving until its input ends takes it as the cue to stop). */
    public void closeInput() {
        try {
            process.getOutputStream().close();
        } catch (IOException e) {
            // gone already
        }
    }

    /** Sends a signal ({@code TERM}, {@code INT}, {@code STOP}, {@code CONT}) with {@code kill(1)}. */
    public void signal(String name) throws IOException, InterruptedException {
        signal(pid(), name);
    }

    /** Sends a signal to any process with {@code kill(1)}. */
    public static void signal(long pid, String name) throws IOException, InterruptedException {
        Process kill = new ProcessBuilder("kill", "-" + name, Long.toString(pid)).inheritIO().start();
        if (!kill.waitFor(10, TimeUnit.SECONDS) || kill.exitValue() != 0) {
            throw new IOException("kill -" + name + " " + pid + " failed");
        }
    }

    /** SIGSTOP: the child freezes like a hung host. */
    public void pause() throws IOException, InterruptedException {
        signal("STOP");
    }

    /** SIGCONT after {@link #pause()}. */
    public void resume() throws IOException, InterruptedException {
        signal("CONT");
    }

    /** A real kill -9; returns once the process is gone (or after 30 s). */
    public void kill9() throws InterruptedException {
        process.destroyForcibly();
        process.waitFor(KILL_WAIT.toMillis(), TimeUnit.MILLISECONDS);
    }

    /**
     * SIGTERM, then kill -9 when the child has not exited within {@code grace}.
     *
     * @return the exit code, or -1 when it had to be killed
     */
    public int stop(Duration grace) throws InterruptedException {
        if (!process.isAlive()) {
            return process.exitValue();
        }
        process.destroy();
        if (process.waitFor(grace.toMillis(), TimeUnit.MILLISECONDS)) {
            return process.exitValue();
        }
        kill9();
        return -1;
    }

    /**
     * Closes the child's standard input (the cue to stop for a child that serves until it ends), then kill -9 when
     * it has not exited within {@code grace}.
     */
    public void stopByClosingInput(Duration grace) throws InterruptedException {
        closeInput();
        if (!process.waitFor(grace.toMillis(), TimeUnit.MILLISECONDS)) {
            kill9();
        }
    }

    /**
     * Waits for the child to exit and for its output to be read completely; returns the exit code. A child that
     * does not exit in time is killed and the wait fails with its output.
     */
    public int awaitExit(Duration timeout) throws InterruptedException {
        if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
            process.destroyForcibly();
            throw new IllegalStateException("child JVM " + pid() + " did not exit within " + timeout.toSeconds()
                    + " s; output:\n" + output());
        }
        if (pump != null) {
            pump.join(timeout.toMillis());
        }
        return process.exitValue();
    }

    /** CPU time the child has used so far (user + system), from the OS; -1 when unknown. */
    public long cpuNanos() {
        return process.toHandle().info().totalCpuDuration().map(Duration::toNanos).orElse(-1L);
    }

    /** kill -9 when still running. */
    @Override
    public void close() {
        if (process.isAlive()) {
            try {
                kill9();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    @Override
    public String toString() {
        return "child JVM " + pid() + (log != null ? " (log " + log + ")" : "");
    }

    /** What to start; {@link #start()} starts it. */
    public static final class Builder {
        private final String mainClass;
        private boolean launcherFlags = true;
        private final List<String> jvmOptions = new ArrayList<>();
        private final Map<String, String> properties = new LinkedHashMap<>();
        private final List<String> args = new ArrayList<>();
        private final Map<String, String> environment = new LinkedHashMap<>();
        private Path directory;
        private boolean newSession;
        private Path log;
        private boolean appendLog;
        private Path errorLog;
        private boolean inputFromNull;

        private Builder(String mainClass) {
            this.mainClass = mainClass;
        }

        /** Leaves out {@link #launcherFlags} (the caller gives its own, e.g. from a build property). */
        public Builder withoutLauncherFlags() {
            launcherFlags = false;
            return this;
        }

        /** JVM options, after the launcher flags and before the main class. */
        public Builder jvmOptions(String... options) {
            jvmOptions.addAll(List.of(options));
            return this;
        }

        /** JVM options, after the launcher flags and before the main class. */
        public Builder jvmOptions(List<String> options) {
            jvmOptions.addAll(options);
            return this;
        }

        /** {@code -Dname=value}. */
        public Builder systemProperty(String name, String value) {
            properties.put(name, value);
            return this;
        }

        /** The listed system properties of this JVM, those that are set. */
        public Builder copySystemProperties(String... names) {
            for (String name : names) {
                String value = System.getProperty(name);
                if (value != null) {
                    properties.put(name, value);
                }
            }
            return this;
        }

        public Builder args(String... more) {
            args.addAll(List.of(more));
            return this;
        }

        public Builder args(List<String> more) {
            args.addAll(more);
            return this;
        }

        public Builder environment(String name, String value) {
            environment.put(name, value);
            return this;
        }

        /** The child's working directory (default: this JVM's). */
        public Builder directory(Path dir) {
            directory = dir;
            return this;
        }

        /**
         * Runs the child in a session of its own ({@code setsid}, when installed): a Ctrl-C in this JVM's terminal
         * does not reach it.
         */
        public Builder newSession() {
            newSession = true;
            return this;
        }

        /** Keeps the output in this JVM, stdout and stderr together (the default). */
        public Builder captureOutput() {
            log = null;
            return this;
        }

        /** Stdout and stderr to {@code file}, appended to or written afresh; nothing is read in this JVM. */
        public Builder logTo(Path file, boolean append) {
            log = file;
            appendLog = append;
            return this;
        }

        /** Stderr appended to {@code file}; stdout is captured (or logged) as said. */
        public Builder errorsTo(Path file) {
            errorLog = file;
            return this;
        }

        /** Standard input from {@code /dev/null} (default: a pipe for {@link ChildJvm#send}). */
        public Builder inputFromNull() {
            inputFromNull = true;
            return this;
        }

        /** The whole command line, {@code setsid} (if asked for) and java binary first. */
        public List<String> command() {
            List<String> cmd = new ArrayList<>();
            Path setsid = Path.of("/usr/bin/setsid");
            if (newSession && Files.isExecutable(setsid)) {
                cmd.add(setsid.toString());
            }
            cmd.add(javaBinary());
            if (launcherFlags) {
                cmd.addAll(launcherFlags(Runtime.version().feature()));
            }
            cmd.addAll(jvmOptions);
            properties.forEach((k, v) -> cmd.add("-D" + k + "=" + v));
            cmd.add("-cp");
            cmd.add(classPath());
            cmd.add(mainClass);
            cmd.addAll(args);
            return cmd;
        }

        public ChildJvm start() throws IOException {
            List<String> cmd = List.copyOf(command());
            ProcessBuilder pb = new ProcessBuilder(cmd);
            if (directory != null) {
                pb.directory(directory.toFile());
            }
            pb.environment().putAll(environment);
            if (inputFromNull) {
                pb.redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
            }
            long logStart = 0;
            if (log != null) {
                Path parent = log.toAbsolutePath().getParent();
                if (parent != null) {
                    Files.createDirectories(parent);
                }
                logStart = appendLog && Files.exists(log) ? Files.size(log) : 0;
                pb.redirectOutput(appendLog ? ProcessBuilder.Redirect.appendTo(log.toFile())
                        : ProcessBuilder.Redirect.to(log.toFile()));
            }
            if (errorLog != null) {
                pb.redirectError(ProcessBuilder.Redirect.appendTo(errorLog.toFile()));
            } else {
                pb.redirectErrorStream(true);
            }
            return new ChildJvm(pb.start(), cmd, log, logStart);
        }
    }
}
