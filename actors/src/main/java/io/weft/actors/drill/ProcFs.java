package io.weft.actors.drill;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * What a drill reads from Linux's {@code /proc}: the host's boot id (two nodes with the same one share a kernel, so
 * a pid means the same process to both) and a snapshot of a node process, taken before a kill so it can be started
 * again the same way.
 */
public final class ProcFs {
    private static final Path PROC = Path.of("/proc");

    private ProcFs() {
    }

    /** This host's boot id, or "" when it cannot be read (not Linux, or /proc hidden). */
    public static String bootId() {
        try {
            return Files.readString(PROC.resolve("sys/kernel/random/boot_id"), StandardCharsets.US_ASCII).trim();
        } catch (IOException | RuntimeException e) {
            return "";
        }
    }

    /** Whether {@code pid} is a live process in this PID namespace (a zombie or a vanished pid is not). */
    public static boolean visible(long pid) {
        return ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false);
    }

    /**
     * When {@code pid} started, in clock ticks since boot (field 22 of {@code /proc/<pid>/stat}): with the pid, it
     * names one process for the life of the host, so a pid reused by another process after the first one died is
     * told apart. -1 when there is no such process (or it cannot be read).
     */
    public static long startTime(long pid) {
        try {
            String stat = Files.readString(PROC.resolve(Long.toString(pid)).resolve("stat"),
                    StandardCharsets.US_ASCII);
            // "pid (comm) state ppid ...": comm may hold spaces and parentheses; fields after the last ')' are plain.
            String[] fields = stat.substring(stat.lastIndexOf(')') + 2).trim().split(" ");
            // fields[0] is field 3 (state), so field 22 (starttime) is fields[19].
            return Long.parseLong(fields[19]);
        } catch (IOException | RuntimeException e) {
            return -1;
        }
    }

    /**
     * The raw command line of {@code pid} ({@code /proc/<pid>/cmdline}: arguments, each ended by a NUL byte), one
     * char per byte (ISO-8859-1, so {@code getBytes(ISO_8859_1)} gives the bytes back). "" when there is no such
     * process, it cannot be read, or it has none (a zombie or a kernel thread). A process keeps its pid and start
     * time across {@code exec}; this is what changes.
     */
    public static String commandLine(long pid) {
        try {
            return new String(Files.readAllBytes(PROC.resolve(Long.toString(pid)).resolve("cmdline")),
                    StandardCharsets.ISO_8859_1);
        } catch (IOException | RuntimeException e) {
            return "";
        }
    }

    /**
     * How a process was started, read from {@code /proc/<pid>}: command line, working directory, environment, and
     * where its stdout and stderr go when those are regular files (else null).
     */
    public record ProcessImage(long pid, List<String> commandLine, Path workingDirectory,
                               Map<String, String> environment, Path stdoutFile, Path stderrFile) {

        public ProcessImage {
            commandLine = List.copyOf(commandLine);
            environment = Map.copyOf(environment);
        }

        /**
         * Starts the same command line again in the same directory with the same environment, stdin from
         * {@code /dev/null}, stdout and stderr appended to the original files (or to {@code fallbackLog} when they
         * were not regular files). The child is not waited for; it stays in this process's process group, as the
         * original was in its starter's.
         */
        public Process start(Path fallbackLog) throws IOException {
            ProcessBuilder pb = new ProcessBuilder(commandLine).directory(workingDirectory.toFile());
            pb.environment().clear();
            pb.environment().putAll(environment);
            pb.redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
            Path out = stdoutFile != null ? stdoutFile : fallbackLog;
            Files.createDirectories(out.toAbsolutePath().getParent());
            pb.redirectOutput(ProcessBuilder.Redirect.appendTo(out.toFile()));
            if (stderrFile != null && !stderrFile.equals(out)) {
                pb.redirectError(ProcessBuilder.Redirect.appendTo(stderrFile.toFile()));
            } else {
                pb.redirectErrorStream(true);
            }
            return pb.start();
        }
    }

    /**
     * Reads how {@code pid} was started.
     *
     * @throws IOException when the process is gone or its {@code /proc} entries are not readable by this user
     */
    public static ProcessImage snapshot(long pid) throws IOException {
        Path dir = PROC.resolve(Long.toString(pid));
        List<String> cmdline = nulSeparated(Files.readAllBytes(dir.resolve("cmdline")));
        if (cmdline.isEmpty()) {
            throw new IOException("process " + pid + " has no command line (a kernel thread or a zombie)");
        }
        Path cwd = Files.readSymbolicLink(dir.resolve("cwd"));
        Map<String, String> env = new LinkedHashMap<>();
        for (String kv : nulSeparated(Files.readAllBytes(dir.resolve("environ")))) {
            int eq = kv.indexOf('=');
            if (eq > 0) {
                env.put(kv.substring(0, eq), kv.substring(eq + 1));
            }
        }
        return new ProcessImage(pid, cmdline, cwd, env, regularFileTarget(dir.resolve("fd/1")),
                regularFileTarget(dir.resolve("fd/2")));
    }

    /** The file a descriptor points at, if it is a regular file that still exists; else null. */
    private static Path regularFileTarget(Path fd) {
        try {
            Path target = Files.readSymbolicLink(fd);
            return target.isAbsolute() && Files.isRegularFile(target) ? target : null;
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    private static List<String> nulSeparated(byte[] bytes) {
        List<String> out = new ArrayList<>();
        int start = 0;
        for (int i = 0; i <= bytes.length; i++) {
            if (i == bytes.length || bytes[i] == 0) {
                if (i > start) {
                    out.add(new String(bytes, start, i - start, StandardCharsets.UTF_8));
                }
                start = i + 1;
            }
        }
        return out;
    }
}
