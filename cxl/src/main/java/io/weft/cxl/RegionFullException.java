package io.weft.cxl;

import io.weft.cxl.layout.RegionGeometry;

/**
 * A region has no room for one more object: its backend, blkdev or channel-segment table is full. Nothing frees up by
 * waiting (only an unmap or a larger region does), so callers fail at once with this message, which names the
 * region, its limits, and the {@code weft cxl format} options that make a larger one.
 */
public final class RegionFullException extends IllegalStateException {
    private final String resource;
    private final int limit;

    private RegionFullException(String message, String resource, int limit) {
        super(message);
        this.resource = resource;
        this.limit = limit;
    }

    /** What ran out: "backends", "blkdevs" or "channel segments". */
    public String resource() {
        return resource;
    }

    /** The region's size of that table. */
    public int limit() {
        return limit;
    }

    /**
     * @param resource  what ran out ("backends", "blkdevs", "channel segments")
     * @param inUse     how many of them are taken
     * @param needed    how many this request needed
     * @param limit     the region's table size
     */
    static RegionFullException of(CxlRegion region, String resource, int inUse, int needed, int limit) {
        RegionGeometry g = region.geometry();
        // Suggest a region twice as large in what ran out (and never smaller in anything else).
        int backends = resource.equals("backends") ? Math.max(2 * g.maxBackends(), g.maxBackends() + needed)
                : g.maxBackends();
        int blkdevs = resource.equals("blkdevs") ? Math.max(2 * g.maxBlkdevs(), g.maxBlkdevs() + needed)
                : g.maxBlkdevs();
        int segments = resource.equals("channel segments")
                ? Math.max(2 * g.segmentCount(), g.segmentCount() + needed) : g.segmentCount();
        segments = Math.max(segments, backends); // each served mapping takes at least one channel segment
        String path = region.source();
        String message = "CXL region " + path + " is full: " + inUse + " of " + limit + " " + resource + " in use"
                + (needed > 1 ? ", " + needed + " needed" : "")
                + " (region limits: " + g.maxBackends() + " backends = served mappings, " + g.maxBlkdevs()
                + " blkdevs = client devices, " + g.segmentCount() + " channel segments, a served mapping takes"
                + " weft.cxl.channels of them, " + g.maxHosts() + " hosts). Unmap a device, or format a larger"
                + " region with every node that attaches it stopped: weft cxl format " + path
                + " --backends " + backends + " --blkdevs " + blkdevs + " --channels " + segments
                + " --ring-depth " + g.ringDepth() + " --slot-size " + size(g.slotSize()) + " --force"
                + " (docs/cxl.md, \"Limits of a region\")";
        return new RegionFullException(message, resource, limit);
    }

    private static String size(int bytes) {
        return bytes % (1 << 20) == 0 ? (bytes >> 20) + "MiB" : bytes % 1024 == 0 ? (bytes >> 10) + "KiB" : bytes + "";
    }
}
