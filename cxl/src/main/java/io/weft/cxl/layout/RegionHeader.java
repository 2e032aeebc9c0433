package io.weft.cxl.layout;

import java.nio.ByteOrder;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * Flyweight over the region header: the first 4 KiB of the region, written once by {@code format} and read-only
 * afterwards, so it carries one copy protected by CRC32C (a format that died half way fails the CRC or has no magic).
 * All integers little-endian.
 *
 * <pre>
 *  0               8              12             16
 *  +---------------+--------------+--------------+---------------+
 *  | magic "WEFTCXL1" (8)         | version (4)  | flags (4)     |  0
 *  +------------------------------+--------------+---------------+
 *  | region size (8)              | maxHosts (4) | maxBackends(4)|  16
 *  +------------------------------+--------------+---------------+
 *  | maxBlkdevs(4) | segments (4) | ringDepth(4) | slotSize (4)  |  32
 *  +---------------+--------------+--------------+---------------+
 *  | segment size (8)             | host table offset (8)        |  48
 *  | backend table offset (8)     | blkdev table offset (8)      |  64
 *  | segment table offset (8)     | segments offset (8)          |  80
 *  | format id (8, random)        | format time ms (8)           |  96
 *  | header CRC32C over [8,112) (4) | zero padding to 4096       | 112
 * </pre>
 * The checksum covers everything but the magic, which is written last (ordered) so a reader never accepts a header
 * whose other fields are still being written.
 */
public final class RegionHeader {
    public static final int SIZE = 4096;
    public static final long MAGIC = 0x314C584354464557L; // "WEFTCXL1" read as little-endian bytes
    public static final int VERSION = 1;
    /** Channels created without an explicit choice checksum every ring entry. */
    public static final int FLAG_ENTRY_CRC = 1;
    /** Channels created without an explicit choice checksum every data payload. */
    public static final int FLAG_DATA_CRC = 1 << 1;
    public static final int KNOWN_FLAGS = FLAG_ENTRY_CRC | FLAG_DATA_CRC;

    static final int MAGIC_OFFSET = 0;
    static final int VERSION_OFFSET = 8;
    static final int FLAGS_OFFSET = 12;
    static final int REGION_SIZE_OFFSET = 16;
    static final int MAX_HOSTS_OFFSET = 24;
    static final int MAX_BACKENDS_OFFSET = 28;
    static final int MAX_BLKDEVS_OFFSET = 32;
    static final int SEGMENTS_OFFSET = 36;
    static final int RING_DEPTH_OFFSET = 40;
    static final int SLOT_SIZE_OFFSET = 44;
    static final int SEGMENT_SIZE_OFFSET = 48;
    static final int HOST_TABLE_OFFSET = 56;
    static final int BACKEND_TABLE_OFFSET = 64;
    static final int BLKDEV_TABLE_OFFSET = 72;
    static final int SEGMENT_TABLE_OFFSET = 80;
    static final int SEGMENT_AREA_OFFSET = 88;
    static final int FORMAT_ID_OFFSET = 96;
    static final int FORMAT_TIME_OFFSET = 104;
    static final int CRC_OFFSET = 112;

    private final UnsafeBuffer buffer;

    public RegionHeader(UnsafeBuffer buffer) {
        if (buffer.capacity() < SIZE) {
            throw new IllegalArgumentException("header buffer too small: " + buffer.capacity());
        }
        this.buffer = buffer;
    }

    /** Writes a fresh header; the magic goes last. */
    public void write(RegionGeometry g, int flags, long formatId, long formatTimeMillis) {
        if ((flags & ~KNOWN_FLAGS) != 0) {
            throw new IllegalArgumentException("unknown region flags 0x" + Integer.toHexString(flags));
        }
        buffer.putLongVolatile(MAGIC_OFFSET, 0);
        buffer.setMemory(8, SIZE - 8, (byte) 0);
        buffer.putInt(VERSION_OFFSET, VERSION);
        buffer.putInt(FLAGS_OFFSET, flags);
        buffer.putLong(REGION_SIZE_OFFSET, g.regionSize());
        buffer.putInt(MAX_HOSTS_OFFSET, g.maxHosts());
        buffer.putInt(MAX_BACKENDS_OFFSET, g.maxBackends());
        buffer.putInt(MAX_BLKDEVS_OFFSET, g.maxBlkdevs());
        buffer.putInt(SEGMENTS_OFFSET, g.segmentCount());
        buffer.putInt(RING_DEPTH_OFFSET, g.ringDepth());
        buffer.putInt(SLOT_SIZE_OFFSET, g.slotSize());
        buffer.putLong(SEGMENT_SIZE_OFFSET, g.segmentSize());
        buffer.putLong(HOST_TABLE_OFFSET, g.hostTableOffset());
        buffer.putLong(BACKEND_TABLE_OFFSET, g.backendTableOffset());
        buffer.putLong(BLKDEV_TABLE_OFFSET, g.blkdevTableOffset());
        buffer.putLong(SEGMENT_TABLE_OFFSET, g.segmentTableOffset());
        buffer.putLong(SEGMENT_AREA_OFFSET, g.segmentsOffset());
        buffer.putLong(FORMAT_ID_OFFSET, formatId);
        buffer.putLong(FORMAT_TIME_OFFSET, formatTimeMillis);
        buffer.putInt(CRC_OFFSET, Checksums.crc32c(buffer, VERSION_OFFSET, CRC_OFFSET - VERSION_OFFSET));
        buffer.putLongVolatile(MAGIC_OFFSET, MAGIC);
    }

    /**
     * Validates the header against the mapping it sits in and returns its geometry.
     *
     * @param mappedLength bytes actually mapped
     * @param expected     geometry the caller insists on, or {@code null} to accept what the header says
     * @throws RegionFormatException naming the first mismatch
     */
    public RegionGeometry validate(long mappedLength, RegionGeometry expected) throws RegionFormatException {
        if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) {
            throw new RegionFormatException("regions are little-endian; this platform is " + ByteOrder.nativeOrder());
        }
        long magic = buffer.getLongVolatile(MAGIC_OFFSET);
        if (magic != MAGIC) {
            throw new RegionFormatException(magic == 0
                    ? "no Weft CXL region here (magic is zero: never formatted, or a format was interrupted)"
                    : "not a Weft CXL region: bad magic 0x" + Long.toHexString(magic));
        }
        int version = buffer.getInt(VERSION_OFFSET);
        if (version != VERSION) {
            throw new RegionFormatException(
                    "unsupported region version " + version + " (this build reads " + VERSION + ")");
        }
        int crc = Checksums.crc32c(buffer, VERSION_OFFSET, CRC_OFFSET - VERSION_OFFSET);
        int storedCrc = buffer.getInt(CRC_OFFSET);
        if (crc != storedCrc) {
            throw new RegionFormatException("header checksum mismatch: stored 0x" + Integer.toHexString(storedCrc)
                    + ", computed 0x" + Integer.toHexString(crc) + " (corrupt header)");
        }
        int flags = buffer.getInt(FLAGS_OFFSET);
        if ((flags & ~KNOWN_FLAGS) != 0) {
            throw new RegionFormatException(
                    "region uses unknown feature flags 0x" + Integer.toHexString(flags & ~KNOWN_FLAGS));
        }
        RegionGeometry g;
        try {
            g = new RegionGeometry(buffer.getInt(MAX_HOSTS_OFFSET), buffer.getInt(MAX_BACKENDS_OFFSET),
                    buffer.getInt(MAX_BLKDEVS_OFFSET), buffer.getInt(SEGMENTS_OFFSET), buffer.getInt(RING_DEPTH_OFFSET),
                    buffer.getInt(SLOT_SIZE_OFFSET));
        } catch (IllegalArgumentException e) {
            throw new RegionFormatException("invalid geometry in header: " + e.getMessage());
        }
        checkField("region size", buffer.getLong(REGION_SIZE_OFFSET), g.regionSize());
        checkField("segment size", buffer.getLong(SEGMENT_SIZE_OFFSET), g.segmentSize());
        checkField("host table offset", buffer.getLong(HOST_TABLE_OFFSET), g.hostTableOffset());
        checkField("backend table offset", buffer.getLong(BACKEND_TABLE_OFFSET), g.backendTableOffset());
        checkField("blkdev table offset", buffer.getLong(BLKDEV_TABLE_OFFSET), g.blkdevTableOffset());
        checkField("segment table offset", buffer.getLong(SEGMENT_TABLE_OFFSET), g.segmentTableOffset());
        checkField("segments offset", buffer.getLong(SEGMENT_AREA_OFFSET), g.segmentsOffset());
        if (g.regionSize() > mappedLength) {
            throw new RegionFormatException("region needs " + g.regionSize() + " bytes but only " + mappedLength
                    + " are mapped (truncated file or wrong device)");
        }
        if (expected != null && !expected.equals(g)) {
            throw new RegionFormatException("geometry mismatch: region has " + g + ", caller expects " + expected);
        }
        return g;
    }

    private static void checkField(String name, long stored, long derived) throws RegionFormatException {
        if (stored != derived) {
            throw new RegionFormatException(
                    name + " mismatch: header says " + stored + ", geometry implies " + derived);
        }
    }

    public int flags() {
        return buffer.getInt(FLAGS_OFFSET);
    }

    public long formatId() {
        return buffer.getLong(FORMAT_ID_OFFSET);
    }

    public long formatTimeMillis() {
        return buffer.getLong(FORMAT_TIME_OFFSET);
    }
}
