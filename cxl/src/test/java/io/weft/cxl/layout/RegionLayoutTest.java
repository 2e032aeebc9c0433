package io.weft.cxl.layout;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.cxl.CxlRegion;
import io.weft.cxl.TestSupport;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** Format and attach: every header field is validated and a mismatch is refused, never reformatted. */
class RegionLayoutTest {
    private final Path path = TestSupport.shmPath("layout");

    @AfterEach
    void cleanUp() {
        TestSupport.deleteQuietly(path);
    }

    @Test
    void geometryOffsetsAreContiguousAndPageAlignedWhereItMatters() {
        RegionGeometry g = RegionGeometry.small();
        assertEquals(RegionHeader.SIZE, g.hostTableOffset());
        assertEquals(g.hostTableOffset() + g.maxHosts() * MetaEntry.SIZE, g.backendTableOffset());
        assertEquals(g.backendTableOffset() + g.maxBackends() * MetaEntry.SIZE, g.blkdevTableOffset());
        assertEquals(g.blkdevTableOffset() + g.maxBlkdevs() * MetaEntry.SIZE, g.segmentTableOffset());
        assertEquals(0, g.segmentsOffset() % RegionGeometry.PAGE);
        assertTrue(g.segmentsOffset() >= g.segmentTableOffset() + g.segmentCount() * MetaEntry.SIZE);
        ChannelLayout c = g.channelLayout();
        assertEquals(0, c.controlSize() % RegionGeometry.PAGE);
        assertTrue(c.controlSize() >= ChannelLayout.DONE_MARKS + 8 * c.depth());
        assertEquals(c.controlSize() + 64 * c.depth(), c.completionRingOffset());
        assertEquals(0, c.dataAreaOffset() % RegionGeometry.PAGE);
        assertTrue(c.dataAreaOffset() >= c.completionRingOffset() + 32 * c.depth());
        assertEquals(c.dataAreaOffset() + (long) c.depth() * c.slotSize(), g.segmentSize());
        assertEquals(g.segmentsOffset() + g.segmentCount() * g.segmentSize(), g.regionSize());
        assertThrows(IllegalArgumentException.class, () -> new RegionGeometry(1, 1, 1, 1, 3, 4096));
        assertThrows(IllegalArgumentException.class, () -> new RegionGeometry(1, 1, 1, 1, 4, 1000));
        assertThrows(IllegalArgumentException.class, () -> new RegionGeometry(0, 1, 1, 1, 4, 4096));
        assertThrows(IllegalArgumentException.class, () -> new RegionGeometry(1, 1, 1, 1, 4096, 16 << 20));
    }

    @Test
    void formatThenAttachRoundTripsGeometryFlagsAndFormatId() throws Exception {
        RegionGeometry g = RegionGeometry.small();
        long formatId;
        try (CxlRegion r = CxlRegion.format(path, g, RegionHeader.FLAG_DATA_CRC)) {
            formatId = r.formatId();
        }
        assertEquals(g.regionSize(), Files.size(path));
        try (CxlRegion r = CxlRegion.attach(path, g)) {
            assertEquals(g, r.geometry());
            assertEquals(RegionHeader.FLAG_DATA_CRC, r.flags());
            assertEquals(formatId, r.formatId());
        }
    }

    @Test
    void attachRefusesWhatFormatDidNotWriteAndLeavesTheFileAlone() throws Exception {
        Files.write(path, new byte[1 << 20]);
        RegionFormatException e = assertThrows(RegionFormatException.class, () -> CxlRegion.attach(path));
        assertTrue(e.getMessage().contains("never formatted"), e.getMessage());
        assertArrayEquals(new byte[1 << 20], Files.readAllBytes(path));
        Files.write(path, new byte[100]);
        assertThrows(RegionFormatException.class, () -> CxlRegion.attach(path));
        assertThrows(java.io.IOException.class, () -> CxlRegion.attach(TestSupport.shmPath("missing")));
    }

    @Test
    void attachRefusesEveryCorruptedOrMismatchedHeaderField() throws Exception {
        RegionGeometry g = RegionGeometry.small();
        CxlRegion.format(path, g, 0).close();
        byte[] pristine = readHeader();

        expectRefusal(8, 2, "version");                          // version
        expectRefusal(12, 1 << 7, "unknown feature flags");   // flags: unknown bit, checksum patched to match
        expectRefusal(40, 64, "geometry");                     // ring depth: checksum patched, geometry disagrees
        corruptWithoutChecksum(24, 99);                        // maxHosts changed, checksum not updated
        assertMessage("checksum");
        writeHeader(pristine);
        putLong(0, 0x1122334455667788L);
        assertMessage("bad magic");
        writeHeader(pristine);
        try (CxlRegion r = CxlRegion.attach(path)) {
            assertEquals(g, r.geometry());
        }
        // A caller that insists on another geometry is refused, naming both.
        RegionFormatException e = assertThrows(RegionFormatException.class,
                () -> CxlRegion.attach(path, RegionGeometry.defaults()));
        assertTrue(e.getMessage().contains("geometry mismatch"), e.getMessage());
        // A truncated region (file shorter than the header says) is refused.
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.WRITE)) {
            ch.truncate(g.regionSize() - 4096);
        }
        e = assertThrows(RegionFormatException.class, () -> CxlRegion.attach(path));
        assertTrue(e.getMessage().contains("mapped"), e.getMessage());
    }

    private void expectRefusal(int offset, int value, String expected) throws Exception {
        byte[] pristine = readHeader();
        ByteBuffer h = ByteBuffer.wrap(pristine.clone()).order(ByteOrder.LITTLE_ENDIAN);
        h.putInt(offset, value);
        int crc = crcOf(h);
        h.putInt(RegionHeader.CRC_OFFSET, crc);
        writeHeader(h.array());
        assertMessage(expected);
        writeHeader(pristine);
    }

    private static int crcOf(ByteBuffer h) {
        java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
        crc.update(h.array(), RegionHeader.VERSION_OFFSET, RegionHeader.CRC_OFFSET - RegionHeader.VERSION_OFFSET);
        return (int) crc.getValue();
    }

    private void corruptWithoutChecksum(int offset, int value) throws Exception {
        ByteBuffer h = ByteBuffer.wrap(readHeader()).order(ByteOrder.LITTLE_ENDIAN);
        h.putInt(offset, value);
        writeHeader(h.array());
    }

    private void putLong(int offset, long value) throws Exception {
        ByteBuffer h = ByteBuffer.wrap(readHeader()).order(ByteOrder.LITTLE_ENDIAN);
        h.putLong(offset, value);
        writeHeader(h.array());
    }

    private void assertMessage(String expected) {
        RegionFormatException e = assertThrows(RegionFormatException.class, () -> CxlRegion.attach(path));
        assertTrue(e.getMessage().contains(expected), e.getMessage() + " should mention " + expected);
    }

    private byte[] readHeader() throws Exception {
        try (RandomAccessFile f = new RandomAccessFile(path.toFile(), "r")) {
            byte[] b = new byte[RegionHeader.SIZE];
            f.readFully(b);
            return b;
        }
    }

    private void writeHeader(byte[] b) throws Exception {
        try (RandomAccessFile f = new RandomAccessFile(path.toFile(), "rw")) {
            f.write(b);
        }
    }
}
