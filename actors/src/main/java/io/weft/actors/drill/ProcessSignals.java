package io.weft.actors.drill;

import jnr.ffi.LibraryLoader;
import jnr.ffi.Runtime;
import jnr.ffi.annotations.SaveError;
import jnr.ffi.types.pid_t;

/**
 * Sends POSIX signals to another process by pid: what drills need to freeze ({@code SIGSTOP}), thaw
 * ({@code SIGCONT}) and kill ({@code SIGKILL}) a node. {@link ProcessHandle} can only terminate a process, so the
 * libc {@code kill(2)} is bound through jnr-ffi (loaded on first use).
 *
 * <p>The numbers are Linux's generic ones (x86-64 and arm64 alike); Weft's drills are Linux-only, as they read
 * {@code /proc}.
 */
public final class ProcessSignals {
    public static final int SIGKILL = 9;
    public static final int SIGCONT = 18;
    public static final int SIGSTOP = 19;
    /** No signal: only checks that the process exists and may be signalled (and warms the native call). */
    public static final int CHECK = 0;

    /** The libc call used. */
    public interface LibC {
        @SaveError
        int kill(@pid_t long pid, int signal);

        String strerror(int errno);
    }

    private ProcessSignals() {
    }

    /** Loaded lazily: a node that never runs a drill never loads it. */
    private static final class Holder {
        static final LibC LIBC = LibraryLoader.create(LibC.class).failImmediately().load("c");
        static final Runtime RUNTIME = Runtime.getRuntime(LIBC);
    }

    /**
     * Sends {@code signal} to {@code pid}.
     *
     * @throws IllegalArgumentException for a pid that would address a process group or every process (&lt;= 1)
     * @throws IllegalStateException    when the kernel refuses (no such process, not permitted), with its reason
     */
    public static void send(long pid, int signal) {
        if (pid <= 1) {
            throw new IllegalArgumentException("refusing to signal pid " + pid);
        }
        if (Holder.LIBC.kill(pid, signal) != 0) {
            int errno = Holder.RUNTIME.getLastError();
            throw new IllegalStateException("kill(" + pid + ", " + signal + ") failed: "
                    + Holder.LIBC.strerror(errno));
        }
    }
}
