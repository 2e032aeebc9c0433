package io.weft.cxl.map;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Size and mapping alignment of a device-DAX instance as sysfs reports them ({@code size} and {@code align} files
 * under {@code /sys/bus/dax/devices/daxX.Y}; kernels without {@code align} imply 2 MiB).
 */
public record DaxGeometry(long size, long alignment) {
    public static final long DEFAULT_ALIGNMENT = 2L << 20;

    public DaxGeometry {
        if (size < 0) {
            throw new IllegalArgumentException("negative DAX size " + size);
        }
        if (alignment <= 0 || Long.bitCount(alignment) != 1) {
            throw new IllegalArgumentException("DAX alignment must be a power of two: " + alignment);
        }
    }

    /** The mappable length: the size rounded down to the alignment. */
    public long usableLength() {
        return size & -alignment;
    }

    /** The sysfs directory of a DAX character device path such as {@code /dev/dax0.0}. */
    public static Path sysfsDirOf(Path device) {
        return Path.of("/sys/bus/dax/devices", device.getFileName().toString());
    }

    public static DaxGeometry read(Path sysfsDir) throws IOException {
        Path sizeFile = sysfsDir.resolve("size");
        if (!Files.isRegularFile(sizeFile)) {
            throw new IOException("not a device-DAX sysfs directory (no size file): " + sysfsDir);
        }
        long size = parse(sizeFile);
        Path alignFile = sysfsDir.resolve("align");
        long align = Files.isRegularFile(alignFile) ? parse(alignFile) : DEFAULT_ALIGNMENT;
        try {
            return new DaxGeometry(size, align);
        } catch (IllegalArgumentException e) {
            throw new IOException(sysfsDir + ": " + e.getMessage(), e);
        }
    }

    private static long parse(Path file) throws IOException {
        String text = Files.readString(file).trim();
        try {
            return text.startsWith("0x") ? Long.parseUnsignedLong(text.substring(2), 16) : Long.parseLong(text);
        } catch (NumberFormatException e) {
            throw new IOException("unreadable number '" + text + "' in " + file, e);
        }
    }
}
