package io.weft.actors.drill;

import io.weft.core.drill.ProcessSignals;

/**
 * One process a drill signals, named by its pid and its start time ({@link ProcFs#startTime}) so that a pid the
 * kernel has handed to another process since is never signalled: before every signal the start time is read again
 * and must be the same.
 *
 * <p>The check and the signal are two system calls, so a process that dies and whose pid is reused in the
 * microseconds between them could still be hit; pid reuse needs the pid space to wrap, which a drill's seconds do not
 * see in practice.
 */
public record ProcessTarget(String node, long pid, long startTime) {

    /** The process {@code pid} is now (its start time read from /proc). */
    public static ProcessTarget of(String node, long pid) {
        long start = ProcFs.startTime(pid);
        if (start < 0) {
            throw new IllegalStateException("no process " + pid + " (" + node + ") to signal");
        }
        return new ProcessTarget(node, pid, start);
    }

    /** Whether {@code pid} is still this process (not gone, not reused). */
    public boolean alive() {
        return ProcFs.startTime(pid) == startTime;
    }

    /**
     * Sends {@code signal} if {@code pid} is still this process.
     *
     * @throws IllegalStateException when it is gone or the pid now belongs to another process, or the kernel refuses
     */
    public void signal(int signal) {
        long now = ProcFs.startTime(pid);
        if (now != startTime) {
            throw new IllegalStateException("pid " + pid + " is no longer " + node + "'s process ("
                    + (now < 0 ? "it is gone" : "the pid was reused: started at " + now + ", not " + startTime)
                    + "); not signalled");
        }
        ProcessSignals.send(pid, signal);
    }

    @Override
    public String toString() {
        return node + " (pid " + pid + ")";
    }
}
