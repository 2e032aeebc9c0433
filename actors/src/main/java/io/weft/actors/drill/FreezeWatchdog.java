package io.weft.actors.drill;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;

/**
 * The guarantee that a freeze never outlives its drill, even when the drilling node dies without running its
 * shutdown hooks ({@code kill -9}, OOM kill, power loss of the JVM): a small detached process, armed before the first
 * {@code SIGSTOP}, that sends {@code SIGCONT} to the target as soon as either
 * <ul>
 *   <li>the drilling process is gone (its pid no longer has its start time; checked every 200 ms), or</li>
 *   <li>the freeze's deadline has passed (the longest the drill may keep the target stopped),</li>
 * </ul>
 * whichever comes first — unless it was {@link #cancel() cancelled} (the drill resumed the target itself). Before it
 * signals it checks, like {@link ProcessTarget}, that the target's pid still has the same start time and the same
 * command line (SHA-256 of {@code /proc/<pid>/cmdline}), so it never continues a process that is not the target.
 *
 * <p>Why a process and not a thread or a timer on the target: a thread dies with the drilling JVM, and the target
 * cannot resume itself while it is stopped. The watchdog is {@code sh} with coreutils ({@code cat},
 * {@code sha256sum}, {@code sleep}); it is not a child that dies with the JVM (the kernel re-parents it), and it ends
 * by itself at the deadline at the latest. It ignores SIGHUP, SIGINT and SIGTERM, so a terminal's Ctrl-C or a service
 * manager's stop that reaches the drilling node's whole process group does not take it down with the node (the
 * node's own shutdown hook resumes the target then too); {@link #cancel()} uses SIGKILL.
 */
final class FreezeWatchdog {
    /** Polling period of the watchdog (drilling process alive?); the target resumes within this of its death. */
    static final long TICK_MILLIS = 200;

    // $1 target pid, $2 its start time, $3 sha256 of its cmdline, $4 drilling pid, $5 its start time, $6 ticks.
    private static final String SCRIPT = String.join("\n",
            "trap '' HUP INT TERM",
            "tpid=$1; tstart=$2; tsum=$3; dpid=$4; dstart=$5; ticks=$6",
            "starttime() { s=$(cat /proc/$1/stat 2>/dev/null) || { echo -1; return; }; s=${s##*) }; set -- $s;"
                    + " echo ${20}; }",
            "i=0",
            "while [ $i -lt $ticks ] && [ \"$(starttime $dpid)\" = \"$dstart\" ]; do sleep 0.2; i=$((i+1)); done",
            "[ \"$(starttime $tpid)\" = \"$tstart\" ] || exit 0",
            "[ \"$(sha256sum < /proc/$tpid/cmdline | cut -d' ' -f1)\" = \"$tsum\" ] || exit 0",
            "kill -CONT $tpid",
            "");

    private final Process process;

    private FreezeWatchdog(Process process) {
        this.process = process;
    }

    /**
     * Starts the watchdog for {@code target}, to resume it at the latest {@code maxFreeze} from now.
     *
     * @throws IllegalStateException when it cannot be started (then the caller must not freeze the target)
     */
    static FreezeWatchdog arm(ProcessTarget target, Duration maxFreeze) {
        long self = ProcessHandle.current().pid();
        long selfStart = ProcFs.startTime(self);
        long ticks = Math.max(1, (maxFreeze.toMillis() + TICK_MILLIS - 1) / TICK_MILLIS);
        List<String> command = List.of("sh", "-c", SCRIPT, "weft-freeze-watchdog", Long.toString(target.pid()),
                Long.toString(target.startTime()), sha256(target.commandLine()), Long.toString(self),
                Long.toString(selfStart), Long.toString(ticks));
        try {
            Process p = new ProcessBuilder(command)
                    .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD)
                    .redirectError(ProcessBuilder.Redirect.DISCARD)
                    .start();
            return new FreezeWatchdog(p);
        } catch (IOException e) {
            throw new IllegalStateException("cannot start the freeze watchdog (sh) for " + target + ": " + e
                    + "; not freezing a process nothing would resume if this node died", e);
        }
    }

    /** The drill resumed the target itself: the watchdog ends without signalling (SIGKILL: it ignores the rest). */
    void cancel() {
        process.destroyForcibly();
    }

    /** Whether the watchdog process still runs (tests). */
    boolean running() {
        return process.isAlive();
    }

    static String sha256(String commandLine) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256")
                    .digest(commandLine.getBytes(StandardCharsets.ISO_8859_1)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
