package io.weft.cxl.map;

import jnr.ffi.LibraryLoader;
import jnr.ffi.Pointer;
import jnr.ffi.Runtime;
import jnr.ffi.annotations.In;
import jnr.ffi.types.off_t;
import jnr.ffi.types.size_t;

/** The handful of libc calls a shared mapping needs; bound once through jnr-ffi. Control path only. */
public interface LibC {
    int O_RDWR = 2;
    int O_CREAT = 0100;
    int PROT_NONE = 0;
    int PROT_READ = 1;
    int PROT_WRITE = 2;
    int MAP_SHARED = 1;
    int MAP_PRIVATE = 2;
    int MAP_FIXED = 0x10;
    int MAP_ANONYMOUS = 0x20;
    long MAP_FAILED = -1L;

    int open(@In String path, int flags, int mode);

    int close(int fd);

    int ftruncate(int fd, @off_t long length);

    // Pointer, not long, for addresses: jnr-ffi's all-primitive fast path mis-passes this signature (EINVAL).
    Pointer mmap(Pointer address, @size_t long length, int prot, int flags, int fd, @off_t long offset);

    int munmap(Pointer address, @size_t long length);

    String strerror(int errno);

    /**
     * Raw system call; used for futex(2) only (see {@link Futex}: WAIT and WAKE ignore the sixth argument). Six
     * primitive parameters on purpose: jnr-ffi's fast path then calls it without marshalling, so a wake-up allocates
     * nothing (addresses are passed as plain longs; a seventh parameter would take the allocating path).
     */
    long syscall(long number, long a1, long a2, long a3, long a4, long a5);

    /** Lazily loaded binding. */
    final class Holder {
        public static final LibC LIBC = LibraryLoader.create(LibC.class).load("c");
        public static final Runtime RUNTIME = Runtime.getRuntime(LIBC);

        private Holder() {
        }

        /** mmap returning a raw address, or {@link #MAP_FAILED}. */
        public static long mmap(long address, long length, int prot, int flags, int fd, long offset) {
            Pointer p = LIBC.mmap(address == 0 ? null : Pointer.wrap(RUNTIME, address),
                    length, prot, flags, fd, offset);
            return p == null ? 0 : p.address();
        }

        public static int munmap(long address, long length) {
            return LIBC.munmap(Pointer.wrap(RUNTIME, address), length);
        }

        public static int errno() {
            return RUNTIME.getLastError();
        }

        public static String lastError() {
            int errno = errno();
            return LIBC.strerror(errno) + " (errno " + errno + ")";
        }
    }
}
