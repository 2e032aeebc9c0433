package io.weft.core.store;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import jnr.ffi.LibraryLoader;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;
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
 *
 * <p>Opening under an export root ({@link #openBeneath}) resolves the path in the kernel relative to a descriptor of
 * the root, so a symlink swapped in after a check cannot lead outside it: {@code openat2(RESOLVE_BENEATH)} where the
 * kernel has it (Linux 5.6), else a walk that opens every component with {@code O_NOFOLLOW} relative to its parent's
 * descriptor. Images are locked with open-file-description locks ({@link #lockOrFail}), the kind qemu takes.
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
    static final int EXDEV = 18;
    static final int EEXIST = 17;
    static final int ENOTDIR = 20;
    static final int E2BIG = 7;
    static final int ENOSYS = 38;
    static final int ELOOP = 40;

    private static final int F_OFD_SETLK = 37;
    private static final short F_RDLCK = 0;
    private static final short F_WRLCK = 1;
    /** {@code struct flock} on 64-bit Linux: type, whence (shorts), start, len (off_t), pid: 32 bytes. */
    private static final int FLOCK_SIZE = 32;

    private static final long SYS_OPENAT2 = 437; // the same number on x86_64 and aarch64
    private static final long RESOLVE_NO_MAGICLINKS = 0x02;
    private static final long RESOLVE_BENEATH = 0x08;
    /** {@code struct open_how}: flags, mode, resolve (three u64). */
    private static final int OPEN_HOW_SIZE = 24;

    private static final int O_RDONLY = 0;
    private static final int O_RDWR = 2;
    private static final int O_CREAT = 0x40;
    private static final int O_EXCL = 0x80;
    private static final int O_CLOEXEC = 0x80000;
    private static final boolean AARCH64 = "aarch64".equals(System.getProperty("os.arch"));
    private static final int O_DIRECTORY = AARCH64 ? 0x4000 : 0x10000;
    private static final int O_NOFOLLOW = AARCH64 ? 0x8000 : 0x20000;

    /** Tests set this to exercise the {@code O_NOFOLLOW} walk that kernels without openat2 use. */
    static volatile boolean openat2Disabled;
    private static volatile boolean openat2Missing;

    /** The libc functions used, as jnr-ffi binds them. */
    public interface LibC {
        @SaveError
        int open(String path, int flags, int mode);

        @SaveError
        int openat(int dirfd, String path, int flags, int mode);

        @SaveError
        int mkdirat(int dirfd, String path, int mode);

        @SaveError
        @Variadic(fixedCount = 1)
        long syscall(long number, int dirfd, String path, Pointer how, long size);

        @SaveError
        @Variadic(fixedCount = 2)
        int fcntl(int fd, int cmd, Pointer lock);

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
     * Takes a non-blocking open-file-description lock ({@code F_OFD_SETLK}) on the whole file: shared for a reader,
     * exclusive for a writer. It belongs to this open file description, not to the process, so a second open in this
     * JVM conflicts as one in another process does, closing some other descriptor of the file does not drop it, and
     * qemu (which takes OFD locks on bytes of its images) and this store exclude each other. Released when the
     * descriptor is closed.
     */
    static void lockOrFail(int fd, boolean shared, Path path) throws IOException {
        Pointer lock = Memory.allocateDirect(RUNTIME, FLOCK_SIZE, true);
        lock.putShort(0, shared ? F_RDLCK : F_WRLCK);
        lock.putShort(2, (short) 0); // SEEK_SET; start 0, length 0 = the whole file; pid must be 0 for OFD locks
        while (LIBC.fcntl(fd, F_OFD_SETLK, lock) != 0) {
            int err = errno();
            if (err == EWOULDBLOCK || err == EACCES) {
                throw new IOException(path + " is locked by another process (or another store in this one), which "
                        + (shared ? "has it open for writing" : "has it open")
                        + "; refusing to open it " + (shared ? "read-only" : "read-write")
                        + " so that two writers never share one image");
            }
            if (err != EINTR) {
                throw failure("fcntl(F_OFD_SETLK)", path, err);
            }
        }
    }

    /**
     * Opens {@code relative} under the directory {@code root} without ever leaving it: absolute paths, {@code ..}
     * and symlinks that lead out of the root are refused, whenever they were put there. With openat2 a symlink
     * that stays inside the root is followed; the fallback walk follows no symlink at all.
     *
     * @return the descriptor, which is what the caller uses from then on (the path is never opened again by name)
     */
    static int openBeneath(Path root, Path relative, boolean readOnly) throws IOException {
        Path shown = root.resolve(relative);
        requireRelativeWithoutDots(root, relative);
        int rootFd = openDirectory(root);
        try {
            int flags = (readOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
            if (!openat2Disabled && !openat2Missing) {
                long fd = openat2(rootFd, relative.toString(), flags, 0);
                if (fd >= 0) {
                    return (int) fd;
                }
                int err = (int) -fd;
                if (err != ENOSYS && err != E2BIG) {
                    throw beneathFailure(root, relative, shown, err);
                }
                openat2Missing = true;
            }
            return walkBeneath(rootFd, root, relative, flags, false);
        } finally {
            LIBC.close(rootFd);
        }
    }

    /**
     * Creates the file {@code relative} under {@code root} (with any missing parent directories, 0755) and opens
     * it read-write; fails if anything exists there already. Every component is opened relative to its parent's
     * descriptor with {@code O_NOFOLLOW}, and the file with {@code O_CREAT|O_EXCL|O_NOFOLLOW}.
     */
    static int createBeneath(Path root, Path relative) throws IOException {
        requireRelativeWithoutDots(root, relative);
        int rootFd = openDirectory(root);
        try {
            return walkBeneath(rootFd, root, relative, O_RDWR | O_CLOEXEC | O_CREAT | O_EXCL, true);
        } finally {
            LIBC.close(rootFd);
        }
    }

    private static void requireRelativeWithoutDots(Path root, Path relative) throws IOException {
        if (relative.isAbsolute() || relative.toString().isEmpty()) {
            throw new IOException("refused: '" + relative + "' is not a path relative to export root " + root);
        }
        for (Path segment : relative) {
            String name = segment.toString();
            if (name.equals("..") || name.equals(".")) {
                throw new IOException("refused: '" + relative + "' contains '" + name + "' (export root " + root + ")");
            }
        }
    }

    private static int openDirectory(Path root) throws IOException {
        int fd = LIBC.open(root.toString(), O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
        if (fd < 0) {
            throw failure("open export root", root, errno());
        }
        return fd;
    }

    /** @return the descriptor, or {@code -errno} */
    private static long openat2(int dirFd, String path, int flags, int mode) {
        Pointer how = Memory.allocateDirect(RUNTIME, OPEN_HOW_SIZE, true);
        how.putLongLong(0, flags);
        how.putLongLong(8, mode);
        how.putLongLong(16, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);
        while (true) {
            long fd = LIBC.syscall(SYS_OPENAT2, dirFd, path, how, OPEN_HOW_SIZE);
            if (fd >= 0) {
                return fd;
            }
            int err = errno();
            if (err != EINTR) {
                return -err;
            }
        }
    }

    /** Opens each directory component with O_DIRECTORY|O_NOFOLLOW relative to its parent, then the last one. */
    private static int walkBeneath(int rootFd, Path root, Path relative, int lastFlags, boolean createDirs)
            throws IOException {
        Path shown = root.resolve(relative);
        int dirFd = rootFd;
        try {
            int count = relative.getNameCount();
            for (int i = 0; i < count - 1; i++) {
                String name = relative.getName(i).toString();
                int next = LIBC.openat(dirFd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
                if (next < 0 && createDirs && errno() == ENOENT) {
                    if (LIBC.mkdirat(dirFd, name, 0755) != 0 && errno() != EEXIST) {
                        throw failure("mkdirat", shown, errno());
                    }
                    next = LIBC.openat(dirFd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
                }
                if (next < 0) {
                    throw beneathFailure(root, relative, shown, errno());
                }
                if (dirFd != rootFd) {
                    LIBC.close(dirFd);
                }
                dirFd = next;
            }
            int fd = LIBC.openat(dirFd, relative.getFileName().toString(), lastFlags | O_NOFOLLOW, 0644);
            if (fd < 0) {
                int err = errno();
                if (err == EEXIST) {
                    throw new java.nio.file.FileAlreadyExistsException(shown.toString());
                }
                throw beneathFailure(root, relative, shown, err);
            }
            return fd;
        } finally {
            if (dirFd != rootFd) {
                LIBC.close(dirFd);
            }
        }
    }

    private static IOException beneathFailure(Path root, Path relative, Path shown, int err) {
        if (err == EXDEV || err == ELOOP || err == ENOTDIR) {
            return new IOException("refused: " + shown + " leads out of export root " + root
                    + " through a symlink (or '..'): " + LIBC.strerror(err) + " (errno " + err + ")");
        }
        return failure("open", shown, err);
    }

    /**
     * Reopens a block device's descriptor with {@code O_EXCL}: the kernel then refuses while the device is mounted
     * or held exclusively by another opener (another store, a file system, device mapper), and refuses those while
     * this descriptor is open. Closes {@code fd} and returns the new descriptor.
     */
    static int reopenBlockDeviceExclusive(int fd, Path path) throws IOException {
        int exclusive = LIBC.open(procPath(fd).toString(), O_RDWR | O_EXCL | O_CLOEXEC, 0);
        if (exclusive < 0) {
            int err = errno();
            throw new IOException("block device " + path + " is in use (mounted, or opened exclusively by another"
                    + " process): " + LIBC.strerror(err) + " (errno " + err + ")");
        }
        LIBC.close(fd);
        return exclusive;
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
