package io.weft.cxl.map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.cxl.TestSupport;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** File and DAX mapping code paths (the DAX path with a fake sysfs directory and a tmpfs file). */
class SharedMappingTest {
    private final Path file = TestSupport.shmPath("map");
    private final Path sysfs = TestSupport.shmPath("sysfs");

    @AfterEach
    void cleanUp() throws IOException {
        TestSupport.deleteQuietly(file, sysfs.resolve("size"), sysfs.resolve("align"), sysfs);
    }

    @Test
    void twoSharedMappingsOfOneFileSeeEachOthersWrites() throws IOException {
        try (SharedMapping a = SharedMapping.mapFile(file, 1 << 20, true);
             SharedMapping b = SharedMapping.mapFile(file, 0, false)) {
            assertEquals(1 << 20, b.length());
            a.byteBuffer(4096, 8).putLong(0, 0x1234_5678_9ABCL);
            assertEquals(0x1234_5678_9ABCL, b.byteBuffer(4096, 8).getLong(0));
            assertThrows(IndexOutOfBoundsException.class, () -> a.byteBuffer((1 << 20) - 4, 8));
        }
        assertThrows(IOException.class, () -> SharedMapping.mapFile(file, 2 << 20, false));
    }

    @Test
    void daxGeometryComesFromSysfsAndDefaultsTheAlignment() throws IOException {
        Files.createDirectories(sysfs);
        Files.writeString(sysfs.resolve("size"), "6442450944\n");
        assertEquals(new DaxGeometry(6442450944L, 2L << 20), DaxGeometry.read(sysfs));
        Files.writeString(sysfs.resolve("align"), "1073741824\n");
        DaxGeometry g = DaxGeometry.read(sysfs);
        assertEquals(1L << 30, g.alignment());
        assertEquals(6L << 30, g.usableLength());
        Files.writeString(sysfs.resolve("size"), "3221225473\n");
        assertEquals(3L << 30, DaxGeometry.read(sysfs).usableLength());
        Files.writeString(sysfs.resolve("align"), "3000\n");
        assertThrows(IOException.class, () -> DaxGeometry.read(sysfs));
        assertThrows(IOException.class, () -> DaxGeometry.read(file));
        assertEquals(Path.of("/sys/bus/dax/devices/dax0.1"), DaxGeometry.sysfsDirOf(Path.of("/dev/dax0.1")));
    }

    @Test
    void alignedMappingStartsOnTheDeviceAlignment() throws IOException {
        long align = 2L << 20;
        SharedMapping.mapFile(file, 4L << 20, true).close();
        try (SharedMapping m = SharedMapping.mapFileAligned(file, 4L << 20, align);
             SharedMapping plain = SharedMapping.mapFile(file, 0, false)) {
            assertEquals(0, m.address() % align);
            assertEquals(align, m.alignment());
            m.byteBuffer((4L << 20) - 8, 8).putLong(0, 77);
            assertEquals(77, plain.byteBuffer((4L << 20) - 8, 8).getLong(0));
        }
    }

    @Test
    void theDaxPathFormatsAndAttachesARegionAtTheDeviceAlignment() throws Exception {
        // A tmpfs file stands in for /dev/daxX.Y; sysfs reports a size that is not a multiple of the alignment.
        io.weft.cxl.layout.RegionGeometry g = io.weft.cxl.layout.RegionGeometry.small();
        long align = 2L << 20;
        long usable = (g.regionSize() + align - 1) & -align;
        SharedMapping.mapFile(file, usable, true).close();
        Files.createDirectories(sysfs);
        Files.writeString(sysfs.resolve("size"), Long.toString(usable + 12345));
        Files.writeString(sysfs.resolve("align"), Long.toString(align));
        try (SharedMapping m = SharedMapping.mapDaxDevice(file, sysfs)) {
            assertEquals(usable, m.length());
            assertEquals(0, m.address() % align);
        }
        long formatId;
        try (io.weft.cxl.CxlRegion r = io.weft.cxl.CxlRegion.formatDax(file, sysfs, g, 0)) {
            formatId = r.formatId();
        }
        try (io.weft.cxl.CxlRegion r = io.weft.cxl.CxlRegion.attachDax(file, sysfs, g)) {
            assertEquals(formatId, r.formatId());
            assertEquals(g, r.geometry());
        }
        // A device smaller than the region the caller wants is refused at format time.
        Files.writeString(sysfs.resolve("size"), Long.toString(align));
        assertThrows(io.weft.cxl.layout.RegionFormatException.class,
                () -> io.weft.cxl.CxlRegion.formatDax(file, sysfs, g, 0));
    }

    @Test
    void mappingAMissingDaxDeviceFailsWithTheSysfsPath() {
        IOException e = assertThrows(IOException.class,
                () -> SharedMapping.mapDaxDevice(Path.of("/dev/dax-weft-missing"), sysfs));
        assertTrue(e.getMessage().contains(sysfs.toString()), e.getMessage());
    }
}
