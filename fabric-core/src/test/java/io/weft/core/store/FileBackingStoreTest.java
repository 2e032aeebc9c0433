package io.weft.core.store;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.IoStatus;
import io.weft.core.store.StoreTestFiles.Medium;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class FileBackingStoreTest {
    private static final int MIB = 1 << 20;

    private Path dir;

    @AfterEach
    void cleanUp() throws IOException {
        StoreTestFiles.deleteRecursively(dir);
    }

    private Path file(Medium medium) throws IOException {
        dir = medium.newDirectory();
        return dir.resolve("store.img");
    }

    private static byte[] randomBytes(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    private static byte[] readBack(BackingStore store, long offset, int length) throws IOException {
        ByteBuffer dst = ByteBuffer.allocate(length);
        store.read(offset, dst);
        assertFalse(dst.hasRemaining());
        return dst.array();
    }

    /**
     * An open store holds no megabyte of its own: the zeros it writes where it cannot punch come from one read-only
     * buffer the process shares (issue 12: each served mapping cost its storage node ~1 MiB of direct memory,
     * NMT "Other" +113 MiB for 100 idle devices).
     */
    @Test
    void openStoresShareTheirZeroBuffer() throws IOException {
        dir = Files.createTempDirectory("weft-zeros");
        java.lang.management.BufferPoolMXBean direct = java.lang.management.ManagementFactory
                .getPlatformMXBeans(java.lang.management.BufferPoolMXBean.class).stream()
                .filter(b -> b.getName().equals("direct")).findFirst().orElseThrow();
        List<FileBackingStore> stores = new ArrayList<>();
        try {
            stores.add(FileBackingStore.createSparse(dir.resolve("first.img"), MIB));
            long before = direct.getMemoryUsed();
            for (int i = 0; i < 8; i++) {
                stores.add(FileBackingStore.createSparse(dir.resolve("s" + i + ".img"), MIB));
            }
            long grown = direct.getMemoryUsed() - before;
            assertTrue(grown < MIB, "8 more open stores took " + grown + " bytes of direct memory");
        } finally {
            for (FileBackingStore s : stores) {
                s.close();
            }
        }
    }

    /** Extents as "flags:length" strings, for readable assertions. */
    private static List<String> extents(BackingStore store, long offset, long length) throws IOException {
        List<String> out = new ArrayList<>();
        long described = store.describeExtents(offset, length, (len, flags) -> out.add(flags + ":" + len));
        assertEquals(length, described);
        return out;
    }

    @ParameterizedTest
    @EnumSource(Medium.class)
    void createsSparseFileAndKeepsExistingSize(Medium medium) throws IOException {
        Path path = file(medium);
        try (FileBackingStore store = FileBackingStore.createSparse(path, 64L * MIB)) {
            assertEquals(64L * MIB, store.size());
            assertEquals(64L * MIB, Files.size(path));
            assertTrue(StoreTestFiles.allocatedBytes(path) < MIB, "a new store must be sparse");
            assertEquals(List.of("3:" + 64L * MIB), extents(store, 0, 64L * MIB));
        }
        try (FileBackingStore again = FileBackingStore.createSparse(path, 8L * MIB)) {
            assertEquals(64L * MIB, again.size(), "an existing file keeps its size");
        }
    }

    @ParameterizedTest
    @EnumSource(Medium.class)
    void writesAndReadsBackAtManyOffsetsWithHeapAndDirectBuffers(Medium medium) throws IOException {
        try (FileBackingStore store = FileBackingStore.createSparse(file(medium), 16L * MIB)) {
            long[] offsets = {0, 512, 4096, 7 * 512, MIB - 512, 16L * MIB - 8192};
            for (int i = 0; i < offsets.length; i++) {
                byte[] data = randomBytes(8192 - (i % 2) * 4096, i);
                ByteBuffer src = (i % 2 == 0) ? ByteBuffer.wrap(data) : ByteBuffer.allocateDirect(data.length);
                if (src.isDirect()) {
                    src.put(data).flip();
                }
                store.write(offsets[i], src, i == 3);
                assertFalse(src.hasRemaining());
                assertArrayEquals(data, readBack(store, offsets[i], data.length), "offset " + offsets[i]);
            }
            store.flush();
        }
    }

    @ParameterizedTest
    @EnumSource(Medium.class)
    void discardPunchesARealHoleAndExtentsShowIt(Medium medium) throws IOException {
        Path path = file(medium);
        try (FileBackingStore store = FileBackingStore.createSparse(path, 8L * MIB)) {
            assertTrue(store.canPunchHoles(), medium + " supports hole punching");
            store.write(0, ByteBuffer.wrap(randomBytes(4 * MIB, 1)), false);
            store.flush();
            long before = StoreTestFiles.allocatedBytes(path);
            assertTrue(before >= 4L * MIB, "data allocated: " + before);

            store.discard(MIB, 2L * MIB);
            long after = StoreTestFiles.allocatedBytes(path);
            assertTrue(before - after >= 2L * MIB, "2 MiB freed: before " + before + ", after " + after);
            assertArrayEquals(new byte[2 * MIB], readBack(store, MIB, 2 * MIB));
            assertEquals(List.of("0:" + MIB, "3:" + 2L * MIB, "0:" + MIB, "3:" + 4L * MIB),
                    extents(store, 0, 8L * MIB));
            assertEquals(List.of("3:" + MIB, "0:" + MIB), extents(store, 2L * MIB, 2L * MIB),
                    "a query starting inside a hole");
        }
    }

    @ParameterizedTest
    @EnumSource(Medium.class)
    void writeZeroesPunchesOrKeepsAllocationAsAsked(Medium medium) throws IOException {
        Path path = file(medium);
        try (FileBackingStore store = FileBackingStore.createSparse(path, 8L * MIB)) {
            store.write(0, ByteBuffer.wrap(randomBytes(8 * MIB, 2)), false);
            store.flush();
            long full = StoreTestFiles.allocatedBytes(path);

            store.writeZeroes(0, 2L * MIB, true, true);
            assertArrayEquals(new byte[2 * MIB], readBack(store, 0, 2 * MIB));
            long punched = StoreTestFiles.allocatedBytes(path);
            assertTrue(full - punched >= 2L * MIB, "may-punch zeroing frees: " + full + " -> " + punched);

            store.writeZeroes(4L * MIB, 2L * MIB, false, true);
            assertArrayEquals(new byte[2 * MIB], readBack(store, 4L * MIB, 2 * MIB));
            long kept = StoreTestFiles.allocatedBytes(path);
            assertTrue(kept >= punched, "NO_HOLE zeroing keeps the range allocated: " + punched + " -> " + kept);
            // Untouched data around the zeroed ranges is intact.
            byte[] all = randomBytes(8 * MIB, 2);
            byte[] middle = new byte[2 * MIB];
            System.arraycopy(all, 2 * MIB, middle, 0, 2 * MIB);
            assertArrayEquals(middle, readBack(store, 2L * MIB, 2 * MIB));
        }
    }

    @ParameterizedTest
    @EnumSource(Medium.class)
    void withoutHolePunchingZeroingWritesZerosAndFastZeroIsRefused(Medium medium) throws IOException {
        Path path = file(medium);
        FileBackingStore.createSparse(path, 4L * MIB).close();
        try (FileBackingStore store = FileBackingStore.open(path, false, false, false)) {
            assertFalse(store.canPunchHoles());
            store.write(0, ByteBuffer.wrap(randomBytes(4 * MIB, 10)), false);
            long before = StoreTestFiles.allocatedBytes(path);

            StoreException fast = assertThrows(StoreException.class, () -> store.writeZeroes(0, MIB, true, true));
            assertEquals(IoStatus.ENOTSUP, fast.status());
            store.writeZeroes(0, MIB, true, false);
            assertArrayEquals(new byte[MIB], readBack(store, 0, MIB));
            store.discard(MIB, MIB);
            assertFalse(java.util.Arrays.equals(new byte[MIB], readBack(store, MIB, MIB)),
                    "a discard without punching leaves the data");
            assertEquals(before, StoreTestFiles.allocatedBytes(path), "nothing was deallocated");
        }
        try (StoreBlockDevice device = new StoreBlockDevice(FileBackingStore.open(path, false, false, false))) {
            assertFalse(device.info().canFastZero());
            assertFalse(device.info().canDiscard());
            assertEquals(IoStatus.ENOTSUP, device.execute(io.weft.core.io.IoOp.WRITE_ZEROES, 0, 4096,
                    io.weft.core.io.IoFlags.FAST_ZERO, null));
            assertEquals(IoStatus.OK, device.execute(io.weft.core.io.IoOp.WRITE_ZEROES, 0, 4096, 0, null));
        }
    }

    @ParameterizedTest
    @EnumSource(Medium.class)
    void refusesOutOfRangeAndUnalignedRequestsBeforeTouchingTheFile(Medium medium) throws IOException {
        Path path = file(medium);
        try (FileBackingStore store = FileBackingStore.createSparse(path, MIB)) {
            StoreException beyond = assertThrows(StoreException.class,
                    () -> store.write(MIB, ByteBuffer.allocate(512), false));
            assertEquals(IoStatus.EOVERFLOW, beyond.status());
            assertEquals(IoStatus.EOVERFLOW, assertThrows(StoreException.class,
                    () -> store.read(MIB - 512, ByteBuffer.allocate(1024))).status());
            assertEquals(IoStatus.EOVERFLOW, assertThrows(StoreException.class,
                    () -> store.discard(Long.MAX_VALUE - 10, 4096)).status());
            assertEquals(IoStatus.EOVERFLOW, assertThrows(StoreException.class,
                    () -> store.read(-512, ByteBuffer.allocate(512))).status());
            assertEquals(IoStatus.EINVAL, assertThrows(StoreException.class,
                    () -> store.write(100, ByteBuffer.allocate(512), false)).status());
            assertEquals(IoStatus.EINVAL, assertThrows(StoreException.class,
                    () -> store.writeZeroes(0, 100, true, false)).status());
            assertEquals(MIB, Files.size(path), "nothing written past the end");
            assertTrue(StoreTestFiles.allocatedBytes(path) < 64 * 1024, "nothing written at all");
        }
    }

    @ParameterizedTest
    @EnumSource(Medium.class)
    void readOnlyStoreRefusesEveryChange(Medium medium) throws IOException {
        Path path = file(medium);
        FileBackingStore.createSparse(path, MIB).close();
        try (FileBackingStore store = FileBackingStore.open(path, true)) {
            assertTrue(store.readOnly());
            assertFalse(store.canPunchHoles());
            assertEquals(IoStatus.EPERM, assertThrows(StoreException.class,
                    () -> store.write(0, ByteBuffer.allocate(512), false)).status());
            assertEquals(IoStatus.EPERM, assertThrows(StoreException.class, () -> store.discard(0, 4096)).status());
            assertEquals(IoStatus.EPERM, assertThrows(StoreException.class,
                    () -> store.writeZeroes(0, 4096, true, false)).status());
            assertEquals(IoStatus.EPERM, assertThrows(StoreException.class, () -> store.resize(2L * MIB)).status());
            assertArrayEquals(new byte[4096], readBack(store, 0, 4096));
            store.flush();
        }
    }

    @ParameterizedTest
    @EnumSource(Medium.class)
    void resizeGrowsSparselyAndShrinks(Medium medium) throws IOException {
        Path path = file(medium);
        try (FileBackingStore store = FileBackingStore.createSparse(path, MIB)) {
            store.write(0, ByteBuffer.wrap(randomBytes(4096, 3)), false);
            store.resize(32L * MIB);
            assertEquals(32L * MIB, store.size());
            assertEquals(32L * MIB, Files.size(path));
            assertEquals(List.of("0:4096", "3:" + (32L * MIB - 4096)), extents(store, 0, 32L * MIB));
            store.resize(MIB);
            assertEquals(MIB, Files.size(path));
            assertEquals(IoStatus.EINVAL, assertThrows(StoreException.class, () -> store.resize(1000)).status());
        }
    }

    @ParameterizedTest
    @EnumSource(Medium.class)
    void directIoRefusesUnalignedRequestsAndBouncesUnalignedBuffers(Medium medium) throws IOException {
        Path path = file(medium);
        try (FileBackingStore store = FileBackingStore.createSparse(path, 4L * MIB, true)) {
            assertTrue(store.directIo());
            assertTrue(store.logicalBlockSize() >= 4096, "O_DIRECT block size " + store.logicalBlockSize());
            byte[] data = randomBytes(3 * MIB, 4);
            store.write(4096, ByteBuffer.wrap(data), true);
            assertArrayEquals(data, readBack(store, 4096, data.length));
            ByteBuffer aligned = ByteBuffer.allocateDirect(8192 + 4096).alignedSlice(4096);
            aligned.limit(8192);
            store.read(4096, aligned);
            aligned.flip();
            byte[] head = new byte[8192];
            aligned.get(head);
            assertArrayEquals(java.util.Arrays.copyOf(data, 8192), head);
            assertEquals(IoStatus.EINVAL, assertThrows(StoreException.class,
                    () -> store.write(512, ByteBuffer.allocate(4096), false)).status());
            assertEquals(IoStatus.EINVAL, assertThrows(StoreException.class,
                    () -> store.read(0, ByteBuffer.allocate(512))).status());
            store.writeZeroes(4096, 4096, false, false);
            assertArrayEquals(new byte[4096], readBack(store, 4096, 4096));
        }
    }

    @ParameterizedTest
    @EnumSource(Medium.class)
    void anInterruptedRequestFailsAloneAndTheStoreKeepsServing(Medium medium) throws IOException {
        try (FileBackingStore store = FileBackingStore.createSparse(file(medium), MIB)) {
            byte[] data = randomBytes(4096, 5);
            store.write(0, ByteBuffer.wrap(data), false);
            Thread.currentThread().interrupt();
            StoreException failed = assertThrows(StoreException.class, () -> store.read(0, ByteBuffer.allocate(4096)));
            assertEquals(IoStatus.EIO, failed.status());
            assertTrue(Thread.interrupted(), "the interrupt stays visible to its thread");
            assertArrayEquals(data, readBack(store, 0, 4096));
            store.write(4096, ByteBuffer.wrap(data), true);
            assertArrayEquals(data, readBack(store, 4096, 4096));
        }
    }

    @ParameterizedTest
    @EnumSource(Medium.class)
    void lockedStoresExcludeOtherWritersAndShareWithReaders(Medium medium) throws IOException {
        // Every open locks now (there is no separate lock() to forget): the conflicting open itself fails.
        Path path = file(medium);
        try (FileBackingStore writer = FileBackingStore.createSparse(path, MIB)) {
            IOException busy = assertThrows(IOException.class, () -> FileBackingStore.open(path, false).close());
            assertTrue(busy.getMessage().contains("locked"), busy.getMessage());
            assertThrows(IOException.class, () -> FileBackingStore.open(path, true).close());
        }
        try (FileBackingStore reader1 = FileBackingStore.open(path, true);
             FileBackingStore reader2 = FileBackingStore.open(path, true)) {
            assertThrows(IOException.class, () -> FileBackingStore.open(path, false).close());
        }
        try (FileBackingStore free = FileBackingStore.open(path, false)) {
            assertFalse(free.readOnly()); // every earlier lock went with its close
        }
    }

    @Test
    void openFailuresKeepTheJdkExceptionTypes() throws IOException {
        dir = Medium.DISK.newDirectory();
        assertThrows(java.nio.file.NoSuchFileException.class,
                () -> FileBackingStore.open(dir.resolve("missing.img"), false));
        // A read-only sysfs attribute refuses writers even to root (EACCES, or EROFS where /sys is mounted
        // read-only): callers see AccessDeniedException, as FileChannel.open reports it.
        Path readOnlyAttribute = Path.of("/sys/kernel/uevent_seqnum");
        assertTrue(Files.isRegularFile(readOnlyAttribute), readOnlyAttribute + " exists on Linux");
        assertThrows(java.nio.file.AccessDeniedException.class, () -> FileBackingStore.open(readOnlyAttribute, false));
        IOException directory = assertThrows(IOException.class, () -> FileBackingStore.open(dir, true));
        assertTrue(directory.getMessage().contains("neither a regular file nor a block device"),
                directory.getMessage());
    }

    @ParameterizedTest
    @EnumSource(Medium.class)
    void closedStoreRefusesRequests(Medium medium) throws IOException {
        FileBackingStore store = FileBackingStore.createSparse(file(medium), MIB);
        store.close();
        store.close();
        assertEquals(IoStatus.ESHUTDOWN, assertThrows(StoreException.class,
                () -> store.read(0, ByteBuffer.allocate(512))).status());
    }

    @ParameterizedTest
    @EnumSource(Medium.class)
    void extentQueryStopsWhenTheConsumerSaysSo(Medium medium) throws IOException {
        try (FileBackingStore store = FileBackingStore.createSparse(file(medium), 4L * MIB)) {
            store.write(MIB, ByteBuffer.wrap(randomBytes(4096, 6)), false);
            List<Long> seen = new ArrayList<>();
            BlockDevice.ExtentConsumer firstOnly = (len, flags) -> {
                seen.add(len);
                return false;
            };
            assertEquals(MIB, store.describeExtents(0, 4L * MIB, firstOnly));
            assertEquals(List.of((long) MIB), seen);
        }
    }
}
