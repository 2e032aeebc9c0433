package io.weft.actors.drill;

import java.nio.file.Path;
import java.time.Duration;

/**
 * Faults that signal a storage node's process on this host: {@code kill -9} (and, optionally, start it again as it
 * was started), {@code SIGSTOP}/{@code SIGCONT} once (freeze) or repeatedly (flap). Every signal is sent only after
 * the pid's start time and command line are checked again ({@link ProcessTarget}), so a pid reused by another
 * process, or a process that executed another program, is never hit. A stopped target is resumed by the drill, by a
 * shutdown hook when this JVM exits, and by a {@link FreezeWatchdog} process when this JVM dies or the freeze's
 * deadline passes. The target must share this host's kernel (the
 * {@link DrillService} checks the boot id and that the pid is visible before it builds one).
 */
public final class ProcessFaults {
    /** Added to a fault's planned stop time for the watchdog's deadline (a slow recover must not race it). */
    static final long WATCHDOG_GRACE_MILLIS = 10_000;

    private ProcessFaults() {
    }

    /**
     * {@code SIGSTOP} at inject, {@code SIGCONT} at recover; {@link #close()} sends SIGCONT if still stopped. The
     * target is resumed by a {@link FreezeWatchdog} at the latest {@code maxFreeze} after the freeze, or as soon as
     * this process dies.
     */
    public static NodeFault freeze(String node, long pid, Duration maxFreeze) {
        return new Freeze(ProcessTarget.of(node, pid), maxFreeze);
    }

    /**
     * {@code cycles} freezes of the target: at inject a thread starts that stops it ({@code SIGSTOP}) for
     * {@code freezeMillis}, lets it run ({@code SIGCONT}) for {@code runMillis}, and so on; recover waits for the last
     * cycle to end (or ends it) and leaves the target running. With {@code freezeMillis} just past the mirror's leg
     * timeout every freeze drops the leg, and each return starts a resync the next freeze may interrupt.
     */
    public static NodeFault flap(String node, long pid, int cycles, long freezeMillis, long runMillis) {
        if (cycles < 1 || freezeMillis < 1 || runMillis < 0) {
            throw new IllegalArgumentException("flap needs cycles >= 1, freeze >= 1 ms, run >= 0 ms: " + cycles
                    + ", " + freezeMillis + ", " + runMillis);
        }
        return new Flap(ProcessTarget.of(node, pid), cycles, freezeMillis, runMillis);
    }

    /**
     * {@code SIGKILL} at inject; at recover (when {@code restart}) the process is started again from {@code image}
     * (read from {@code /proc} before the kill), its output appended to its original stdout file or to
     * {@code fallbackLog}. {@link #close()} restarts it if the drill ended between kill and recover.
     */
    public static NodeFault kill(String node, ProcFs.ProcessImage image, boolean restart, Path fallbackLog) {
        return new Kill(ProcessTarget.of(node, image.pid()), image, restart, fallbackLog);
    }

    /**
     * Stops and continues one process and never leaves it stopped: {@link #thaw()} runs at recover, at close and, for
     * as long as the target may be stopped, from a JVM shutdown hook (a client node that exits mid-drill). Every
     * signal goes through {@link ProcessTarget}, so a pid that now names another process is never signalled.
     */
    private static class Stopper {
        final ProcessTarget target;
        /** The longest the target may stay stopped from the first stop: the watchdog's deadline. */
        private final Duration maxFreeze;
        private boolean stopped; // guarded by this
        private Thread hook; // guarded by this
        private FreezeWatchdog watchdog; // guarded by this

        Stopper(ProcessTarget target, Duration maxFreeze) {
            this.target = target;
            this.maxFreeze = maxFreeze;
        }

        synchronized void stop() {
            if (hook == null) {
                hook = new Thread(this::thawQuietly, "weft-drill-thaw-" + target.node());
                Runtime.getRuntime().addShutdownHook(hook);
            }
            if (watchdog == null) {
                // Armed before the first SIGSTOP: from then on the target resumes even if this JVM dies.
                watchdog = FreezeWatchdog.arm(target, maxFreeze);
            }
            target.signal(ProcessSignals.SIGSTOP);
            stopped = true;
        }

        /** SIGCONT if stopped; throws if the target cannot be signalled (then it is gone: nothing is stopped). */
        synchronized void thaw() {
            if (stopped) {
                stopped = false;
                target.signal(ProcessSignals.SIGCONT);
            }
        }

        synchronized boolean stopped() {
            return stopped;
        }

        synchronized void thawQuietly() {
            try {
                thaw();
            } catch (RuntimeException gone) {
                // The process died or its pid names another process now: nothing of ours is left stopped.
            }
        }

        /** Thaws and drops the shutdown hook and the watchdog (they have nothing left to do). */
        synchronized void release() {
            thawQuietly();
            if (watchdog != null) {
                watchdog.cancel();
                watchdog = null;
            }
            if (hook != null) {
                try {
                    Runtime.getRuntime().removeShutdownHook(hook);
                } catch (IllegalStateException shuttingDown) {
                    // The hook is running or about to: it thaws nothing now.
                }
                hook = null;
            }
        }
    }

    private static final class Freeze extends Stopper implements NodeFault {
        private String done = "nothing yet"; // guarded by this

        Freeze(ProcessTarget target, Duration maxFreeze) {
            super(target, maxFreeze);
        }

        @Override
        public String name() {
            return "freeze";
        }

        @Override
        public void prepare() {
            // Binds libc on first use (hundreds of ms on a loaded machine) now, not inside the timed inject.
            target.signal(ProcessSignals.CHECK);
        }

        @Override
        public synchronized void inject() {
            stop();
            done = "SIGSTOP sent to " + target;
        }

        @Override
        public synchronized void recover() {
            boolean was = stopped();
            release();
            if (was) {
                done = "SIGSTOP then SIGCONT sent to " + target;
            }
        }

        @Override
        public synchronized String describe() {
            return done;
        }

        @Override
        public synchronized void close() {
            release();
        }
    }

    private static final class Flap extends Stopper implements NodeFault {
        private final int cycles;
        private final long freezeMillis;
        private final long runMillis;
        private final Object schedule = new Object();
        private boolean ending; // guarded by schedule
        private volatile int freezes;
        private volatile Throwable failure;
        private Thread cycler; // set by inject, read by recover/close (both on the drill's threads, after inject)

        Flap(ProcessTarget target, int cycles, long freezeMillis, long runMillis) {
            // The watchdog covers the whole schedule, plus the time recover() may take to end it.
            super(target, Duration.ofMillis(cycles * freezeMillis + (cycles - 1) * runMillis + WATCHDOG_GRACE_MILLIS));
            this.cycles = cycles;
            this.freezeMillis = freezeMillis;
            this.runMillis = runMillis;
        }

        @Override
        public String name() {
            return "flap";
        }

        @Override
        public void prepare() {
            target.signal(ProcessSignals.CHECK);
        }

        /** How long the whole schedule takes: cycles × freeze + (cycles - 1) × run. */
        long scheduleMillis() {
            return cycles * freezeMillis + (cycles - 1) * runMillis;
        }

        @Override
        public void inject() {
            Thread t = new Thread(this::cycle, "weft-drill-flap-" + target.node());
            t.setDaemon(true);
            synchronized (this) {
                cycler = t;
            }
            t.start();
        }

        private void cycle() {
            try {
                for (int i = 0; i < cycles && !ending(); i++) {
                    stop();
                    freezes++;
                    try {
                        pause(freezeMillis);
                    } finally {
                        thaw();
                    }
                    if (i < cycles - 1) {
                        pause(runMillis);
                    }
                }
            } catch (Throwable t) {
                failure = t;
            } finally {
                thawQuietly();
            }
        }

        private boolean ending() {
            synchronized (schedule) {
                return ending;
            }
        }

        /** The fault's schedule (how long the target stays stopped or running), cut short when the drill ends. */
        private void pause(long millis) throws InterruptedException {
            long deadline = System.nanoTime() + millis * 1_000_000L;
            synchronized (schedule) {
                long left;
                while (!ending && (left = deadline - System.nanoTime()) > 0) {
                    schedule.wait(Math.max(1, left / 1_000_000L));
                }
            }
        }

        private void end() {
            synchronized (schedule) {
                ending = true;
                schedule.notifyAll();
            }
        }

        @Override
        public void recover() throws Exception {
            Thread t;
            synchronized (this) {
                t = cycler;
            }
            if (t != null) {
                // Let the planned cycles finish (the drill's during phase may be shorter than the schedule).
                t.join(scheduleMillis() + 5_000);
                end();
                t.join(5_000);
            }
            release();
            Throwable f = failure;
            if (f != null) {
                throw new IllegalStateException("flap of " + target + " stopped after " + freezes + " freeze(s): "
                        + f.getMessage(), f);
            }
        }

        @Override
        public String describe() {
            return freezes + " of " + cycles + " freeze(s) of " + target + " (SIGSTOP for " + freezeMillis
                    + " ms, then SIGCONT" + (cycles > 1 ? " and " + runMillis + " ms running" : "") + ")"
                    + (stopped() ? ", stopped now" : ", running");
        }

        @Override
        public void close() {
            end();
            Thread t;
            synchronized (this) {
                t = cycler;
            }
            if (t != null) {
                try {
                    t.join(5_000);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            release();
        }
    }

    private static final class Kill implements NodeFault {
        private final ProcessTarget target;
        private final String node;
        private final ProcFs.ProcessImage image;
        private final boolean restart;
        private final Path fallbackLog;
        private boolean killed; // guarded by this
        private Process restarted; // guarded by this
        private String done = "nothing yet"; // guarded by this

        Kill(ProcessTarget target, ProcFs.ProcessImage image, boolean restart, Path fallbackLog) {
            this.target = target;
            this.node = target.node();
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
            target.signal(ProcessSignals.CHECK);
        }

        @Override
        public synchronized void inject() throws Exception {
            // The pid must still be the process that was read: a recycled pid would be someone else.
            ProcFs.ProcessImage now = ProcFs.snapshot(image.pid());
            if (!now.commandLine().equals(image.commandLine())) {
                throw new IllegalStateException("pid " + image.pid() + " is no longer " + node + "'s process");
            }
            target.signal(ProcessSignals.SIGKILL);
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
