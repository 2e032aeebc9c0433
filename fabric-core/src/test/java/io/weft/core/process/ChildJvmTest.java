package io.weft.core.process;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The one child-JVM launcher: command line, captured and logged output, readiness lines, input, signals, exit. */
class ChildJvmTest {
    private static final Duration WAIT = Duration.ofSeconds(60);

    @TempDir
    Path dir;

    /** Prints READY and a system property, then echoes stdin lines until "exit N". */
    public static final class Echo {
        public static void main(String[] args) throws Exception {
            System.out.println("READY " + System.getProperty("echo.tag") + " " + String.join(",", args));
            System.out.flush();
            BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
            String line;
            while ((line = in.readLine()) != null) {
                if (line.startsWith("exit ")) {
                    System.exit(Integer.parseInt(line.substring(5)));
                }
                System.out.println("ECHO " + line);
                System.out.flush();
            }
        }
    }

    @Test
    void theCommandRunsThisJavaWithTheLauncherFlagsAnAbsoluteClassPathAndOptionsInOrder() {
        List<String> cmd = ChildJvm.builder(Echo.class).jvmOptions("-Xmx64m").systemProperty("echo.tag", "t")
                .args("a", "b").command();
        assertEquals(ChildJvm.javaBinary(), cmd.get(0));
        int main = cmd.indexOf(Echo.class.getName());
        assertTrue(cmd.subList(0, main).containsAll(ChildJvm.launcherFlags(Runtime.version().feature())),
                cmd.toString());
        assertTrue(cmd.indexOf("-Xmx64m") < cmd.indexOf("-Decho.tag=t"), cmd.toString());
        String cp = cmd.get(cmd.indexOf("-cp") + 1);
        assertTrue(List.of(cp.split(java.io.File.pathSeparator)).stream().allMatch(e -> Path.of(e).isAbsolute()),
                cp);
        assertEquals(List.of("a", "b"), cmd.subList(main + 1, cmd.size()));
        assertFalse(ChildJvm.builder(Echo.class).withoutLauncherFlags().command().contains("--add-opens"));
    }

    @Test
    void launcherFlagsFollowTheJavaVersion() {
        assertFalse(ChildJvm.launcherFlags(17).contains("--enable-native-access=ALL-UNNAMED"));
        assertTrue(ChildJvm.launcherFlags(23).containsAll(List.of("--enable-native-access=ALL-UNNAMED",
                "--sun-misc-unsafe-memory-access=allow")));
        assertEquals(List.of("-Xmx1g", "-Dx=y"), ChildJvm.splitOptions(" -Xmx1g  -Dx=y "));
        assertEquals(List.of(), ChildJvm.splitOptions("  "));
    }

    @Test
    void capturedOutputReadinessInputAndExitCode() throws Exception {
        try (ChildJvm child = ChildJvm.builder(Echo.class).jvmOptions("-Xmx64m")
                .systemProperty("echo.tag", "captured").args("x").start()) {
            assertEquals("READY captured x", child.awaitLine("READY", WAIT));
            child.send("hello");
            assertEquals("ECHO hello", child.awaitLine(l -> l.contains("hello"), WAIT));
            child.send("exit 3");
            assertEquals(3, child.awaitExit(WAIT));
            assertTrue(child.output().contains("ECHO hello"), child.output());
            assertEquals(2, child.lineCount());
        }
    }

    @Test
    void aChildThatExitsBeforeItsLineFailsTheWaitWithItsOutput() throws Exception {
        try (ChildJvm child = ChildJvm.builder(Echo.class).jvmOptions("-Xmx64m").start()) {
            child.awaitLine("READY", WAIT);
            child.send("exit 0");
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> child.awaitLine("NEVER", WAIT));
            assertTrue(e.getMessage().contains("exited with 0") && e.getMessage().contains("READY"), e.getMessage());
        }
    }

    @Test
    void loggedOutputIsReadFromTheFileAndAppendedAcrossStarts() throws Exception {
        Path log = dir.resolve("logs/echo.log");
        for (String tag : List.of("first", "second")) {
            try (ChildJvm child = ChildJvm.builder(Echo.class).jvmOptions("-Xmx64m").systemProperty("echo.tag", tag)
                    .logTo(log, true).directory(dir).start()) {
                // a second start skips what the first one wrote
                assertEquals("READY " + tag + " ", child.awaitLine("READY", WAIT));
                child.send("exit 0");
                assertEquals(0, child.awaitExit(WAIT));
            }
        }
        String text = Files.readString(log);
        assertTrue(text.contains("READY first") && text.contains("READY second"), text);
    }

    /** The state letter of /proc/PID/stat ('T' stopped), after the command name in parentheses. */
    private static char state(long pid) throws java.io.IOException {
        String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
        return stat.charAt(stat.lastIndexOf(')') + 2);
    }

    @Test
    void stopAndContinueThenKill9() throws Exception {
        try (ChildJvm child = ChildJvm.builder(Echo.class).jvmOptions("-Xmx64m").start()) {
            child.awaitLine("READY", WAIT);
            child.pause();
            org.awaitility.Awaitility.await("stopped").atMost(WAIT).until(() -> state(child.pid()) == 'T');
            child.resume();
            org.awaitility.Awaitility.await("running").atMost(WAIT).until(() -> state(child.pid()) != 'T');
            child.send("after");
            assertEquals("ECHO after", child.awaitLine("ECHO", WAIT));
            child.kill9();
            assertFalse(child.isAlive());
            assertEquals(137, child.awaitExit(WAIT));
        }
    }
}
