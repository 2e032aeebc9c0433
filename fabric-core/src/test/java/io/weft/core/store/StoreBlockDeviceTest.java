package io.weft.core.store;

import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.DeviceInfo;
import io.weft.core.io.IoFlags;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.core.store.StoreTestFiles.Medium;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLongArray;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

class StoreBlockDeviceTest {
    private static final int MIB = 1 << 20;

    private Path dir;

    @AfterEach
    void cleanUp() throws IOException {
        StoreTestFiles.deleteRecursively(dir);
    }

    private FileBackingStore newStore(Medium medium, long size) throws IOException {
        dir = medium.newDirectory();
        return FileBackingStore.createSparse(dir.resolve("dev.img"), size);
    }

    /** Completion that remembers the one status it was given per tag. */
    private static final class Statuses implements io.weft.core.io.IoCompletion {
        final ConcurrentHashMap<Long, Integer> byTag = new ConcurrentHashMap<>();
        final AtomicInteger calls = new AtomicInteger();

        @Override
        public void onComplete(long tag, int status) {
            calls.incrementAndGet();
            Integer previous = byTag.put(tag, status);
            if (previous != null) {
                throw new AssertionError("tag " + tag + " completed twice");
            }
        }
    }

    private static int run(BlockDevice device, IoOp op, long offset, int length, int flags, ByteBuffer buffer) {
        Statuses statuses = new Statuses();
        device.submit(op, offset, length, flags, buffer, 42, statuses);
        assertEquals(1, statuses.calls.get(), "inline device completes before submit returns");
        return statuses.byTag.get(42L);
    }

    @ParameterizedTest
    @EnumSource(Medium.class)
    void reportsGeometryAndCapabilitiesOfTheStore(Medium medium) throws IOException {
        try (StoreBlockDevice device = new StoreBlockDevice(newStore(medium, 8L * MIB))) {
            DeviceInfo info = device.info();
            assertEquals(8L * MIB, info.size());
            assertEquals(512, info.logicalBlockSize());
            assertTrue(info.canDiscard());
            assertTrue(info.canFastZero());
            assertFalse(info.readOnly());
            assertTrue(info.flushCoversAllConnections());
        }
    }

    @ParameterizedTest
    @EnumSource(Medium.class)
    void everyOperationCompletesWithTheRightStatus(Medium medium) throws IOException {
        try (StoreBlockDevice device = new StoreBlockDevice(newStore(medium, 8L * MIB))) {
            byte[] data = new byte[64 * 1024];
            new Random(1).nextBytes(data);
            ByteBuffer src = ByteBuffer.allocate(data.length + 100).position(100);
            src.put(data).position(100);
            assertEquals(IoStatus.OK, run(device, IoOp.WRITE, MIB, data.length, IoFlags.FUA, src));
            ByteBuffer dst = ByteBuffer.allocateDirect(data.length);
            assertEquals(IoStatus.OK, run(device, IoOp.READ, MIB, data.length, 0, dst));
            byte[] back = new byte[data.length];
            dst.flip().get(back);
            assertArrayEquals(data, back);
            assertEquals(IoStatus.OK, run(device, IoOp.FLUSH, 0, 0, 0, null));
            assertEquals(IoStatus.OK, run(device, IoOp.DISCARD, MIB, 4096, 0, null));
            assertEquals(IoStatus.OK, run(device, IoOp.WRITE_ZEROES, MIB + 4096, 4096,
                    IoFlags.NO_HOLE | IoFlags.FAST_ZERO | IoFlags.FUA, null));
            ByteBuffer zeros = ByteBuffer.allocate(8192);
            assertEquals(IoStatus.OK, run(device, IoOp.READ, MIB, 8192, 0, zeros));
            assertArrayEquals(new byte[8192], zeros.array());

            assertEquals(IoStatus.EOVERFLOW, run(device, IoOp.READ, 8L * MIB, 512, 0, ByteBuffer.allocate(512)));
            assertEquals(IoStatus.EINVAL, run(device, IoOp.WRITE, 3, 512, 0, ByteBuffer.allocate(512)));
            assertEquals(IoStatus.EINVAL, run(device, IoOp.WRITE, 0, 512, 1 << 10, ByteBuffer.allocate(512)));
            assertEquals(IoStatus.EINVAL, run(device, IoOp.WRITE, 0, 1024, 0, ByteBuffer.allocate(512)),
                    "buffer shorter than the length");
            assertEquals(IoStatus.EOVERFLOW, run(device, IoOp.READ, 0, StoreBlockDevice.DEFAULT_MAX_IO + 512, 0,
                    ByteBuffer.allocate(512)));
        }
    }

    @ParameterizedTest
    @EnumSource(Medium.class)
    void readOnlyDeviceRefusesWritesWithEperm(Medium medium) throws IOException {
        FileBackingStore store = newStore(medium, MIB);
        try (StoreBlockDevice device = new StoreBlockDevice(store, true, StoreBlockDevice.DEFAULT_MAX_IO)) {
            assertTrue(device.info().readOnly());
            assertEquals(IoStatus.EPERM, run(device, IoOp.WRITE, 0, 512, 0, ByteBuffer.allocate(512)));
            assertEquals(IoStatus.EPERM, run(device, IoOp.DISCARD, 0, 512, 0, null));
            assertEquals(IoStatus.EPERM, run(device, IoOp.WRITE_ZEROES, 0, 512, 0, null));
            assertEquals(IoStatus.OK, run(device, IoOp.READ, 0, 512, 0, ByteBuffer.allocate(512)));
        }
    }

    @ParameterizedTest
    @EnumSource(Medium.class)
    void extentsAfterDiscardShowTheHole(Medium medium) throws IOException {
        try (StoreBlockDevice device = new StoreBlockDevice(newStore(medium, 4L * MIB))) {
            ByteBuffer data = ByteBuffer.allocate(4 * MIB);
            new Random(2).nextBytes(data.array());
            assertEquals(IoStatus.OK, run(device, IoOp.WRITE, 0, 4 * MIB, 0, data));
            assertEquals(IoStatus.OK, run(device, IoOp.DISCARD, MIB, MIB, 0, null));
            List<String> extents = new ArrayList<>();
            assertEquals(4L * MIB, device.describeExtents(0, 4L * MIB, (len, flags) -> extents.add(flags + ":" + len)));
            int holeBits = BlockDevice.EXTENT_HOLE | BlockDevice.EXTENT_ZERO;
            assertEquals(List.of("0:" + MIB, holeBits + ":" + MIB, "0:" + 2L * MIB), extents);
        }
    }

    @Test
    void closedDeviceCompletesWithEshutdown() throws IOException {
        StoreBlockDevice device = new StoreBlockDevice(newStore(Medium.TMPFS, MIB));
        device.close();
        assertEquals(IoStatus.ESHUTDOWN, run(device, IoOp.READ, 0, 512, 0, ByteBuffer.allocate(512)));
    }

    @Test
    void workerModeCompletesEveryRequestOnceWithTheRightData() throws Exception {
        int requests = 2000;
        int block = 4096;
        StoreBlockDevice inner = new StoreBlockDevice(newStore(Medium.TMPFS, (long) requests * block));
        IoWorkerBlockDevice device = new IoWorkerBlockDevice(inner, 2, 16, "test");
        try {
            Statuses writes = new Statuses();
            ByteBuffer[] buffers = new ByteBuffer[requests];
            for (int i = 0; i < requests; i++) {
                buffers[i] = ByteBuffer.allocate(block);
                buffers[i].putInt(0, i).putInt(block - 4, ~i);
                device.submit(IoOp.WRITE, (long) i * block, block, 0, buffers[i], i, writes);
            }
            await(requests + " completions", Duration.ofSeconds(30), () -> writes.calls.get() >= requests,
                    () -> "only " + writes.calls.get() + " of " + requests + " completed");
            assertTrue(writes.byTag.values().stream().allMatch(s -> s == IoStatus.OK), writes.byTag.toString());

            Statuses reads = new Statuses();
            AtomicLongArray seen = new AtomicLongArray(requests);
            io.weft.core.io.IoCompletion check = (tag, status) -> {
                ByteBuffer b = buffers[(int) tag];
                seen.set((int) tag,
                        status == IoStatus.OK && b.getInt(0) == tag && b.getInt(block - 4) == ~tag ? 1 : -1);
                reads.onComplete(tag, status);
            };
            for (int i = 0; i < requests; i++) {
                buffers[i].clear().putInt(0, -1).putInt(block - 4, -1);
                device.submit(IoOp.READ, (long) i * block, block, 0, buffers[i], i, check);
            }
            await(requests + " completions", Duration.ofSeconds(30), () -> reads.calls.get() >= requests,
                    () -> "only " + reads.calls.get() + " of " + requests + " completed");
            for (int i = 0; i < requests; i++) {
                assertEquals(1, seen.get(i), "request " + i);
            }
            assertEquals(0, device.inFlight());
        } finally {
            device.close();
        }
        Statuses after = new Statuses();
        device.submit(IoOp.READ, 0, 512, 0, ByteBuffer.allocate(512), 7, after);
        assertEquals(IoStatus.ESHUTDOWN, after.byTag.get(7L));
    }

    @Test
    void workerModeFinishesQueuedRequestsBeforeClosing() throws Exception {
        StoreBlockDevice inner = new StoreBlockDevice(newStore(Medium.TMPFS, 16L * MIB));
        IoWorkerBlockDevice device = new IoWorkerBlockDevice(inner, 1, 64, "drain");
        Statuses statuses = new Statuses();
        ByteBuffer data = ByteBuffer.allocateDirect(MIB);
        for (int i = 0; i < 48; i++) {
            device.submit(IoOp.WRITE, (long) (i % 16) * MIB, MIB, 0, data.duplicate(), i, statuses);
        }
        device.close();
        assertEquals(48, statuses.calls.get(), "every request completed by the time close returns");
        assertTrue(statuses.byTag.values().stream().allMatch(s -> s == IoStatus.OK), statuses.byTag.toString());
        assertEquals(0, device.inFlight());
    }
}
