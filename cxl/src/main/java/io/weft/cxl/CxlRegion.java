package io.weft.cxl;

import io.weft.cxl.layout.ChannelLayout;
import io.weft.cxl.layout.MetaEntry;
import io.weft.cxl.layout.RegionFormatException;
import io.weft.cxl.layout.RegionGeometry;
import io.weft.cxl.layout.RegionHeader;
import io.weft.cxl.map.DaxGeometry;
import io.weft.cxl.map.SharedMapping;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * One attached shared region: a regular file on tmpfs/fsdax (default {@value #DEFAULT_PATH}) or a device-DAX
 * character device ({@code /dev/daxX.Y}), mapped shared.
 *
 * <pre>
 * offset 0                 header (4 KiB, {@link RegionHeader})
 *        4096              host table     maxHosts    × 1 KiB ({@link MetaEntry})
 *        ...               backend table  maxBackends × 1 KiB
 *        ...               blkdev table   maxBlkdevs  × 1 KiB
 *        ...               segment table  segments    × 1 KiB
 *        page aligned      segments       segments    × segmentSize (each a channel: {@link ChannelLayout})
 * </pre>
 * {@link #format} writes a fresh layout (tables zeroed, header last); {@link #attach} validates magic, version, flags,
 * geometry, sizes and the header checksum and throws {@link RegionFormatException} on any mismatch. It never formats.
 */
public final class CxlRegion implements AutoCloseable {
    public static final String DEFAULT_PATH = "/dev/shm/weft-cxl0";

    /** The four metadata tables. */
    public enum Table { HOST, BACKEND, BLKDEV, SEGMENT }

    private final SharedMapping mapping;
    private final RegionGeometry geometry;
    private final UnsafeBuffer metadata;
    private final RegionHeader header;
    private final ChannelLayout channelLayout;
    private final java.util.Set<CxlHost> hosts = java.util.concurrent.ConcurrentHashMap.newKeySet();

    private CxlRegion(SharedMapping mapping, RegionGeometry geometry) {
        this.mapping = mapping;
        this.geometry = geometry;
        this.metadata = new UnsafeBuffer(mapping.address(), (int) geometry.segmentsOffset());
        this.header = new RegionHeader(metadata);
        this.channelLayout = geometry.channelLayout();
    }

    /** Formats a regular file (created or resized as needed). Any previous content is discarded. */
    public static CxlRegion format(Path path, RegionGeometry geometry, int flags) throws IOException {
        if (isDaxDevice(path)) {
            return formatMapped(SharedMapping.mapDaxDevice(path, DaxGeometry.sysfsDirOf(path)), geometry, flags);
        }
        Path parent = path.toAbsolutePath().getParent();
        if (parent != null) {
            Files.createDirectories(parent);
        }
        if (Files.exists(path) && Files.size(path) > geometry.regionSize()) {
            // Shrink so attach-time size checks describe this format, not a previous bigger one.
            try (var ch = java.nio.channels.FileChannel.open(path, java.nio.file.StandardOpenOption.WRITE)) {
                ch.truncate(geometry.regionSize());
            }
        }
        return formatMapped(SharedMapping.mapFile(path, geometry.regionSize(), true), geometry, flags);
    }

    /**
     * Formats a device-DAX device whose size and alignment are read from {@code sysfsDir} (normally
     * {@code /sys/bus/dax/devices/daxX.Y}; {@link #format} derives it from the device name).
     */
    public static CxlRegion formatDax(Path device, Path sysfsDir, RegionGeometry geometry, int flags)
            throws IOException {
        return formatMapped(SharedMapping.mapDaxDevice(device, sysfsDir), geometry, flags);
    }

    /** Attaches a device-DAX device with an explicit sysfs directory (see {@link #formatDax}). */
    public static CxlRegion attachDax(Path device, Path sysfsDir, RegionGeometry expected) throws IOException {
        return attachMapped(SharedMapping.mapDaxDevice(device, sysfsDir), expected);
    }

    static CxlRegion formatMapped(SharedMapping mapping, RegionGeometry geometry, int flags) throws IOException {
        if (mapping.length() < geometry.regionSize()) {
            long have = mapping.length();
            mapping.close();
            throw new RegionFormatException("region needs " + geometry.regionSize() + " bytes, " + mapping.source()
                    + " has " + have);
        }
        UnsafeBuffer meta = new UnsafeBuffer(mapping.address(), (int) geometry.segmentsOffset());
        meta.putLongVolatile(0, 0); // no attach may succeed while the format is in progress
        meta.setMemory(8, meta.capacity() - 8, (byte) 0);
        ChannelLayout layout = geometry.channelLayout();
        for (int s = 0; s < geometry.segmentCount(); s++) {
            new UnsafeBuffer(mapping.address() + geometry.segmentOffset(s), layout.dataAreaOffset())
                    .setMemory(0, layout.dataAreaOffset(), (byte) 0);
        }
        new RegionHeader(meta).write(geometry, flags, new SecureRandom().nextLong(), System.currentTimeMillis());
        return new CxlRegion(mapping, geometry);
    }

    /** Attaches an existing region, accepting the geometry its header declares. */
    public static CxlRegion attach(Path path) throws IOException {
        return attach(path, null);
    }

    /** Attaches an existing region and insists on {@code expected} geometry (null: accept any valid one). */
    public static CxlRegion attach(Path path, RegionGeometry expected) throws IOException {
        SharedMapping mapping = isDaxDevice(path)
                ? SharedMapping.mapDaxDevice(path, DaxGeometry.sysfsDirOf(path))
                : SharedMapping.mapFile(path, 0, false);
        return attachMapped(mapping, expected);
    }

    static CxlRegion attachMapped(SharedMapping mapping, RegionGeometry expected) throws IOException {
        try {
            if (mapping.length() < RegionHeader.SIZE) {
                throw new RegionFormatException(mapping.source() + " is too small for a region header: "
                        + mapping.length() + " bytes");
            }
            RegionHeader header = new RegionHeader(new UnsafeBuffer(mapping.address(), RegionHeader.SIZE));
            RegionGeometry geometry = header.validate(mapping.length(), expected);
            return new CxlRegion(mapping, geometry);
        } catch (IOException | RuntimeException e) {
            mapping.close();
            if (e instanceof RegionFormatException) {
                throw new RegionFormatException(mapping.source() + ": " + e.getMessage());
            }
            throw e;
        }
    }

    static boolean isDaxDevice(Path path) {
        String name = path.getFileName() == null ? "" : path.getFileName().toString();
        return name.startsWith("dax") && path.startsWith("/dev") && !Files.isRegularFile(path);
    }

    public RegionGeometry geometry() {
        return geometry;
    }

    public int flags() {
        return header.flags();
    }

    public long formatId() {
        return header.formatId();
    }

    public String source() {
        return mapping.source();
    }

    SharedMapping mapping() {
        return mapping;
    }

    int tableSize(Table table) {
        switch (table) {
            case HOST: return geometry.maxHosts();
            case BACKEND: return geometry.maxBackends();
            case BLKDEV: return geometry.maxBlkdevs();
            default: return geometry.segmentCount();
        }
    }

    private long tableOffset(Table table) {
        switch (table) {
            case HOST: return geometry.hostTableOffset();
            case BACKEND: return geometry.backendTableOffset();
            case BLKDEV: return geometry.blkdevTableOffset();
            default: return geometry.segmentTableOffset();
        }
    }

    /** A fresh flyweight over entry {@code slot} of {@code table}. */
    public MetaEntry entry(Table table, int slot) {
        if (slot < 0 || slot >= tableSize(table)) {
            throw new IndexOutOfBoundsException(table + " slot " + slot + " outside [0, " + tableSize(table) + ")");
        }
        return new MetaEntry().wrap(metadata, tableOffset(table) + (long) slot * MetaEntry.SIZE);
    }

    /** Buffers over channel segment {@code segment}. */
    public ChannelSegment channel(int segment) {
        return new ChannelSegment(mapping, geometry.segmentOffset(segment), segment, channelLayout);
    }

    /** Address of a channel segment's handler doorbell word, or -1 when {@code segment} is outside the region. */
    long doorbellAddress(int segment) {
        if (segment < 0 || segment >= geometry.segmentCount()) {
            return -1;
        }
        return mapping.address() + geometry.segmentOffset(segment) + io.weft.cxl.layout.ChannelLayout.HANDLER_DOORBELL;
    }

    /** A snapshot of every table and channel, for status pages and tests. */
    public RegionStatus status() {
        return RegionStatus.read(this);
    }

    void hostOpened(CxlHost host) {
        hosts.add(host);
    }

    void hostClosed(CxlHost host) {
        hosts.remove(host);
    }

    /** Closes every host still registered through this mapping (their agents touch it), then unmaps. */
    @Override
    public void close() {
        for (CxlHost host : hosts.toArray(new CxlHost[0])) {
            host.close();
        }
        mapping.close();
    }
}
