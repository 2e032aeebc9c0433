package io.weft.actors.drill;


/**
 * One process a drill signals, named by its pid, its start time ({@link ProcFs#startTime}) and its command line
 * ({@link ProcFs#commandLine}), so that neither a pid the kernel has handed to another process since (the start time
 * differs) nor the same process after it executed another program (same pid and start time, another command line) is
 * ever signalled: before every signal both are read again and must be the same.
 *
 * <p>The check and the signal are separate system calls, so a process that dies and whose pid is reused in the
 * microseconds between them could still be hit; pid reuse needs the pid space to wrap, which a drill's seconds do not
 * see in practice.
 *
 * @param commandLine the raw {@code /proc/<pid>/cmdline} (NUL-separated, one char per byte)
 */
public record ProcessTarget(String node, long pid, long startTime, String commandLine) {

    /** The process {@code pid} is now (its start time and command line read from /proc). */
    public static ProcessTarget of(String node, long pid) {
        long start = ProcFs.startTime(pid);
        String cmdline = ProcFs.commandLine(pid);
        if (start < 0 || cmdline.isEmpty() || ProcFs.startTime(pid) != start) {
            throw new IllegalStateException("no process " + pid + " (" + node + ") to signal");
        }
        return new ProcessTarget(node, pid, start, cmdline);
    }

    /** Whether {@code pid} is still this process (not gone, not reused, not another program). */
    public boolean alive() {
        return mismatch() == null;
    }

    /** Why {@code pid} is not this process now, or null when it is. */
    private String mismatch() {
        long now = ProcFs.startTime(pid);
        if (now != startTime) {
            return now < 0 ? "it is gone" : "the pid was reused: started at " + now + ", not " + startTime;
        }
        String cmdline = ProcFs.commandLine(pid);
        if (!cmdline.equals(commandLine)) {
            return cmdline.isEmpty() ? "it is gone" : "its command line is now \"" + printable(cmdline)
                    + "\", not \"" + printable(commandLine) + "\"";
        }
        return null;
    }

    /**
     * Sends {@code signal} if {@code pid} is still this process.
     *
     * @throws IllegalStateException when it is gone, the pid now belongs to another process or program, or the kernel
     *                               refuses
     */
    public void signal(int signal) {
        String mismatch = mismatch();
        if (mismatch != null) {
            throw new IllegalStateException("pid " + pid + " is no longer " + node + "'s process (" + mismatch
                    + "); not signalled");
        }
        ProcessSignals.send(pid, signal);
    }

    static String printable(String cmdline) {
        String s = cmdline.replace('\0', ' ').trim();
        return s.length() > 120 ? s.substring(0, 117) + "..." : s;
    }

    @Override
    public String toString() {
        return node + " (pid " + pid + ")";
    }
}
