package io.weft.core.mirror;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class WriteIntentBitmapTest {
    Path dir;

    @BeforeEach
    void setUp() throws Exception {
        dir = MirrorFixture.tempDir("weft-wib-");
    }

    @AfterEach
    void tearDown() throws Exception {
        MirrorFixture.deleteTree(dir);
    }

    @Test
    void dirtyBitsAndLegMasksSurviveACrash() throws Exception {
        Path file = dir.resolve("vol.wib");
        WriteIntentBitmap b = WriteIntentBitmap.create(file, 100L << 20, 1 << 20);
        assertEquals(100, b.regionCount());
        b.markDirty(5L << 20, 4096);
        b.markDirty((10L << 20) - 4096, 8192); // spans regions 9 and 10
        b.markDirty(99L << 20, 1);
        b.updateLegs(0b001, 0b100);
        long generation = b.generation();
        // Simulated crash: the first mapping is never closed or unmapped; a new "process" opens the file.
        try (WriteIntentBitmap again = WriteIntentBitmap.open(file)) {
            assertEquals(4, again.dirtyCount());
            assertTrue(again.isDirty(5));
            assertTrue(again.isDirty(9));
            assertTrue(again.isDirty(10));
            assertTrue(again.isDirty(99));
            assertFalse(again.isDirty(6));
            assertEquals(0b001, again.inSyncMask());
            assertEquals(0b100, again.fullSyncMask());
            assertEquals(generation, again.generation());
            assertEquals(100L << 20, again.deviceSize());
            assertEquals(1 << 20, again.regionSize());
            assertEquals(5, again.nextDirty(0));
            assertEquals(9, again.nextDirty(6));
            assertEquals(-1, again.nextDirty(100));
        }
    }

    @Test
    void clearedBitsStayClearAfterReopen() throws Exception {
        Path file = dir.resolve("vol.wib");
        try (WriteIntentBitmap b = WriteIntentBitmap.create(file, 8L << 20, 1 << 20)) {
            b.markDirty(0, 8L << 20);
            assertEquals(8, b.dirtyCount());
            b.clear(3);
            b.sync();
        }
        try (WriteIntentBitmap again = WriteIntentBitmap.open(file)) {
            assertEquals(7, again.dirtyCount());
            assertFalse(again.isDirty(3));
        }
    }

    @Test
    void aCorruptHeaderIsRefused() throws Exception {
        Path file = dir.resolve("vol.wib");
        WriteIntentBitmap.create(file, 8L << 20, 1 << 20).close();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(new byte[] {1}), WriteIntentBitmap.OFF_IN_SYNC_MASK);
        }
        IOException e = assertThrows(IOException.class, () -> WriteIntentBitmap.open(file));
        assertTrue(e.getMessage().contains("CRC"), e.getMessage());
    }

    @Test
    void foreignAndShortFilesAreRefused() throws Exception {
        Path junk = dir.resolve("junk");
        Files.write(junk, new byte[8192]);
        assertThrows(IOException.class, () -> WriteIntentBitmap.open(junk));
        Path tiny = dir.resolve("tiny");
        Files.write(tiny, new byte[10]);
        assertThrows(IOException.class, () -> WriteIntentBitmap.open(tiny));
    }

    @Test
    void geometryIsChecked() {
        assertThrows(IllegalArgumentException.class, () -> WriteIntentBitmap.inMemory(1 << 20, 3000));
        assertThrows(IllegalArgumentException.class, () -> WriteIntentBitmap.inMemory(0, 1 << 20));
    }

    @Test
    void outOfRangeMarksAreIgnored() {
        WriteIntentBitmap b = WriteIntentBitmap.inMemory(4L << 20, 1 << 20);
        b.markDirty(4L << 20, 4096);
        b.markDirty(-1, 4096);
        assertEquals(0, b.dirtyCount());
        b.markDirty((4L << 20) - 512, 1 << 20);
        assertEquals(1, b.dirtyCount());
        assertTrue(b.isDirty(3));
    }
}
