package io.weft.actors.drill;

import io.weft.core.drill.ProcessSignals;
import java.nio.file.Path;

/**
 * Faults that signal a storage node's process on this host: {@code kill -9} (and, optionally, start it again as it
 * was started) and {@code SIGSTOP}/{@code SIGCONT}. The target must share this host's kernel (the
 * {@link DrillService} checks the boot id and that the pid is visible before it builds one).
 */
public final class ProcessFaults {
    private ProcessFaults() {
    }

    /** {@code SIGSTOP} at inject, {@code SIGCONT} at recover; {@link #close()} sends SIGCONT if still stopped. */
    public static NodeFault freeze(String node, long pid) {
        return new Freeze(node, pid);
    }

    /**
     * {@code SIGKILL} at inject; at recover (when {@code restart}) the process is started again from {@code image}
     * (read from {@code /proc} before the kill), its output appended to its original stdout file or to
     * {@code fallbackLog}. {@link #close()} restarts it if the drill ended between kill and recover.
     */
    public static NodeFault kill(String node, ProcFs.ProcessImage image, boolean restart, Path fallbackLog) {
        return new Kill(node, image, restart, fallbackLog);
    }

    private static final class Freeze implements NodeFault {
        private final String node;
        private final long pid;
        private boolean stopped; // guarded by this
        private String done = "nothing yet"; // guarded by this

        Freeze(String node, long pid) {
            this.node = node;
            this.pid = pid;
        }

        @Override
        public String name() {
            return "freeze";
        }

        @Override
        public void prepare() {
            // Binds libc on first use (hundreds of ms on a loaded machine) now, not inside the timed inject.
            ProcessSignals.send(pid, ProcessSignals.CHECK);
        }

        @Override
        public synchronized void inject() {
            ProcessSignals.send(pid, ProcessSignals.SIGSTOP);
            stopped = true;
            done = "SIGSTOP sent to " + node + " (pid " + pid + ")";
        }

        @Override
        public synchronized void recover() {
            thaw();
        }

        private void thaw() {
            if (stopped) {
                ProcessSignals.send(pid, ProcessSignals.SIGCONT);
                stopped = false;
                done = "SIGSTOP then SIGCONT sent to " + node + " (pid " + pid + ")";
            }
        }

        @Override
        public synchronized String describe() {
            return done;
        }

        @Override
        public synchronized void close() {
            try {
                thaw();
            } catch (RuntimeException gone) {
                // The process died meanwhile: nothing is left stopped.
                stopped = false;
            }
        }
    }

    private static final class Kill implements NodeFault {
        private final String node;
        private final ProcFs.ProcessImage image;
        private final boolean restart;
        private final Path fallbackLog;
        private boolean killed; // guarded by this
        private Process restarted; // guarded by this
        private String done = "nothing yet"; // guarded by this

        Kill(String node, ProcFs.ProcessImage image, boolean restart, Path fallbackLog) {
            this.node = node;
            this.image = image;
            this.restart = restart;
            this.fallbackLog = fallbackLog;
        }

        @Override
        public String name() {
            return "kill";
        }

        @Override
        public boolean legReturns() {
            return restart;
        }

        @Override
        public void prepare() {
            // Binds libc on first use (hundreds of ms on a loaded machine) now, not inside the timed inject.
            ProcessSignals.send(image.pid(), ProcessSignals.CHECK);
        }

        @Override
        public synchronized void inject() throws Exception {
            // The pid must still be the process that was read: a recycled pid would be someone else.
            ProcFs.ProcessImage now = ProcFs.snapshot(image.pid());
            if (!now.commandLine().equals(image.commandLine())) {
                throw new IllegalStateException("pid " + image.pid() + " is no longer " + node + "'s process");
            }
            ProcessSignals.send(image.pid(), ProcessSignals.SIGKILL);
            killed = true;
            done = "SIGKILL sent to " + node + " (pid " + image.pid() + ")";
        }

        @Override
        public synchronized void recover() throws Exception {
            if (killed && restart && restarted == null) {
                Path out = image.stdoutFile() != null ? image.stdoutFile() : fallbackLog;
                restarted = image.start(fallbackLog);
                done = "SIGKILL sent to " + node + " (pid " + image.pid() + "), restarted as pid "
                        + restarted.pid() + " (output to " + out + ")";
            }
        }

        /** The restarted process, or null. */
        synchronized Process restarted() {
            return restarted;
        }

        @Override
        public synchronized String describe() {
            return done;
        }

        @Override
        public synchronized void close() {
            try {
                recover();
            } catch (Exception e) {
                done = done + "; restart failed: " + e.getMessage();
            }
        }
    }
}
