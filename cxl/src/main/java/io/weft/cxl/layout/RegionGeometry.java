package io.weft.cxl.layout;

/**
 * The shape of a region, fixed at format time and recorded in the header. Every offset is derived from these counts
 * so {@code attach} can recompute the layout and refuse a header whose stored offsets disagree.
 *
 * @param maxHosts     host table entries
 * @param maxBackends  backend table entries
 * @param maxBlkdevs   blkdev table entries
 * @param segmentCount fixed-size segments (each one a channel)
 * @param ringDepth    entries per submission/completion ring (power of two); also the data slots per channel
 * @param slotSize     bytes per data slot = largest READ/WRITE per request (multiple of 4096)
 */
public record RegionGeometry(int maxHosts, int maxBackends, int maxBlkdevs, int segmentCount, int ringDepth,
                             int slotSize) {
    public static final int PAGE = 4096;
    public static final int MAX_TABLE_ENTRIES = 4096;
    public static final int MAX_RING_DEPTH = 4096;
    public static final int MAX_SLOT_SIZE = 16 << 20;
    /** A channel's data area is addressed with int offsets by one buffer: keep it at most 1 GiB. */
    public static final long MAX_DATA_AREA = 1L << 30;

    public RegionGeometry {
        check("maxHosts", maxHosts, 1, MAX_TABLE_ENTRIES);
        check("maxBackends", maxBackends, 1, MAX_TABLE_ENTRIES);
        check("maxBlkdevs", maxBlkdevs, 1, MAX_TABLE_ENTRIES);
        check("segmentCount", segmentCount, 1, 1 << 16);
        check("ringDepth", ringDepth, 2, MAX_RING_DEPTH);
        if (Integer.bitCount(ringDepth) != 1) {
            throw new IllegalArgumentException("ringDepth must be a power of two: " + ringDepth);
        }
        check("slotSize", slotSize, PAGE, MAX_SLOT_SIZE);
        if (slotSize % PAGE != 0) {
            throw new IllegalArgumentException("slotSize must be a multiple of " + PAGE + ": " + slotSize);
        }
        if ((long) ringDepth * slotSize > MAX_DATA_AREA) {
            throw new IllegalArgumentException("ringDepth * slotSize must be at most " + MAX_DATA_AREA + ": "
                    + ringDepth + " * " + slotSize);
        }
    }

    /** 16 hosts, 16 backends, 64 blkdevs, 32 channel segments of 128 entries × 128 KiB (about 514 MiB). */
    public static RegionGeometry defaults() {
        return new RegionGeometry(16, 16, 64, 32, 128, 128 << 10);
    }

    /** A small region for tests: 16 channels of 32 entries × 64 KiB (about 33 MiB). */
    public static RegionGeometry small() {
        return new RegionGeometry(8, 8, 16, 16, 32, 64 << 10);
    }

    private static void check(String name, int value, int min, int max) {
        if (value < min || value > max) {
            throw new IllegalArgumentException(name + " must be in [" + min + ", " + max + "]: " + value);
        }
    }

    public long hostTableOffset() {
        return RegionHeader.SIZE;
    }

    public long backendTableOffset() {
        return hostTableOffset() + (long) maxHosts * MetaEntry.SIZE;
    }

    public long blkdevTableOffset() {
        return backendTableOffset() + (long) maxBackends * MetaEntry.SIZE;
    }

    public long segmentTableOffset() {
        return blkdevTableOffset() + (long) maxBlkdevs * MetaEntry.SIZE;
    }

    public long segmentsOffset() {
        return alignUp(segmentTableOffset() + (long) segmentCount * MetaEntry.SIZE, PAGE);
    }

    public ChannelLayout channelLayout() {
        return new ChannelLayout(ringDepth, slotSize);
    }

    public long segmentSize() {
        return channelLayout().segmentSize();
    }

    public long segmentOffset(int segment) {
        if (segment < 0 || segment >= segmentCount) {
            throw new IndexOutOfBoundsException("segment " + segment + " outside [0, " + segmentCount + ")");
        }
        return segmentsOffset() + segment * segmentSize();
    }

    public long regionSize() {
        return segmentsOffset() + segmentCount * segmentSize();
    }

    static long alignUp(long value, long alignment) {
        return (value + alignment - 1) & -alignment;
    }
}
