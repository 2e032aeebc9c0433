package io.weft.actors.drill;

import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.process.ChildJvm;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The process faults against disposable child processes (a shell loop standing in for a storage node): SIGSTOP and
 * SIGCONT really stop and continue it, a close() never leaves it stopped, and a kill reads /proc first and starts the
 * same command line again in the same directory with the same environment, output appended to the same file.
 */
class ProcessFaultsTest {
    private static final Duration WAIT = Duration.ofSeconds(20);
    // Stays a shell (no exec), so its command line is the one that printed the marker.
    private static final String SCRIPT = "echo \"started $DRILL_MARK in $PWD\"; while :; do sleep 1; done";
    @TempDir
    Path tmp;
    private final List<ProcessHandle> started = new ArrayList<>();

    @AfterEach
    void cleanUp() {
        for (ProcessHandle p : started) {
            p.descendants().forEach(ProcessHandle::destroyForcibly);
            p.destroyForcibly();
        }
    }

    private Process startNode(Path out) throws IOException {
        ProcessBuilder pb = new ProcessBuilder("sh", "-c", SCRIPT).directory(tmp.toFile());
        pb.environment().put("DRILL_MARK", "m-" + ProcessHandle.current().pid());
        pb.redirectOutput(ProcessBuilder.Redirect.appendTo(out.toFile()));
        pb.redirectErrorStream(true);
        Process p = pb.start();
        started.add(p.toHandle());
        return p;
    }

    /** The state letter of /proc/<pid>/stat: R, S, T (stopped), Z ... */
    private static char state(long pid) {
        try {
            String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
            return stat.charAt(stat.lastIndexOf(')') + 2);
        } catch (IOException e) {
            return '?';
        }
    }

    private static long lines(Path file, String text) {
        try {
            return Files.readAllLines(file, StandardCharsets.UTF_8).stream().filter(l -> l.contains(text)).count();
        } catch (IOException e) {
            return -1;
        }
    }

    @Test
    void freezeStopsAndRecoverContinuesTheProcess() throws Exception {
        Process p = startNode(tmp.resolve("freeze.log"));
        long pid = p.pid();
        await("child running", WAIT, () -> state(pid) == 'S' || state(pid) == 'R');
        NodeFault freeze = ProcessFaults.freeze("child", pid, Duration.ofMinutes(5));
        freeze.prepare(); // signal 0: checks the process, stops nothing
        assertTrue(state(pid) != 'T');
        freeze.inject();
        await("child stopped", WAIT, () -> state(pid) == 'T');
        assertTrue(freeze.describe().contains("SIGSTOP"), freeze.describe());
        freeze.recover();
        await("child continued", WAIT, () -> state(pid) != 'T');
        assertTrue(p.isAlive());
        assertTrue(freeze.describe().contains("SIGCONT"), freeze.describe());
    }

    @Test
    void closingAFreezeThatWasNotRecoveredContinuesTheProcess() throws Exception {
        Process p = startNode(tmp.resolve("crash.log"));
        long pid = p.pid();
        NodeFault freeze = ProcessFaults.freeze("child", pid, Duration.ofMinutes(5));
        freeze.inject();
        await("child stopped", WAIT, () -> state(pid) == 'T');
        freeze.close(); // as after a drill that crashed between inject and recover
        await("child continued", WAIT, () -> state(pid) != 'T');
        freeze.close(); // idempotent
        assertTrue(p.isAlive());
    }

    @Test
    void killReadsProcAndRestartsTheSameCommandInTheSameEnvironment() throws Exception {
        Path out = tmp.resolve("node.log");
        Process p = startNode(out);
        long pid = p.pid();
        String mark = "m-" + ProcessHandle.current().pid();
        await("child printed", WAIT, () -> lines(out, "started " + mark) == 1);
        ProcFs.ProcessImage image = ProcFs.snapshot(pid);
        assertEquals(List.of("sh", "-c", SCRIPT), image.commandLine());
        assertEquals(tmp.toRealPath(), image.workingDirectory());
        assertEquals(mark, image.environment().get("DRILL_MARK"));
        assertEquals(out.toRealPath(), image.stdoutFile(), "stdout is a regular file: appended to");

        NodeFault kill = ProcessFaults.kill("child", image, true, tmp.resolve("fallback.log"));
        assertTrue(kill.legReturns());
        kill.inject();
        assertTrue(p.waitFor(WAIT.toSeconds(), java.util.concurrent.TimeUnit.SECONDS), "killed");
        assertEquals(137, p.exitValue(), "SIGKILL: 128 + 9");

        kill.recover();
        await("restarted child printed", WAIT, () -> lines(out, "started " + mark + " in " + image
                .workingDirectory()) == 2);
        ProcessHandle again = ProcessHandle.allProcesses()
                .filter(h -> h.parent().map(pp -> pp.pid() == ProcessHandle.current().pid()).orElse(false))
                .filter(h -> h.pid() != pid && h.isAlive())
                .filter(h -> {
                    try {
                        return ProcFs.snapshot(h.pid()).commandLine().equals(image.commandLine());
                    } catch (IOException e) {
                        return false;
                    }
                })
                .findFirst().orElseThrow();
        started.add(again);
        ProcFs.ProcessImage restarted = ProcFs.snapshot(again.pid());
        assertNotEquals(pid, again.pid());
        assertEquals(image.workingDirectory(), restarted.workingDirectory());
        assertEquals(image.environment(), restarted.environment());
        assertTrue(kill.describe().contains("restarted as pid " + again.pid()), kill.describe());
        assertFalse(Files.exists(tmp.resolve("fallback.log")), "the original stdout file was used");
        kill.close(); // already recovered: no second restart
        assertEquals(2, lines(out, "started " + mark));
    }

    @Test
    void aKillWithoutRestartLeavesTheProcessDeadAndOutputGoesToTheFallbackLogOtherwise() throws Exception {
        // stdout to a pipe (not a regular file): a restart would write to the fallback log.
        ProcessBuilder pb = new ProcessBuilder("sh", "-c", SCRIPT).directory(tmp.toFile());
        Process p = pb.start();
        started.add(p.toHandle());
        ProcFs.ProcessImage image = ProcFs.snapshot(p.pid());
        assertNull(image.stdoutFile(), "a pipe is not a regular file");
        NodeFault kill = ProcessFaults.kill("child", image, false, tmp.resolve("fallback.log"));
        assertFalse(kill.legReturns());
        kill.inject();
        assertTrue(p.waitFor(WAIT.toSeconds(), java.util.concurrent.TimeUnit.SECONDS));
        kill.recover();
        kill.close();
        assertFalse(Files.exists(tmp.resolve("fallback.log")), "nothing restarted");

        Path fallback = tmp.resolve("logs/fallback.log");
        Process restarted = image.start(fallback);
        started.add(restarted.toHandle());
        await("fallback log written", WAIT, () -> lines(fallback, "started") == 1);
    }

    @Test
    void aFlapStopsTheTargetOncePerCycleAndLeavesItRunning() throws Exception {
        Process p = startNode(tmp.resolve("flap.log"));
        long pid = p.pid();
        await("child running", WAIT, () -> state(pid) == 'S' || state(pid) == 'R');
        NodeFault flap = ProcessFaults.flap("child", pid, 3, 400, 300);
        flap.prepare();
        flap.inject();
        // Watch the child's state: every freeze must be seen as one stretch of 'T'.
        int stops = 0;
        boolean wasStopped = false;
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (System.nanoTime() < deadline && !(flap.describe().startsWith("3 of 3") && state(pid) != 'T'
                && flap.describe().endsWith("running"))) {
            boolean stopped = state(pid) == 'T';
            if (stopped && !wasStopped) {
                stops++;
            }
            wasStopped = stopped;
            java.util.concurrent.locks.LockSupport.parkNanos(1_000_000); // sampling rate of the watcher
        }
        flap.recover();
        assertEquals(3, stops, flap.describe());
        await("child running after the flap", WAIT, () -> state(pid) != 'T');
        assertTrue(p.isAlive());
        assertEquals("3 of 3 freeze(s) of child (pid " + pid + ") (SIGSTOP for 400 ms, then SIGCONT and 300 ms"
                + " running), running", flap.describe());
        flap.close();
    }

    @Test
    void closingAFlapInTheMiddleOfAFreezeContinuesTheProcess() throws Exception {
        Process p = startNode(tmp.resolve("flap-close.log"));
        long pid = p.pid();
        NodeFault flap = ProcessFaults.flap("child", pid, 5, 60_000, 1000);
        flap.inject();
        await("child stopped", WAIT, () -> state(pid) == 'T');
        flap.close(); // as when the drill or the node ends mid-freeze
        await("child continued", WAIT, () -> state(pid) != 'T');
        assertTrue(flap.describe().startsWith("1 of 5"), flap.describe());
        flap.close(); // idempotent
        assertTrue(p.isAlive());
    }

    @Test
    void aPidThatNamesAnotherProcessNowIsNeverSignalled() throws Exception {
        Process p = startNode(tmp.resolve("reuse.log"));
        long pid = p.pid();
        long started = ProcFs.startTime(pid);
        assertTrue(started > 0, "start time read from /proc/" + pid + "/stat");
        assertEquals(started, ProcFs.startTime(pid), "stable for one process");
        // The same pid with another start time: what a reused pid looks like to a fault that saw the old process.
        ProcessTarget old = new ProcessTarget("child", pid, started - 1, ProcFs.commandLine(pid));
        assertFalse(old.alive());
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> old.signal(io.weft.actors.drill.ProcessSignals.SIGSTOP));
        assertTrue(e.getMessage().contains("pid " + pid + " is no longer child's process"), e.getMessage());
        assertTrue(state(pid) != 'T', "not stopped");
        ProcessTarget now = ProcessTarget.of("child", pid);
        assertTrue(now.alive());
        Process gone = new ProcessBuilder("true").start();
        gone.waitFor();
        assertEquals(-1, ProcFs.startTime(gone.pid()));
    }

    @Test
    void signallingAVanishedProcessFailsClearly() throws Exception {
        Process p = new ProcessBuilder("true").start();
        p.waitFor();
        assertFalse(ProcFs.visible(p.pid()));
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> io.weft.actors.drill.ProcessSignals.send(p.pid(), io.weft.actors.drill.ProcessSignals.SIGCONT));
        assertTrue(e.getMessage().contains("kill(" + p.pid()), e.getMessage());
        assertThrows(IllegalStateException.class,
                () -> ProcessFaults.freeze("gone", p.pid(), Duration.ofMinutes(5)).prepare());
        assertThrows(IllegalArgumentException.class, () -> io.weft.actors.drill.ProcessSignals.send(1, 0));
        assertThrows(IOException.class, () -> ProcFs.snapshot(p.pid()));
    }

    /** The command line of {@code pid}, NUL bytes as spaces ("" when gone). */
    private static String cmdline(long pid) {
        try {
            return new String(Files.readAllBytes(Path.of("/proc/" + pid + "/cmdline")), StandardCharsets.UTF_8)
                    .replace('\0', ' ').trim();
        } catch (IOException e) {
            return "";
        }
    }

    /**
     * A pid keeps its start time across exec(): only the command line tells that the process a drill looked at is
     * now another program, so it is checked before every signal too.
     */
    @Test
    void aPidThatExecutedAnotherProgramIsNeverSignalled() throws Exception {
        Process p = new ProcessBuilder("sh", "-c", "read go; exec sleep 300").directory(tmp.toFile()).start();
        started.add(p.toHandle());
        long pid = p.pid();
        await("shell running", WAIT, () -> cmdline(pid).startsWith("sh -c"));
        ProcessTarget target = ProcessTarget.of("child", pid);
        p.getOutputStream().write('\n');
        p.getOutputStream().flush();
        await("shell replaced by sleep (same pid, same start time)", WAIT, () -> cmdline(pid).startsWith("sleep"));
        assertEquals(ProcFs.startTime(pid), target.startTime());
        IllegalStateException refused = assertThrows(IllegalStateException.class,
                () -> target.signal(io.weft.actors.drill.ProcessSignals.SIGSTOP));
        assertTrue(refused.getMessage().contains("command line"), refused.getMessage());
        assertNotEquals('T', state(pid), "the other program was stopped");
        assertFalse(target.alive(), "a pid running another program is not the target");
    }

    /**
     * The drilling JVM is killed (kill -9, no shutdown hook) while its freeze holds the target stopped: the target
     * must not stay stopped. {@link FreezeHolder} is the drilling node.
     */
    @Test
    void aFreezeEndsWhenTheDrillingJvmIsKilled() throws Exception {
        Process target = startNode(tmp.resolve("target.log"));
        long pid = target.pid();
        await("target running", WAIT, () -> state(pid) == 'S' || state(pid) == 'R');
        Path holderLog = tmp.resolve("holder.log");
        ChildJvm holder = ChildJvm.builder(FreezeHolder.class).withoutLauncherFlags()
                .jvmOptions("-Xmx64m", "-XX:TieredStopAtLevel=1").args(Long.toString(pid)).logTo(holderLog, false)
                .start();
        started.add(holder.handle());
        await("target frozen by the holder JVM (log " + holderLog + ")", WAIT, () -> state(pid) == 'T'
                || !holder.isAlive());
        assertTrue(holder.isAlive(), () -> "holder exited: " + read(holderLog));
        holder.kill9();
        await("target running again after the drilling JVM died", WAIT, () -> state(pid) != 'T');
    }

    private static String read(Path file) {
        try {
            return Files.readString(file);
        } catch (IOException e) {
            return e.toString();
        }
    }

    /** A drill that never recovers (a hung drilling node) still cannot keep the target stopped past the deadline. */
    @Test
    void aFreezeEndsAtItsDeadlineEvenWhileTheDrillingNodeLives() throws Exception {
        Process p = startNode(tmp.resolve("deadline.log"));
        long pid = p.pid();
        await("child running", WAIT, () -> state(pid) == 'S' || state(pid) == 'R');
        NodeFault freeze = ProcessFaults.freeze("child", pid, Duration.ofMillis(600));
        freeze.prepare();
        freeze.inject();
        await("child stopped", WAIT, () -> state(pid) == 'T');
        await("child resumed by the watchdog at the deadline, no recover", WAIT, () -> state(pid) != 'T');
        freeze.close();
    }

    @Test
    void theWatchdogOfARecoveredFreezeEndsWithoutSignalling() throws Exception {
        Process p = startNode(tmp.resolve("cancel.log"));
        long pid = p.pid();
        await("child running", WAIT, () -> state(pid) == 'S' || state(pid) == 'R');
        FreezeWatchdog watchdog = FreezeWatchdog.arm(ProcessTarget.of("child", pid), Duration.ofMinutes(5));
        assertTrue(watchdog.running());
        watchdog.cancel();
        await("watchdog gone", WAIT, () -> !watchdog.running());
        assertEquals(FreezeWatchdog.sha256(ProcFs.commandLine(pid)), FreezeWatchdog.sha256(
                ProcessTarget.of("child", pid).commandLine()));
    }
}
