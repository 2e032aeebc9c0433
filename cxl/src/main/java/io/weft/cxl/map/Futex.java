package io.weft.cxl.map;

import jnr.ffi.Memory;
import jnr.ffi.Pointer;

/**
 * Process-shared futex(2) on one 32-bit word of a shared mapping: lets a thread sleep until a thread in another
 * process (same kernel) changes the word and wakes it. Used only on idle transitions (an agent going to sleep, a
 * producer finding it asleep), never per request while busy. Not shared futexes ({@code FUTEX_PRIVATE_FLAG} off):
 * the key is the mapped file page, so waiters and wakers in different processes meet.
 *
 * <p>Where the system call is not available (an unknown architecture, or memory the kernel refuses, e.g. some DAX
 * mappings) {@link #available()} turns false and callers fall back to a bounded park.
 */
public final class Futex {
    private static final int FUTEX_WAIT = 0;
    private static final int FUTEX_WAKE = 1;
    private static final int EAGAIN = 11;
    private static final int EINTR = 4;
    private static final int ETIMEDOUT = 110;
    private static final long SYS_FUTEX = sysFutex();

    private final long word;
    /** struct timespec for the relative timeout, reused (one Futex per waiting thread). */
    private final Pointer timespec;
    private final long timespecAddress;
    private volatile boolean available = SYS_FUTEX > 0;

    /** @param address the word's address; must stay mapped while this object is used */
    public Futex(long address) {
        if ((address & 3) != 0) {
            throw new IllegalArgumentException("futex word must be 4-byte aligned: " + address);
        }
        this.word = address;
        this.timespec = SYS_FUTEX > 0 ? Memory.allocateDirect(LibC.Holder.RUNTIME, 16) : null;
        this.timespecAddress = timespec != null ? timespec.address() : 0;
    }

    private static long sysFutex() {
        String arch = System.getProperty("os.arch", "");
        if (!System.getProperty("os.name", "").toLowerCase(java.util.Locale.ROOT).contains("linux")) {
            return -1;
        }
        switch (arch) {
            case "amd64":
            case "x86_64":
                return 202;
            case "aarch64":
                return 98;
            default:
                return -1;
        }
    }

    public boolean available() {
        return available;
    }

    /**
     * Sleeps while the word equals {@code expected}, at most {@code timeoutNs}; returns at once if it differs.
     * Spurious returns are allowed (callers re-check their condition).
     */
    public void await(int expected, long timeoutNs) {
        if (!available) {
            return;
        }
        timespec.putLong(0, timeoutNs / 1_000_000_000L);
        timespec.putLong(8, timeoutNs % 1_000_000_000L);
        long r = LibC.Holder.LIBC.syscall(SYS_FUTEX, word, FUTEX_WAIT, expected, timespecAddress, 0);
        if (r < 0) {
            int errno = LibC.Holder.errno();
            if (errno != EAGAIN && errno != EINTR && errno != ETIMEDOUT) {
                available = false; // e.g. EFAULT/ENOSYS on memory the kernel cannot key: callers park instead
            }
        }
    }

    /** Wakes every thread sleeping on the word (in any process mapping it). */
    public void wakeAll() {
        if (available) {
            LibC.Holder.LIBC.syscall(SYS_FUTEX, word, FUTEX_WAKE, Integer.MAX_VALUE, 0, 0);
        }
    }
}
