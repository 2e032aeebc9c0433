package io.weft.cxl.map;

import java.io.IOException;
import java.lang.reflect.Constructor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * One {@code MAP_SHARED} mapping of a file or DAX character device, made with mmap through jnr-ffi so a region may
 * exceed 2 GiB and may be placed at a device-required alignment. Views ({@link #byteBuffer}) are direct ByteBuffers
 * over the mapped memory; they must not be used after {@link #close()}.
 */
public final class SharedMapping implements AutoCloseable {
    private static final Constructor<?> DIRECT_BUFFER_CTOR = directBufferConstructor();

    private final String source;
    private final long address;
    private final long length;
    private final long alignment;
    private boolean closed;

    private SharedMapping(String source, long address, long length, long alignment) {
        this.source = source;
        this.address = address;
        this.length = length;
        this.alignment = alignment;
    }

    /**
     * Maps a regular file (tmpfs, fsdax, or any file system) shared.
     *
     * @param create when true the file is created if missing and sized to {@code length}; when false the file must
     *               already be at least {@code length} bytes long ({@code length <= 0} maps the whole file)
     */
    public static SharedMapping mapFile(Path path, long length, boolean create) throws IOException {
        if (!create && !Files.isRegularFile(path)) {
            throw new IOException("no region file at " + path);
        }
        long existing = Files.exists(path) ? Files.size(path) : 0;
        long mapLength = length > 0 ? length : existing;
        if (mapLength <= 0) {
            throw new IOException("region file " + path + " is empty");
        }
        if (!create && existing < mapLength) {
            throw new IOException("region file " + path + " is " + existing + " bytes, expected at least " + mapLength);
        }
        LibC libc = LibC.Holder.LIBC;
        int fd = libc.open(path.toString(), create ? LibC.O_RDWR | LibC.O_CREAT : LibC.O_RDWR, 0600);
        if (fd < 0) {
            throw new IOException("open " + path + ": " + LibC.Holder.lastError());
        }
        try {
            if (create && existing < mapLength && libc.ftruncate(fd, mapLength) != 0) {
                throw new IOException("ftruncate " + path + " to " + mapLength + ": " + LibC.Holder.lastError());
            }
            long addr = mapAligned(fd, mapLength, 0, path.toString());
            return new SharedMapping(path.toString(), addr, mapLength, 0);
        } finally {
            libc.close(fd);
        }
    }

    /**
     * Maps a device-DAX character device ({@code /dev/daxX.Y}). Its size and alignment come from sysfs; the mapping
     * length is rounded down to the alignment and the virtual address is aligned to it, as device-dax requires.
     *
     * @param sysfsDir the device's sysfs directory, normally {@code /sys/bus/dax/devices/daxX.Y}
     */
    public static SharedMapping mapDaxDevice(Path device, Path sysfsDir) throws IOException {
        DaxGeometry geometry = DaxGeometry.read(sysfsDir);
        long mapLength = geometry.usableLength();
        if (mapLength <= 0) {
            throw new IOException("DAX device " + device + " is smaller than its alignment " + geometry.alignment());
        }
        LibC libc = LibC.Holder.LIBC;
        int fd = libc.open(device.toString(), LibC.O_RDWR, 0);
        if (fd < 0) {
            throw new IOException("open " + device + ": " + LibC.Holder.lastError());
        }
        try {
            long addr = mapAligned(fd, mapLength, geometry.alignment(), device.toString());
            return new SharedMapping(device.toString(), addr, mapLength, geometry.alignment());
        } finally {
            libc.close(fd);
        }
    }

    /** Maps a regular file at a virtual address aligned to {@code alignment}: the DAX code path, testable on tmpfs. */
    public static SharedMapping mapFileAligned(Path path, long length, long alignment) throws IOException {
        LibC libc = LibC.Holder.LIBC;
        int fd = libc.open(path.toString(), LibC.O_RDWR, 0);
        if (fd < 0) {
            throw new IOException("open " + path + ": " + LibC.Holder.lastError());
        }
        try {
            long addr = mapAligned(fd, length, alignment, path.toString());
            return new SharedMapping(path.toString(), addr, length, alignment);
        } finally {
            libc.close(fd);
        }
    }

    /**
     * Reserves {@code length + alignment} of address space, then maps the file with MAP_FIXED at the first aligned
     * address inside the reservation and returns the slack, so the mapping starts on an alignment boundary.
     */
    static long mapAligned(int fd, long length, long alignment, String what) throws IOException {
        LibC libc = LibC.Holder.LIBC;
        int prot = LibC.PROT_READ | LibC.PROT_WRITE;
        if (alignment <= 4096) {
            long addr = LibC.Holder.mmap(0, length, prot, LibC.MAP_SHARED, fd, 0);
            if (addr == LibC.MAP_FAILED) {
                throw new IOException("mmap " + what + " (" + length + " bytes): " + LibC.Holder.lastError());
            }
            return addr;
        }
        if (Long.bitCount(alignment) != 1) {
            throw new IOException("alignment of " + what + " is not a power of two: " + alignment);
        }
        long reserveLength = length + alignment;
        long reserve = LibC.Holder.mmap(0, reserveLength, LibC.PROT_NONE, LibC.MAP_PRIVATE | LibC.MAP_ANONYMOUS, -1, 0);
        if (reserve == LibC.MAP_FAILED) {
            throw new IOException("reserve address space for " + what + ": " + LibC.Holder.lastError());
        }
        long aligned = (reserve + alignment - 1) & -alignment;
        long addr = LibC.Holder.mmap(aligned, length, prot, LibC.MAP_SHARED | LibC.MAP_FIXED, fd, 0);
        if (addr == LibC.MAP_FAILED) {
            String err = LibC.Holder.lastError();
            LibC.Holder.munmap(reserve, reserveLength);
            throw new IOException("mmap " + what + " at alignment " + alignment + ": " + err);
        }
        if (aligned > reserve) {
            LibC.Holder.munmap(reserve, aligned - reserve);
        }
        long end = aligned + length;
        long reserveEnd = reserve + reserveLength;
        if (reserveEnd > end) {
            LibC.Holder.munmap(end, reserveEnd - end);
        }
        return addr;
    }

    public String source() {
        return source;
    }

    public long address() {
        return address;
    }

    public long length() {
        return length;
    }

    /** 0 for an ordinary page-aligned mapping, else the device alignment the mapping honours. */
    public long alignment() {
        return alignment;
    }

    /** A little-endian direct ByteBuffer over {@code [offset, offset + length)} of the mapping. */
    public ByteBuffer byteBuffer(long offset, int length) {
        if (offset < 0 || length < 0 || offset > this.length - length) {
            throw new IndexOutOfBoundsException(
                    "view [" + offset + ", +" + length + ") outside mapping of " + this.length);
        }
        return wrapAddress(address + offset, length);
    }

    /** Wraps raw memory as a direct ByteBuffer (needs {@code --add-opens java.base/java.nio=ALL-UNNAMED}). */
    public static ByteBuffer wrapAddress(long address, int length) {
        try {
            Object buffer = DIRECT_BUFFER_CTOR.getParameterTypes()[1] == int.class
                    ? DIRECT_BUFFER_CTOR.newInstance(address, length)
                    : DIRECT_BUFFER_CTOR.newInstance(address, (long) length);
            return ((ByteBuffer) buffer).order(ByteOrder.LITTLE_ENDIAN);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("cannot wrap mapped memory as a ByteBuffer", e);
        }
    }

    private static Constructor<?> directBufferConstructor() {
        try {
            Class<?> cls = Class.forName("java.nio.DirectByteBuffer");
            Constructor<?> ctor;
            try {
                ctor = cls.getDeclaredConstructor(long.class, int.class);
            } catch (NoSuchMethodException e) {
                ctor = cls.getDeclaredConstructor(long.class, long.class);
            }
            ctor.setAccessible(true);
            return ctor;
        } catch (ReflectiveOperationException | RuntimeException e) {
            throw new ExceptionInInitializerError(
                    "java.nio.DirectByteBuffer is not accessible; start the JVM with "
                            + "--add-opens java.base/java.nio=ALL-UNNAMED (" + e + ")");
        }
    }

    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            LibC.Holder.munmap(address, length);
        }
    }
}
