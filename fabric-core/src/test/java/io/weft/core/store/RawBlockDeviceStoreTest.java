package io.weft.core.store;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.IoStatus;
import io.weft.core.store.StoreTestFiles.Medium;
import io.weft.core.testing.RequiredTool;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** A loop device over a temp file stands in for a raw disk. Needs root (losetup), as the project's CI has. */
class RawBlockDeviceStoreTest {
    private static final int MIB = 1 << 20;

    private Path dir;
    private Path backingFile;
    private String loopDevice;

    @BeforeEach
    void setUp() throws IOException {
        RequiredTool.require("losetup", "mount");
        assertEquals("0", StoreTestFiles.run("id", "-u").trim(), "loop device tests need root (losetup)");
        dir = Medium.DISK.newDirectory();
        backingFile = dir.resolve("disk.img");
        try (FileChannel ch = FileChannel.open(backingFile, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            ch.truncate(0);
        }
        try (FileBackingStore sizer = FileBackingStore.open(backingFile, false)) {
            sizer.resize(64L * MIB);
        }
    }

    @AfterEach
    void tearDown() throws IOException {
        try {
            if (loopDevice != null) {
                StoreTestFiles.run("losetup", "-d", loopDevice);
            }
        } finally {
            StoreTestFiles.deleteRecursively(dir);
        }
    }

    private Path attach(String... extraArgs) throws IOException {
        List<String> cmd = new ArrayList<>(List.of("losetup", "--find", "--show"));
        cmd.addAll(List.of(extraArgs));
        cmd.add(backingFile.toString());
        loopDevice = StoreTestFiles.run(cmd.toArray(new String[0])).trim();
        assertTrue(loopDevice.startsWith("/dev/loop"), loopDevice);
        return Path.of(loopDevice);
    }

    private static byte[] randomBytes(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    @Test
    void servesALoopDeviceWithItsGeometryAndNoResize() throws IOException {
        Path device = attach();
        String name = device.getFileName().toString();
        boolean sysRotational = Files.readString(Path.of("/sys/block", name, "queue", "rotational")).trim().equals("1");
        try (FileBackingStore store = FileBackingStore.open(device, false)) {
            assertTrue(store.isBlockDevice());
            assertEquals(64L * MIB, store.size());
            assertEquals(512, store.logicalBlockSize());
            assertEquals(sysRotational, store.rotational());

            byte[] data = randomBytes(MIB, 7);
            store.write(3L * MIB, ByteBuffer.wrap(data), true);
            ByteBuffer back = ByteBuffer.allocate(MIB);
            store.read(3L * MIB, back);
            assertArrayEquals(data, back.array());

            assertEquals(IoStatus.ENOTSUP, assertThrows(StoreException.class, () -> store.resize(128L * MIB)).status());
            assertEquals(IoStatus.EOVERFLOW, assertThrows(StoreException.class,
                    () -> store.write(64L * MIB, ByteBuffer.allocate(512), false)).status());
            List<Long> extents = new ArrayList<>();
            store.describeExtents(0, 64L * MIB, (len, flags) -> extents.add(flags == 0 ? len : -len));
            assertEquals(List.of(64L * MIB), extents, "a raw device is all data");
        }
        // The bytes reached the backing file at the same offset.
        try (FileBackingStore file = FileBackingStore.open(backingFile, true)) {
            ByteBuffer onFile = ByteBuffer.allocate(MIB);
            file.read(3L * MIB, onFile);
            assertArrayEquals(randomBytes(MIB, 7), onFile.array());
        }
    }

    @Test
    void aMountedDeviceIsNotOpenedReadWrite() throws IOException {
        RequiredTool.require("mkfs.ext4", "e2fsprogs");
        Path device = attach();
        StoreTestFiles.run("mkfs.ext4", "-q", device.toString());
        Path mountPoint = Files.createDirectories(dir.resolve("mnt"));
        StoreTestFiles.run("mount", device.toString(), mountPoint.toString());
        try {
            // O_EXCL: the kernel refuses a read-write claim on a device a file system has mounted.
            IOException refused = assertThrows(IOException.class, () -> FileBackingStore.open(device, false).close());
            assertTrue(refused.getMessage().contains("in use"), refused.getMessage());
        } finally {
            StoreTestFiles.run("umount", mountPoint.toString());
        }
        try (FileBackingStore store = FileBackingStore.open(device, false)) {
            assertFalse(store.readOnly(), "unmounted, the device can be claimed again");
        }
    }

    @Test
    void discardOnALoopDeviceFreesTheBackingFile() throws IOException {
        Path device = attach();
        try (FileBackingStore store = FileBackingStore.open(device, false)) {
            assertTrue(store.canPunchHoles(), "a loop device over ext4 zeroes without writing");
            store.write(0, ByteBuffer.wrap(randomBytes(4 * MIB, 8)), true);
            long before = StoreTestFiles.allocatedBytes(backingFile);
            store.discard(0, 2L * MIB);
            store.writeZeroes(2L * MIB, MIB, true, true);
            store.flush();
            long after = StoreTestFiles.allocatedBytes(backingFile);
            assertTrue(before - after >= 3L * MIB, "freed on the backing file: " + before + " -> " + after);
            ByteBuffer back = ByteBuffer.allocate(3 * MIB);
            store.read(0, back);
            assertArrayEquals(new byte[3 * MIB], back.array());
        }
    }

    @Test
    void largeSectorDeviceRefusesSmallerRequestsAndWorksWithDirectIo() throws IOException {
        Path device = attach("--sector-size", "4096");
        try (FileBackingStore store = FileBackingStore.open(device, false, true)) {
            assertEquals(4096, store.logicalBlockSize());
            assertEquals(IoStatus.EINVAL, assertThrows(StoreException.class,
                    () -> store.write(512, ByteBuffer.allocate(4096), false)).status());
            assertEquals(IoStatus.EINVAL, assertThrows(StoreException.class,
                    () -> store.read(0, ByteBuffer.allocate(512))).status());
            byte[] data = randomBytes(64 * 1024, 9);
            store.write(8192, ByteBuffer.wrap(data), true);
            ByteBuffer back = ByteBuffer.allocate(data.length);
            store.read(8192, back);
            assertArrayEquals(data, back.array());
            assertFalse(store.readOnly());
        }
    }
}
