package io.weft.core.store;

import com.sun.nio.file.ExtendedOpenOption;
import io.weft.core.io.BlockDevice;
import io.weft.core.io.IoStatus;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.ClosedByInterruptException;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.OpenOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A regular file or a raw block device used as a block store.
 *
 * <p>Data moves through positional {@link FileChannel} IO. Next to the channel the store keeps its own native
 * descriptor of the same inode (the channel is opened through {@code /proc/self/fd/N}) for what the JDK cannot do:
 * punching holes and zeroing ranges with {@code fallocate}, mapping allocation with {@code lseek SEEK_DATA/SEEK_HOLE},
 * growing sparsely with {@code ftruncate}, and asking a block device for its size and sector size.
 *
 * <ul>
 *   <li>Hole punching is probed once at open (a punch past the end of a file changes nothing; for a block device the
 *   queue's {@code write_zeroes_max_bytes} says whether the kernel can zero without writing). If a punch later fails
 *   with EOPNOTSUPP the store stops trying and falls back to writing zeros.</li>
 *   <li>With {@code directIo} the channel is opened with O_DIRECT. Offsets and lengths must then be multiples of the
 *   logical block size (at least the file system's block size, which the JDK enforces); payloads that are not in an
 *   aligned direct buffer go through a per-thread aligned bounce buffer.</li>
 *   <li>Every request is checked against the size and the logical block size before it reaches the kernel; a refusal
 *   is a {@link StoreException} carrying the {@link IoStatus} to report.</li>
 *   <li>Every open locks the image with an open-file-description lock on the store's descriptor: exclusive when
 *   writable, shared when read-only. A conflicting open, in this process or another (another Weft node, qemu),
 *   fails at once naming the image; the lock goes with {@link #close()}. A block device opened read-write is in
 *   addition claimed with {@code O_EXCL}, so the kernel refuses it while it is mounted or claimed elsewhere.</li>
 *   <li>{@link #openBeneath} and {@link #createBeneath} open an image relative to an export root in the kernel
 *   ({@code openat2} with {@code RESOLVE_BENEATH}, or an {@code O_NOFOLLOW} walk), and the store keeps that
 *   descriptor: a symlink swapped in after a path was checked cannot lead the store outside the root.</li>
 *   <li>A thread interrupted during IO makes the JDK close the channel; the store then reopens it from its native
 *   descriptor, fails only the interrupted request and lets the others retry, so one interrupt cannot kill a
 *   store shared by many connections.</li>
 * </ul>
 *
 * <p>Over 600 lines because of what surrounds the IO, not the IO: every native call above shares the store's one
 * descriptor, its lock and its fallback rules, and keeping them in one class keeps that descriptor's lifetime in one
 * place.
 */
public final class FileBackingStore implements BackingStore {
    private static final int ZERO_CHUNK = 1 << 20;
    private static final int S_IFMT = 0170000;
    private static final int S_IFBLK = 0060000;
    private static final int S_IFREG = 0100000;

    private final Path path;
    private final int fd;
    private final boolean readOnly;
    private final boolean directIo;
    private final boolean blockDevice;
    private final int logicalBlockSize;
    private final boolean rotational;
    private final ByteBuffer zeros;
    private final ThreadLocal<ByteBuffer> bounce;
    private final Object reopenLock = new Object();

    private volatile FileChannel channel;
    private volatile long size;
    private volatile boolean canPunch;
    /** 1 = FALLOC_FL_ZERO_RANGE works, 0 = not tried yet, -1 = unsupported. */
    private volatile int zeroRangeSupport;
    private volatile boolean closed;
    /**
     * Read-only mappings of the file for lent READs ({@link #readMapping}), one per {@link #MAP_WINDOW} of the file,
     * made on first use. Replaced by a fresh array when the size changes; a mapping already lent stays valid for its
     * borrower (the JDK unmaps it only once nothing references it).
     */
    private volatile MappedByteBuffer[] readMappings = new MappedByteBuffer[0];

    /** Size of one read mapping window (a mapping is at most 2 GiB in the JDK; a READ across two windows is copied). */
    public static final long MAP_WINDOW = 1L << 30;

    private FileBackingStore(Path path, int fd, FileChannel channel, boolean readOnly, boolean directIo,
                             boolean blockDevice, long size, int logicalBlockSize, boolean rotational,
                             boolean canPunch) {
        this.path = path;
        this.fd = fd;
        this.channel = channel;
        this.readOnly = readOnly;
        this.directIo = directIo;
        this.blockDevice = blockDevice;
        this.size = size;
        this.logicalBlockSize = logicalBlockSize;
        this.rotational = rotational;
        this.canPunch = canPunch;
        this.zeros = sharedZeros(Math.max(4096, logicalBlockSize));
        this.bounce = directIo
                ? ThreadLocal.withInitial(() -> alignedDirect(ZERO_CHUNK, Math.max(4096, logicalBlockSize)))
                : null;
    }

    /** Opens an existing file or block device with buffered IO. */
    public static FileBackingStore open(Path path, boolean readOnly) throws IOException {
        return open(path, readOnly, false);
    }

    /**
     * Opens an existing regular file or block device.
     *
     * @param directIo bypass the page cache (O_DIRECT); requests must then be aligned to {@link #logicalBlockSize()}
     */
    public static FileBackingStore open(Path path, boolean readOnly, boolean directIo) throws IOException {
        return open(path, readOnly, directIo, true);
    }

    /**
     * As {@link #open(Path, boolean, boolean)}; {@code allowPunch = false} never punches holes or zeroes ranges in
     * the file system, as on one that cannot (tests use it to exercise the fallbacks).
     */
    static FileBackingStore open(Path path, boolean readOnly, boolean directIo, boolean allowPunch)
            throws IOException {
        return fromDescriptor(LinuxIo.open(path, readOnly), path, readOnly, directIo, allowPunch);
    }

    /**
     * Opens the existing image {@code relative} under the export root {@code root} without leaving it: an absolute
     * path, a {@code ..} component or a symlink that leads out of the root is refused (a symlink that stays inside
     * is followed where the kernel has {@code openat2}, Linux 5.6+; older kernels refuse every symlink).
     *
     * @param root     the export root (an existing directory; the node resolved it when it started)
     * @param relative the image's path below the root
     */
    public static FileBackingStore openBeneath(Path root, Path relative, boolean readOnly, boolean directIo)
            throws IOException {
        return fromDescriptor(LinuxIo.openBeneath(root, relative, readOnly), root.resolve(relative), readOnly,
                directIo, true);
    }

    /**
     * Creates the image {@code relative} under the export root {@code root} as a sparse file of {@code size} bytes
     * (missing parent directories are created) and opens it read-write. Nothing may exist at that path; no
     * component is followed if it is a symlink.
     */
    public static FileBackingStore createBeneath(Path root, Path relative, long size) throws IOException {
        if (size < 0) {
            throw new IOException("negative size " + size + " for " + root.resolve(relative));
        }
        FileBackingStore store = fromDescriptor(LinuxIo.createBeneath(root, relative), root.resolve(relative), false,
                false, true);
        if (size > 0) {
            try {
                store.resize(size);
            } catch (IOException e) {
                store.close();
                throw e;
            }
        }
        return store;
    }

    /** Builds the store around a descriptor it now owns (closed on failure); the file is not opened again by name. */
    private static FileBackingStore fromDescriptor(int openedFd, Path path, boolean readOnly, boolean directIo,
                                                   boolean allowPunch) throws IOException {
        int fd = openedFd;
        try {
            Path same = LinuxIo.procPath(fd);
            int mode = (Integer) Files.getAttribute(same, "unix:mode");
            boolean block = (mode & S_IFMT) == S_IFBLK;
            if (!block && (mode & S_IFMT) != S_IFREG) {
                throw new IOException(path + " is neither a regular file nor a block device");
            }
            if (block && !readOnly) {
                fd = LinuxIo.reopenBlockDeviceExclusive(fd, path);
                same = LinuxIo.procPath(fd);
            }
            LinuxIo.lockOrFail(fd, readOnly, path);
            List<OpenOption> options = new ArrayList<>();
            options.add(StandardOpenOption.READ);
            if (!readOnly) {
                options.add(StandardOpenOption.WRITE);
            }
            if (directIo) {
                options.add(ExtendedOpenOption.DIRECT);
            }
            FileChannel channel = FileChannel.open(same, options.toArray(new OpenOption[0]));
            try {
                long size;
                int lbs;
                boolean rotational;
                boolean punch;
                if (block) {
                    size = LinuxIo.blockDeviceSize(fd, path);
                    lbs = LinuxIo.blockDeviceSectorSize(fd, path);
                    long rdev = (Long) Files.getAttribute(same, "unix:rdev");
                    rotational = LinuxIo.sysBlockQueueValue(rdev, "rotational", 0) == 1;
                    punch = allowPunch && !readOnly
                            && LinuxIo.sysBlockQueueValue(rdev, "write_zeroes_max_bytes", 0) > 0;
                } else {
                    size = channel.size();
                    lbs = 512;
                    long dev = (Long) Files.getAttribute(same, "unix:dev");
                    rotational = LinuxIo.sysBlockQueueValue(dev, "rotational", 0) == 1;
                    punch = allowPunch && !readOnly && probePunch(fd, size);
                }
                if (directIo) {
                    // The JDK checks O_DIRECT alignment against the file system's block size.
                    lbs = Math.max(lbs, (int) Files.getFileStore(path).getBlockSize());
                }
                return new FileBackingStore(path, fd, channel, readOnly, directIo, block, size, lbs, rotational,
                        punch);
            } catch (IOException | RuntimeException e) {
                channel.close();
                throw e;
            }
        } catch (IOException | RuntimeException e) {
            LinuxIo.close(fd);
            throw e;
        }
    }

    /**
     * Creates a sparse file of {@code size} bytes if it does not exist (an existing file keeps its size), then opens it
     * read-write.
     */
    public static FileBackingStore createSparse(Path path, long size) throws IOException {
        return createSparse(path, size, false);
    }

    /** As {@link #createSparse(Path, long)}, optionally with O_DIRECT. */
    public static FileBackingStore createSparse(Path path, long size, boolean directIo) throws IOException {
        if (size < 0) {
            throw new IOException("negative size " + size + " for " + path);
        }
        boolean created = false;
        if (!Files.exists(path)) {
            Path parent = path.toAbsolutePath().getParent();
            if (parent != null) {
                Files.createDirectories(parent);
            }
            Files.createFile(path);
            created = true;
        }
        FileBackingStore store = open(path, false, directIo);
        if (created && size > 0) {
            try {
                store.resize(size);
            } catch (IOException e) {
                store.close();
                throw e;
            }
        }
        return store;
    }

    /** A punch past the end of a file frees nothing and fails only where the file system cannot punch at all. */
    private static boolean probePunch(int fd, long size) {
        long probeOffset = ((size + 4095) & ~4095L) + 4096;
        return LinuxIo.fallocate(fd, LinuxIo.FALLOC_FL_PUNCH_HOLE | LinuxIo.FALLOC_FL_KEEP_SIZE, probeOffset,
                4096) == 0;
    }

    /**
     * One read-only megabyte of zeros per alignment for the whole process (never written, so every store may share
     * it; callers take a duplicate): a megabyte per open store was most of an idle served mapping's memory.
     */
    private static final java.util.concurrent.ConcurrentHashMap<Integer, ByteBuffer> ZEROS =
            new java.util.concurrent.ConcurrentHashMap<>();

    private static ByteBuffer sharedZeros(int alignment) {
        return ZEROS.computeIfAbsent(alignment, a -> alignedDirect(ZERO_CHUNK, a).asReadOnlyBuffer());
    }

    private static ByteBuffer alignedDirect(int capacity, int alignment) {
        return ByteBuffer.allocateDirect(capacity + alignment).alignedSlice(alignment).limit(capacity);
    }

    @Override
    public String path() {
        return path.toString();
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public boolean readOnly() {
        return readOnly;
    }

    @Override
    public int logicalBlockSize() {
        return logicalBlockSize;
    }

    @Override
    public boolean canPunchHoles() {
        return canPunch;
    }

    @Override
    public boolean rotational() {
        return rotational;
    }

    /** True for a raw block device, false for a regular file. */
    public boolean isBlockDevice() {
        return blockDevice;
    }

    /** True when the page cache is bypassed (O_DIRECT). */
    public boolean directIo() {
        return directIo;
    }

    private void checkRequest(long offset, long length) throws StoreException {
        if (closed) {
            throw new StoreException(IoStatus.ESHUTDOWN, "store " + path + " is closed");
        }
        long currentSize = size;
        if (offset < 0 || length < 0 || offset > currentSize || length > currentSize - offset) {
            throw new StoreException(IoStatus.EOVERFLOW, "range [" + offset + ", +" + length + ") outside store "
                    + path + " of " + currentSize + " bytes");
        }
        if (((offset | length) & (logicalBlockSize - 1)) != 0) {
            throw new StoreException(IoStatus.EINVAL, "range [" + offset + ", +" + length + ") not aligned to "
                    + logicalBlockSize + " bytes on " + path);
        }
    }

    private void checkWritable() throws StoreException {
        if (readOnly) {
            throw new StoreException(IoStatus.EPERM, "store " + path + " is read-only");
        }
    }

    private boolean alignedForDirect(ByteBuffer buffer) {
        return buffer.isDirect() && buffer.alignmentOffset(buffer.position(), logicalBlockSize) == 0;
    }

    @Override
    public void read(long offset, ByteBuffer dst) throws IOException {
        checkRequest(offset, dst.remaining());
        if (directIo && !alignedForDirect(dst)) {
            ByteBuffer staging = bounce.get();
            long pos = offset;
            while (dst.hasRemaining()) {
                int chunk = Math.min(dst.remaining(), staging.capacity());
                staging.clear().limit(chunk);
                readFully(pos, staging);
                staging.flip();
                dst.put(staging);
                pos += chunk;
            }
            return;
        }
        readFully(offset, dst);
    }

    private void readFully(long offset, ByteBuffer dst) throws IOException {
        int start = dst.position();
        for (int attempt = 0; ; attempt++) {
            FileChannel ch = channel;
            try {
                long pos = offset + (dst.position() - start);
                while (dst.hasRemaining()) {
                    int n = ch.read(dst, pos);
                    if (n < 0) {
                        // Past the end of a file that shrank under us: the rest reads as zeros.
                        while (dst.hasRemaining()) {
                            dst.put((byte) 0);
                        }
                        return;
                    }
                    pos += n;
                }
                return;
            } catch (ClosedChannelException e) {
                recoverChannel(ch, e, attempt);
            }
        }
    }

    @Override
    public void write(long offset, ByteBuffer src, boolean fua) throws IOException {
        checkWritable();
        checkRequest(offset, src.remaining());
        if (directIo && !alignedForDirect(src)) {
            ByteBuffer staging = bounce.get();
            long pos = offset;
            while (src.hasRemaining()) {
                int chunk = Math.min(src.remaining(), staging.capacity());
                staging.clear();
                int oldLimit = src.limit();
                src.limit(src.position() + chunk);
                staging.put(src);
                src.limit(oldLimit);
                staging.flip();
                writeFully(pos, staging);
                pos += chunk;
            }
        } else {
            writeFully(offset, src);
        }
        if (fua) {
            flush();
        }
    }

    private void writeFully(long offset, ByteBuffer src) throws IOException {
        int start = src.position();
        for (int attempt = 0; ; attempt++) {
            FileChannel ch = channel;
            try {
                long pos = offset + (src.position() - start);
                while (src.hasRemaining()) {
                    pos += ch.write(src, pos);
                }
                return;
            } catch (ClosedChannelException e) {
                recoverChannel(ch, e, attempt);
            }
        }
    }

    /**
     * The channel was closed under a request: by {@link #close()} (report ESHUTDOWN) or because some thread was
     * interrupted mid-IO (reopen from the native descriptor; the interrupted request fails, others retry).
     */
    private void recoverChannel(FileChannel broken, ClosedChannelException cause, int attempt) throws IOException {
        if (closed) {
            throw new StoreException(IoStatus.ESHUTDOWN, "store " + path + " is closed");
        }
        synchronized (reopenLock) {
            if (channel == broken && !closed) {
                List<OpenOption> options = new ArrayList<>();
                options.add(StandardOpenOption.READ);
                if (!readOnly) {
                    options.add(StandardOpenOption.WRITE);
                }
                if (directIo) {
                    options.add(ExtendedOpenOption.DIRECT);
                }
                channel = FileChannel.open(LinuxIo.procPath(fd), options.toArray(new OpenOption[0]));
            }
        }
        if (cause instanceof ClosedByInterruptException || attempt > 2) {
            throw new StoreException(IoStatus.EIO, "IO on " + path + " interrupted");
        }
    }

    @Override
    public void flush() throws IOException {
        if (readOnly) {
            return;
        }
        for (int attempt = 0; ; attempt++) {
            FileChannel ch = channel;
            try {
                ch.force(false);
                return;
            } catch (ClosedChannelException e) {
                recoverChannel(ch, e, attempt);
            }
        }
    }

    @Override
    public void discard(long offset, long length) throws IOException {
        checkWritable();
        checkRequest(offset, length);
        if (canPunch) {
            punch(offset, length);
        }
        // Without hole punching a discard is a no-op: NBD allows TRIM to leave the data as it was.
    }

    /** @return true if the range is now a hole, false if this store turned out not to support punching */
    private boolean punch(long offset, long length) throws IOException {
        int err = LinuxIo.fallocate(fd, LinuxIo.FALLOC_FL_PUNCH_HOLE | LinuxIo.FALLOC_FL_KEEP_SIZE, offset, length);
        if (err == 0) {
            return true;
        }
        if (err == LinuxIo.EOPNOTSUPP) {
            canPunch = false;
            return false;
        }
        throw LinuxIo.failure("fallocate(PUNCH_HOLE)", path, err);
    }

    @Override
    public void writeZeroes(long offset, long length, boolean mayPunch, boolean fastOnly) throws IOException {
        checkWritable();
        checkRequest(offset, length);
        if (length == 0) {
            return;
        }
        if (mayPunch && canPunch && punch(offset, length)) {
            return;
        }
        if (zeroRangeSupport >= 0 && canPunch) {
            int err = LinuxIo.fallocate(fd, LinuxIo.FALLOC_FL_ZERO_RANGE | LinuxIo.FALLOC_FL_KEEP_SIZE, offset,
                    length);
            if (err == 0) {
                zeroRangeSupport = 1;
                return;
            }
            if (err != LinuxIo.EOPNOTSUPP) {
                throw LinuxIo.failure("fallocate(ZERO_RANGE)", path, err);
            }
            zeroRangeSupport = -1;
        }
        if (!blockDevice && canPunch && punch(offset, length)) {
            // tmpfs cannot ZERO_RANGE: punch, then allocate again so the range stays allocated (NO_HOLE).
            int err = LinuxIo.fallocate(fd, LinuxIo.FALLOC_FL_KEEP_SIZE, offset, length);
            if (err != 0) {
                throw LinuxIo.failure("fallocate", path, err);
            }
            return;
        }
        if (fastOnly) {
            throw new StoreException(IoStatus.ENOTSUP, "zeroing needs data writes on " + path);
        }
        long pos = offset;
        long end = offset + length;
        while (pos < end) {
            ByteBuffer z = zeros.duplicate();
            z.limit((int) Math.min(ZERO_CHUNK, end - pos));
            int n = z.remaining();
            writeFully(pos, z);
            pos += n;
        }
    }

    @Override
    public long describeExtents(long offset, long length, BlockDevice.ExtentConsumer consumer) throws IOException {
        long currentSize = size;
        if (offset < 0 || length < 0 || offset > currentSize) {
            throw new StoreException(IoStatus.EOVERFLOW, "extent query at " + offset + " outside " + path);
        }
        long end = Math.min(currentSize, offset + Math.min(length, currentSize - offset));
        if (end == offset) {
            return 0;
        }
        if (blockDevice) {
            consumer.accept(end - offset, 0);
            return end - offset;
        }
        long pos = offset;
        while (pos < end) {
            long data = LinuxIo.lseek(fd, pos, LinuxIo.SEEK_DATA);
            if (data == -LinuxIo.ENXIO) {
                data = end; // no data after pos: the rest is a hole
            } else if (data < 0) {
                if (pos == offset) {
                    // The file system cannot tell: report everything as data, which is always correct.
                    consumer.accept(end - offset, 0);
                    return end - offset;
                }
                return pos - offset;
            }
            data = Math.min(data, end);
            if (data > pos) {
                if (!consumer.accept(data - pos, BlockDevice.EXTENT_HOLE | BlockDevice.EXTENT_ZERO)) {
                    return data - offset;
                }
                pos = data;
                continue;
            }
            long hole = LinuxIo.lseek(fd, pos, LinuxIo.SEEK_HOLE);
            hole = hole < 0 ? end : Math.min(hole, end);
            if (hole <= pos) {
                hole = end; // defensive: never report an empty extent
            }
            if (!consumer.accept(hole - pos, 0)) {
                return hole - offset;
            }
            pos = hole;
        }
        return end - offset;
    }

    @Override
    public void resize(long newSize) throws IOException {
        checkWritable();
        if (blockDevice) {
            throw new StoreException(IoStatus.ENOTSUP, "block device " + path + " cannot be resized");
        }
        if (newSize < 0 || (newSize & (logicalBlockSize - 1)) != 0) {
            throw new StoreException(IoStatus.EINVAL, "size " + newSize + " is not a non-negative multiple of "
                    + logicalBlockSize + " for " + path);
        }
        LinuxIo.ftruncate(fd, newSize, path);
        size = newSize;
        readMappings = new MappedByteBuffer[0]; // windows are cut at the old size: map again on demand
    }

    /**
     * A read-only mapping of the file holding {@code [offset, offset + length)} at index
     * {@code offset - mappingStart(offset)}, for lending the bytes of a READ without copying them (see
     * {@link io.weft.core.io.ReadLending}); null when this store does not lend that range: O_DIRECT (the page cache
     * is bypassed on purpose), a raw block device, a closed store, a range outside the file or across two
     * {@link #MAP_WINDOW windows}, or a mapping that failed. The caller never writes through it, nor changes its
     * position or limit (it is shared). If the file is later truncated below the range by someone else, reading the
     * lost pages faults: the kernel fails a socket write from them with EFAULT (the connection then closes), so
     * lent bytes go to a socket, not through Java code that would see SIGBUS.
     */
    public ByteBuffer readMapping(long offset, int length) {
        long currentSize = size;
        if (directIo || blockDevice || closed || length <= 0 || offset < 0 || offset > currentSize - length) {
            return null;
        }
        long start = mappingStart(offset);
        if (offset + length > start + MAP_WINDOW) {
            return null;
        }
        int window = (int) (offset / MAP_WINDOW);
        MappedByteBuffer[] maps = readMappings;
        if (window < maps.length && maps[window] != null) {
            return offset + length <= start + maps[window].capacity() ? maps[window] : null;
        }
        synchronized (reopenLock) { // control path: once per window
            maps = readMappings;
            if (window < maps.length && maps[window] != null) {
                return offset + length <= start + maps[window].capacity() ? maps[window] : null;
            }
            if (closed || size != currentSize) {
                return null;
            }
            MappedByteBuffer m;
            try {
                m = channel.map(FileChannel.MapMode.READ_ONLY, start, Math.min(MAP_WINDOW, currentSize - start));
            } catch (IOException | RuntimeException e) {
                return null; // not mappable here: the caller copies
            }
            MappedByteBuffer[] grown = Arrays.copyOf(maps, Math.max(maps.length, window + 1));
            grown[window] = m;
            readMappings = grown;
            return offset + length <= start + m.capacity() ? m : null;
        }
    }

    /** Where the {@link #readMapping} window holding {@code offset} starts in the file. */
    public static long mappingStart(long offset) {
        return offset & -MAP_WINDOW;
    }

    /**
     * Closes the channel and the native descriptor (which releases the lock). Callers stop submitting first: a
     * request still running would fail with ESHUTDOWN.
     */
    @Override
    public void close() throws IOException {
        synchronized (reopenLock) {
            if (closed) {
                return;
            }
            closed = true;
            readMappings = new MappedByteBuffer[0];
            try {
                channel.close();
            } finally {
                LinuxIo.close(fd);
            }
        }
    }

    @Override
    public String toString() {
        return "FileBackingStore[" + path + (blockDevice ? ", block device" : "") + (directIo ? ", O_DIRECT" : "")
                + (readOnly ? ", read-only" : "") + ", " + size + " bytes]";
    }
}
