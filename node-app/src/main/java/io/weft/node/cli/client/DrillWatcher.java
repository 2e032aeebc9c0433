package io.weft.node.cli.client;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * Follows a drill running on a node ({@code GET /weft/drills/{id}} every {@value #POLL_MILLIS} ms) until it is
 * {@code done} or {@code failed}, drawing its progress on stderr: redrawn in place when stderr is a terminal, one line
 * per phase otherwise (so logs and CI output stay readable). Used by {@code weft drill} and {@code weft demo}.
 */
public final class DrillWatcher {
    /** How often the drill's status is read. */
    public static final long POLL_MILLIS = 200;
    /** Added to a drill's planned time before the watcher gives up (start-up, drain, verification). */
    static final long SLACK_MILLIS = 90_000;

    private final NodeApi api;
    private final PrintWriter err;
    private final boolean showProgress;
    private final boolean terminal;

    /**
     * @param showProgress draw progress at all (off for {@code --json})
     * @param terminal     redraw one line in place (stderr is a terminal) rather than print a line per phase
     */
    public DrillWatcher(NodeApi api, PrintWriter err, boolean showProgress, boolean terminal) {
        this.api = api;
        this.err = err;
        this.showProgress = showProgress;
        this.terminal = terminal;
    }

    /** Whether this process's stderr is a terminal (Linux: fd 2 links to a tty or pseudo-terminal). */
    public static boolean stderrIsTerminal() {
        try {
            String target = Files.readSymbolicLink(Path.of("/proc/self/fd/2")).toString();
            return target.startsWith("/dev/pts/") || target.startsWith("/dev/tty");
        } catch (IOException | UnsupportedOperationException | SecurityException e) {
            return false;
        }
    }

    /** How long a drill may say {@code done} without its report before the watcher takes it as it is. */
    static final long REPORT_GRACE_MILLIS = 5000;

    /** Whether a drill status is final: failed, or done with its report (the node may set the phase first). */
    static boolean finished(JsonNode status) {
        String phase = status.path("phase").asText();
        return phase.equals("failed") || (phase.equals("done") && status.path("report").isObject());
    }

    /**
     * Polls the drill until it is done or failed, or until {@code timeoutMillis} passed (then a status whose phase is
     * {@code failed} and whose error says so). API errors are thrown as {@link CliException}.
     */
    public JsonNode await(String id, long timeoutMillis) {
        String path = "/weft/drills/" + id;
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
        String lastPhase = "";
        int drawn = 0;
        long doneSince = 0;
        Thread hook = new Thread(() -> {
            err.println();
            err.println("stopped watching; " + id + " goes on running on " + api.node() + " (GET " + path + ")");
            err.flush();
        }, "drill-watcher-interrupted");
        Runtime.getRuntime().addShutdownHook(hook);
        try {
            while (true) {
                JsonNode status = api.get(path);
                if (showProgress) {
                    String line = progressLine(status);
                    String phase = status.path("phase").asText();
                    if (terminal) {
                        err.print("\r" + line + " ".repeat(Math.max(0, drawn - line.length())));
                        drawn = line.length();
                        if (finished(status)) {
                            err.println();
                        }
                        err.flush();
                    } else if (!phase.equals(lastPhase)) {
                        err.println(line);
                        err.flush();
                    }
                    lastPhase = phase;
                }
                if (finished(status)) {
                    return status;
                }
                if (status.path("phase").asText().equals("done")) {
                    if (doneSince == 0) {
                        doneSince = System.nanoTime();
                    } else if (System.nanoTime() - doneSince > TimeUnit.MILLISECONDS.toNanos(REPORT_GRACE_MILLIS)) {
                        return status;   // printed as "failed without a report"
                    }
                }
                if (System.nanoTime() - deadline > 0) {
                    var timedOut = status.deepCopy();
                    ((com.fasterxml.jackson.databind.node.ObjectNode) timedOut).put("phase", "failed")
                            .put("error", id + " did not finish within " + timeoutMillis / 1000 + " s (last phase "
                                    + status.path("phase").asText() + "); it may still be running: GET " + path);
                    return timedOut;
                }
                LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(POLL_MILLIS));
                if (Thread.interrupted()) {
                    throw new CliException(CliException.FAILED, "interrupted while watching " + id);
                }
            }
        } finally {
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException shuttingDown) {
                // the hook is running or has run: nothing to undo
            }
        }
    }

    /** How long to wait for a drill with these phase lengths: the plan, the resync bound and some slack. */
    public static long timeoutFor(long beforeMillis, long duringMillis, long afterMillis, long resyncTimeoutMillis) {
        return beforeMillis + duringMillis + afterMillis + resyncTimeoutMillis + SLACK_MILLIS;
    }

    /**
     * {@code drill-3 kill a  [########------------]  40%  during      2.3 s  51234 requests} — the bar is the node's
     * rough share of the planned time.
     */
    static String progressLine(JsonNode status) {
        double progress = status.path("progress").asDouble(0);
        int percent = (int) Math.round(Math.max(0, Math.min(1, progress)) * 100);
        if (status.path("phase").asText().equals("done")) {
            percent = 100;
        }
        int width = 20;
        int filled = percent * width / 100;
        return String.format(Locale.ROOT, "%s %s %s  [%s%s] %3d%%  %-10s %6.1f s  %d requests",
                status.path("id").asText("drill"), status.path("fault").asText("?"),
                status.path("target").asText("?"), "#".repeat(filled), "-".repeat(width - filled), percent,
                status.path("phase").asText("?"), status.path("elapsedMillis").asLong() / 1000.0,
                status.path("requests").asLong());
    }
}
