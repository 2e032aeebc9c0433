package io.weft.core.store;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import jnr.ffi.LibraryLoader;
import jnr.ffi.Runtime;
import jnr.ffi.annotations.SaveError;
import jnr.ffi.annotations.Variadic;
import jnr.ffi.byref.IntByReference;
import jnr.ffi.byref.LongLongByReference;
import jnr.ffi.types.off_t;

/**
 * The few Linux calls a store needs that {@link java.nio.channels.FileChannel} does not offer: hole punching
 * ({@code fallocate}), allocation maps ({@code lseek SEEK_DATA/SEEK_HOLE}), sparse growth ({@code ftruncate}) and
 * block-device geometry ({@code ioctl}). Loaded once through jnr-ffi; none of these calls allocates on the Java side.
 *
 * <p>Stores open their own descriptor with {@link #open} for these calls and reach the same inode through
 * {@code /proc/self/fd/N} for {@code FileChannel} IO, so no JDK internals have to be opened up to find a descriptor.
 */
final class LinuxIo {
    static final int FALLOC_FL_KEEP_SIZE = 0x01;
    static final int FALLOC_FL_PUNCH_HOLE = 0x02;
    static final int FALLOC_FL_ZERO_RANGE = 0x10;

    static final int SEEK_DATA = 3;
    static final int SEEK_HOLE = 4;

    /** {@code _IOR(0x12, 114, size_t)}: device size in bytes. */
    static final long BLKGETSIZE64 = 0x80081272L;
    /** {@code _IO(0x12, 104)}: logical sector size. */
    static final long BLKSSZGET = 0x1268L;

    // Linux values, identical on x86_64 and aarch64 (the platforms Weft runs on).
    static final int EPERM = 1;
    static final int ENOENT = 2;
    static final int EACCES = 13;
    static final int EROFS = 30;
    static final int EINTR = 4;
    static final int ENXIO = 6;
    static final int ENOSPC = 28;
    static final int EOPNOTSUPP = 95;
    static final int EWOULDBLOCK = 11;

    static final int LOCK_SH = 1;
    static final int LOCK_EX = 2;
    static final int LOCK_NB = 4;

    private static final int O_RDONLY = 0;
    private static final int O_RDWR = 2;
    private static final int O_CLOEXEC = 0x80000;

    /** The libc functions used, as jnr-ffi binds them. */
    public interface LibC {
        @SaveError
        int open(String path, int flags, int mode);

        @SaveError
        int close(int fd);

        @SaveError
        int fallocate(int fd, int mode, @off_t long offset, @off_t long length);

        @SaveError
        @off_t
        long lseek(int fd, @off_t long offset, int whence);

        @SaveError
        int ftruncate(int fd, @off_t long length);

        @SaveError
        int flock(int fd, int operation);

        @SaveError
        @Variadic(fixedCount = 2)
        int ioctl(int fd, long request, LongLongByReference out);

        @SaveError
        @Variadic(fixedCount = 2)
        int ioctl(int fd, long request, IntByReference out);

        String strerror(int errno);
    }

    private static final LibC LIBC = LibraryLoader.create(LibC.class).failImmediately().load("c");
    private static final Runtime RUNTIME = Runtime.getRuntime(LIBC);

    private LinuxIo() {
    }

    static LibC libc() {
        return LIBC;
    }

    /** errno of the last failed call on this thread. */
    static int errno() {
        return RUNTIME.getLastError();
    }

    static IOException failure(String what, Path path, int errno) {
        String reason = LIBC.strerror(errno) + " (errno " + errno + ")";
        String text = what + " " + path + ": " + reason;
        // The same exception types FileChannel.open throws, so callers can keep catching them.
        if (errno == ENOENT) {
            return new java.nio.file.NoSuchFileException(path.toString(), null, what + ": " + reason);
        }
        if (errno == EACCES || errno == EPERM || errno == EROFS) {
            return new java.nio.file.AccessDeniedException(path.toString(), null, what + ": " + reason);
        }
        if (errno == ENOSPC) {
            return new StoreException(io.weft.core.io.IoStatus.ENOSPC, text);
        }
        if (errno == EOPNOTSUPP) {
            return new StoreException(io.weft.core.io.IoStatus.ENOTSUP, text);
        }
        return new IOException(text);
    }

    /** Opens {@code path} read-only or read-write (never creating it) and returns the descriptor. */
    static int open(Path path, boolean readOnly) throws IOException {
        int flags = (readOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
        int fd = LIBC.open(path.toString(), flags, 0);
        if (fd < 0) {
            throw failure("open", path, errno());
        }
        return fd;
    }

    /** The path through which another open of the same inode reaches exactly this descriptor's file. */
    static Path procPath(int fd) {
        return Path.of("/proc/self/fd/" + fd);
    }

    /** @return 0 on success, else the errno (never throws: callers decide whether a failure is fatal). */
    static int fallocate(int fd, int mode, long offset, long length) {
        while (true) {
            int rc = LIBC.fallocate(fd, mode, offset, length);
            if (rc == 0) {
                return 0;
            }
            int err = errno();
            if (err != EINTR) {
                return err;
            }
        }
    }

    /** @return the new offset, or {@code -errno}. */
    static long lseek(int fd, long offset, int whence) {
        long rc = LIBC.lseek(fd, offset, whence);
        return rc < 0 ? -errno() : rc;
    }

    static void ftruncate(int fd, long length, Path path) throws IOException {
        if (LIBC.ftruncate(fd, length) != 0) {
            throw failure("ftruncate", path, errno());
        }
    }

    /**
     * Takes a non-blocking {@code flock} on the descriptor: shared for readers, exclusive for a writer. The lock
     * belongs to this open file description, so it also stops a second open in the same process.
     */
    static void lockOrFail(int fd, boolean shared, Path path) throws IOException {
        while (LIBC.flock(fd, (shared ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
            int err = errno();
            if (err == EWOULDBLOCK) {
                throw new IOException(path + " is in use: another process (or store) holds "
                        + (shared ? "it open for writing" : "a lock on it"));
            }
            if (err != EINTR) {
                throw failure("flock", path, err);
            }
        }
    }

    static long blockDeviceSize(int fd, Path path) throws IOException {
        LongLongByReference size = new LongLongByReference();
        if (LIBC.ioctl(fd, BLKGETSIZE64, size) != 0) {
            throw failure("ioctl(BLKGETSIZE64)", path, errno());
        }
        return size.getValue();
    }

    static int blockDeviceSectorSize(int fd, Path path) throws IOException {
        IntByReference sector = new IntByReference();
        if (LIBC.ioctl(fd, BLKSSZGET, sector) != 0) {
            throw failure("ioctl(BLKSSZGET)", path, errno());
        }
        return sector.getValue();
    }

    static void close(int fd) {
        LIBC.close(fd);
    }

    /**
     * Reads a number from {@code /sys/dev/block/MAJOR:MINOR/queue/<attribute>} for the device {@code dev}
     * (a partition falls back to its parent disk's queue). Returns {@code fallback} when there is none, e.g. for
     * tmpfs or overlay file systems.
     */
    static long sysBlockQueueValue(long dev, String attribute, long fallback) {
        long major = ((dev >>> 8) & 0xfffL) | ((dev >>> 32) & ~0xfffL);
        long minor = (dev & 0xffL) | ((dev >>> 12) & ~0xffL);
        Path base = Path.of("/sys/dev/block/" + major + ":" + minor);
        for (Path candidate : new Path[] {base.resolve("queue").resolve(attribute),
                base.resolve("..").resolve("queue").resolve(attribute)}) {
            try {
                if (Files.isReadable(candidate)) {
                    return Long.parseLong(Files.readString(candidate).trim());
                }
            } catch (IOException | NumberFormatException e) {
                return fallback;
            }
        }
        return fallback;
    }
}
