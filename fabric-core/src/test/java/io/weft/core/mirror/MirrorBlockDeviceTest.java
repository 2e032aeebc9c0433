package io.weft.core.mirror;

import static io.weft.core.mirror.MirrorFixture.faultyLegs;
import static io.weft.core.mirror.MirrorFixture.io;
import static io.weft.core.mirror.MirrorFixture.pattern;
import static io.weft.core.mirror.MirrorFixture.read;
import static io.weft.core.mirror.MirrorFixture.write;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.DeviceInfo;
import io.weft.core.io.ForwardingBlockDevice;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoFlags;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;

class MirrorBlockDeviceTest extends MirrorTestBase {
    static final long SIZE = 16L << 20;



    MirrorBlockDevice mirrorOf(List<? extends BlockDevice> legs, MirrorOptions options) {
        mirror = new MirrorBlockDevice(new ArrayList<>(legs), WriteIntentBitmap.inMemory(SIZE, 1 << 20), options);
        return mirror;
    }

    static MirrorOptions fast() {
        // Long enough that a loaded 2-core CI machine does not drop a healthy asynchronous leg.
        // Activity log extents of one 1 MiB region, so the bitmap counts below are per region (see ResyncTest).
        return MirrorOptions.defaults().withLegTimeoutNanos(300_000_000L)
                .withActivityLog(ActivityLog.DEFAULT_EXTENTS, 1 << 20);
    }

    /** Records leg-dropped events. */
    static final class Events implements MirrorListener {
        final List<String> dropped = new CopyOnWriteArrayList<>();

        @Override
        public void legDropped(int leg, String reason, long nanoTime) {
            dropped.add(leg + ":" + reason);
        }
    }

    @Test
    void writesReachEveryLegAndReadBack() throws Exception {
        List<FaultyBlockDevice> legs = faultyLegs(dir, 2, SIZE, true);
        // No watchdog: this is about the fan-out. Seen once on a loaded machine: leg 0 read back zeros after an OK
        // write, most likely a first write slower than the leg timeout (leg 0 dropped, leg 1 alone acknowledged).
        MirrorBlockDevice m = mirrorOf(legs, fast().withWatchdog(false));
        Events events = new Events();
        m.addListener(events);
        byte[] data = pattern(64 << 10, 3);
        assertEquals(IoStatus.OK, write(m, 1 << 20, data));
        assertEquals(List.of(), events.dropped, "no leg dropped");
        assertArrayEquals(data, read(m, 1 << 20, data.length));
        assertArrayEquals(data, read(legs.get(0).inner(), 1 << 20, data.length));
        assertArrayEquals(data, read(legs.get(1).inner(), 1 << 20, data.length));
        assertEquals(0, m.bitmap().dirtyCount(), "no leg out of sync, so no intent bits");
    }

    @Test
    void flushAndFuaReachEveryLeg() throws Exception {
        List<FaultyBlockDevice> legs = faultyLegs(dir, 2, SIZE, false);
        MirrorBlockDevice m = mirrorOf(legs, fast());
        ByteBuffer b = ByteBuffer.allocateDirect(4096);
        assertEquals(IoStatus.OK, io(m, IoOp.WRITE, 0, 4096, IoFlags.FUA, b));
        assertEquals(IoStatus.OK, io(m, IoOp.FLUSH, 0, 0, 0, null));
        for (FaultyBlockDevice l : legs) {
            assertEquals(1, l.fuaWrites.get());
            assertEquals(1, l.flushes.get());
        }
    }

    @Test
    void aFailingLegIsDroppedAndWritesStillSucceed() throws Exception {
        List<FaultyBlockDevice> legs = faultyLegs(dir, 2, SIZE, true);
        MirrorBlockDevice m = mirrorOf(legs, fast());
        Events events = new Events();
        m.addListener(events);
        legs.get(1).mode(FaultyBlockDevice.Mode.FAIL);
        byte[] data = pattern(8192, 5);
        assertEquals(IoStatus.OK, write(m, 3L << 20, data));
        assertEquals(LegState.FAILED, m.legState(1));
        assertEquals(LegState.IN_SYNC, m.legState(0));
        assertEquals(List.of("1:EIO"), events.dropped);
        assertTrue(m.bitmap().isDirty(3), "the region leg 1 missed is dirty");
        assertEquals(IoStatus.OK, write(m, 5L << 20, data));
        assertTrue(m.bitmap().isDirty(5), "writes while degraded mark their region");
        assertArrayEquals(data, read(m, 3L << 20, data.length));
        assertTrue(m.status().degraded());
    }

    @Test
    void aHungLegIsDroppedByTheWatchdogAndTheWriteCompletes() throws Exception {
        List<FaultyBlockDevice> legs = faultyLegs(dir, 2, SIZE, true);
        MirrorBlockDevice m = mirrorOf(legs, fast());
        Events events = new Events();
        m.addListener(events);
        legs.get(0).mode(FaultyBlockDevice.Mode.HANG);
        byte[] data = pattern(4096, 9);
        assertEquals(IoStatus.OK, write(m, 0, data));
        assertEquals(LegState.FAILED, m.legState(0));
        assertEquals(1, events.dropped.size());
        assertTrue(events.dropped.get(0).startsWith("0:no completion within 300 ms"), events.dropped.toString());
        assertArrayEquals(data, read(m, 0, data.length));
    }

    @Test
    void aHungReadMovesToTheOtherLeg() throws Exception {
        List<FaultyBlockDevice> legs = faultyLegs(dir, 2, SIZE, true);
        MirrorBlockDevice m = mirrorOf(legs, fast());
        byte[] data = pattern(4096, 11);
        assertEquals(IoStatus.OK, write(m, 4096, data));
        legs.get(0).mode(FaultyBlockDevice.Mode.HANG);
        for (int i = 0; i < 4; i++) {
            assertArrayEquals(data, read(m, 4096, data.length));
        }
        assertEquals(LegState.FAILED, m.legState(0));
    }

    @Test
    void aFailedReadIsRetriedOnAnotherLeg() throws Exception {
        List<FaultyBlockDevice> legs = faultyLegs(dir, 3, SIZE, false);
        mirror = new MirrorBlockDevice(new ArrayList<>(legs), WriteIntentBitmap.inMemory(SIZE, 1 << 20), fast());
        byte[] data = pattern(4096, 13);
        assertEquals(IoStatus.OK, write(mirror, 0, data));
        legs.get(0).mode(FaultyBlockDevice.Mode.FAIL);
        legs.get(2).mode(FaultyBlockDevice.Mode.FAIL);
        for (int i = 0; i < 6; i++) {
            assertArrayEquals(data, read(mirror, 0, data.length), "read " + i);
        }
        assertEquals(LegState.IN_SYNC, mirror.legState(1));
        assertEquals(LegState.FAILED, mirror.legState(0));
        assertEquals(LegState.FAILED, mirror.legState(2));
    }

    @Test
    void withEveryLegFailingTheLastInSyncLegStaysAndItsErrorReachesTheCaller() throws Exception {
        List<FaultyBlockDevice> legs = faultyLegs(dir, 2, SIZE, false);
        MirrorBlockDevice m = mirrorOf(legs, fast());
        legs.get(0).mode(FaultyBlockDevice.Mode.FAIL);
        legs.get(1).mode(FaultyBlockDevice.Mode.FAIL);
        assertEquals(IoStatus.EIO, write(m, 0, pattern(4096, 1)));
        assertEquals(1, (m.legState(0) == LegState.IN_SYNC ? 1 : 0) + (m.legState(1) == LegState.IN_SYNC ? 1 : 0),
                "one leg dropped, the last in-sync one kept: " + m);
        assertEquals(IoStatus.EIO, write(m, 0, pattern(4096, 1)));
        assertEquals(IoStatus.EIO, io(m, IoOp.READ, 0, 4096, 0, ByteBuffer.allocateDirect(4096)));
        legs.get(0).mode(FaultyBlockDevice.Mode.PASS);
        legs.get(1).mode(FaultyBlockDevice.Mode.PASS);
        assertEquals(IoStatus.OK, write(m, 0, pattern(4096, 2)), "the authority answers again: IO goes on");
    }

    @Test
    void minLatencyPrefersTheFasterLeg() throws Exception {
        List<FaultyBlockDevice> legs = faultyLegs(dir, 2, SIZE, false);
        BlockDevice slow = new SlowDevice(legs.get(0));
        List<BlockDevice> both = List.of(slow, legs.get(1));
        mirror = new MirrorBlockDevice(new ArrayList<>(both), WriteIntentBitmap.inMemory(SIZE, 1 << 20),
                fast().withReadPolicy(ReadPolicy.MIN_LATENCY));
        for (int i = 0; i < 40; i++) {
            read(mirror, 0, 4096);
        }
        assertTrue(legs.get(1).reads.get() > 3 * legs.get(0).reads.get(),
                "fast leg reads " + legs.get(1).reads + " vs slow " + legs.get(0).reads);
    }

    @Test
    void badRequestsAreRejectedWithoutTouchingLegs() throws Exception {
        List<FaultyBlockDevice> legs = faultyLegs(dir, 2, SIZE, false);
        MirrorBlockDevice m = mirrorOf(legs, fast());
        assertEquals(IoStatus.EOVERFLOW, io(m, IoOp.WRITE, SIZE, 4096, 0, ByteBuffer.allocateDirect(4096)));
        assertEquals(IoStatus.EINVAL, io(m, IoOp.WRITE, 1, 4096, 0, ByteBuffer.allocateDirect(4096)));
        assertEquals(IoStatus.EINVAL, io(m, IoOp.WRITE, 0, 4096, 0, ByteBuffer.allocateDirect(100)));
        assertEquals(0, legs.get(0).writes.get() + legs.get(1).writes.get());
        assertEquals(LegState.IN_SYNC, m.legState(0));
    }

    @Test
    void removingTheLastInSyncLegIsRefused() throws Exception {
        List<FaultyBlockDevice> legs = faultyLegs(dir, 2, SIZE, false);
        MirrorBlockDevice m = mirrorOf(legs, fast());
        BlockDevice removed = m.removeLeg(1);
        removed.close();
        assertEquals(LegState.EMPTY, m.legState(1));
        assertThrows(IllegalStateException.class, () -> m.removeLeg(0));
        assertEquals(IoStatus.OK, write(m, 0, pattern(4096, 2)));
    }

    @Test
    void theSteadyStateAllocatesNothing() throws Exception {
        BlockDevice nullLeg = new NullDevice(SIZE);
        BlockDevice nullLeg2 = new NullDevice(SIZE);
        mirror = new MirrorBlockDevice(new ArrayList<>(List.of(nullLeg, nullLeg2)),
                WriteIntentBitmap.inMemory(SIZE, 1 << 20), fast().withWatchdog(false));
        ByteBuffer[] buffers = new ByteBuffer[8];
        for (int i = 0; i < buffers.length; i++) {
            buffers[i] = ByteBuffer.allocateDirect(4096);
        }
        long[] done = new long[1];
        IoCompletion c = (tag, status) -> done[0] += status == IoStatus.OK ? 1 : 1_000_000;
        Runnable round = () -> {
            for (int i = 0; i < 20_000; i++) {
                ByteBuffer b = buffers[i & 7];
                b.clear();
                mirror.submit((i & 1) == 0 ? IoOp.WRITE : IoOp.READ, (i & 255) * 4096L, 4096, 0, b, i, c);
            }
        };
        long allocated = allocatedBySecondRun(round);
        assertEquals(40_000, done[0]);
        assertTrue(allocated < 4096, "20000 IOs allocated " + allocated + " bytes");
    }

    /**
     * Slots are picked by the caller's buffer's identity hash, so two buffers a caller reuses can hash to the same
     * slot (for theSteadyStateAllocatesNothing's 4 write buffers over 1024 slots, about one run in 150; for 64
     * buffers, most runs). They must not take turns on that slot's leg views: each turn is a {@code duplicate()},
     * one per write.
     */
    @Test
    void buffersThatHashToOneSlotAllocateNothingInTheSteadyState() {
        int slots = 64;
        mirror = new MirrorBlockDevice(new ArrayList<>(List.of(new NullDevice(SIZE), new NullDevice(SIZE))),
                WriteIntentBitmap.inMemory(SIZE, 1 << 20), fast().withWatchdog(false).withMaxInFlight(slots));
        ByteBuffer[] sharing = buffersHashingToOneSlot(slots);
        long[] done = new long[1];
        IoCompletion c = (tag, status) -> done[0] += status == IoStatus.OK ? 1 : 1_000_000;
        Runnable round = () -> {
            for (int i = 0; i < 20_000; i++) {
                ByteBuffer b = sharing[i & 1];
                b.clear();
                mirror.submit(IoOp.WRITE, (i & 255) * 4096L, 4096, 0, b, i, c);
            }
        };
        long allocated = allocatedBySecondRun(round);
        assertEquals(40_000, done[0]);
        assertTrue(allocated < 4096,
                "20000 writes from two buffers sharing a slot allocated " + allocated + " bytes");
    }

    /** Runs {@code round} once to warm up, then again: the bytes this thread allocated in the second run. */
    static long allocatedBySecondRun(Runnable round) {
        round.run();
        com.sun.management.ThreadMXBean mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        long before = mx.getThreadAllocatedBytes(Thread.currentThread().getId());
        round.run();
        return mx.getThreadAllocatedBytes(Thread.currentThread().getId()) - before;
    }

    /** Two direct buffers whose identity hashes pick the same one of {@code slots} slots (pigeonhole: found). */
    static ByteBuffer[] buffersHashingToOneSlot(int slots) {
        ByteBuffer[] bySlot = new ByteBuffer[slots];
        for (int i = 0; i <= slots; i++) {
            ByteBuffer b = ByteBuffer.allocateDirect(4096);
            int slot = (System.identityHashCode(b) & 0x7FFF_FFFF) % slots;
            if (bySlot[slot] != null) {
                return new ByteBuffer[] {bySlot[slot], b};
            }
            bySlot[slot] = b;
        }
        throw new AssertionError("unreachable: " + (slots + 1) + " buffers over " + slots + " slots");
    }

    /** Completes everything OK inline; allocates nothing. */
    static final class NullDevice implements BlockDevice {
        final DeviceInfo info;

        NullDevice(long size) {
            info = new DeviceInfo(size, 512, 4096, 1 << 20, false, true, true, true, true, false, false, true);
        }

        @Override
        public DeviceInfo info() {
            return info;
        }

        @Override
        public void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                           IoCompletion completion) {
            completion.onComplete(tag, IoStatus.OK);
        }

        @Override
        public void close() {
        }
    }

    /** Adds ~2 ms to every request (completing on its own thread). */
    static final class SlowDevice extends ForwardingBlockDevice {
        final java.util.concurrent.ScheduledExecutorService timer =
                java.util.concurrent.Executors.newSingleThreadScheduledExecutor();

        SlowDevice(BlockDevice inner) {
            super(inner);
        }

        @Override
        public void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                           IoCompletion completion) {
            timer.schedule(() -> delegate.submit(op, offset, length, flags, buffer, tag, completion), 2,
                    java.util.concurrent.TimeUnit.MILLISECONDS);
        }

        @Override
        public void close() {
            timer.shutdownNow();
            delegate.close();
        }
    }
    @Test
    void whileALegIsOutTheIntentIsDurableBeforeTheWriteIsIssued() throws Exception {
        List<FaultyBlockDevice> legs = faultyLegs(dir, 2, SIZE, false);
        WriteIntentBitmap bitmap = WriteIntentBitmap.create(dir.resolve("wib"), SIZE, 1 << 20);
        List<String> violations = new CopyOnWriteArrayList<>();
        int[] seen = new int[1];
        BlockDevice checking = new BlockDevice() {
            @Override
            public DeviceInfo info() {
                return legs.get(0).info();
            }

            @Override
            public void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                               IoCompletion completion) {
                if (op == IoOp.WRITE && mirror.legState(1) == LegState.FAILED) {
                    seen[0]++;
                    // Read the bit through a second mapping of the file: what a crash would leave behind.
                    try (WriteIntentBitmap onDisk = WriteIntentBitmap.open(dir.resolve("wib"))) {
                        if (!onDisk.isDirty(onDisk.regionOf(offset))) {
                            violations.add("write @" + offset + " issued before its region was marked");
                        }
                        if ((onDisk.inSyncMask() & 2) != 0) {
                            violations.add("write @" + offset + " issued while the header still says leg 1 in sync");
                        }
                    } catch (java.io.IOException e) {
                        violations.add(e.toString());
                    }
                }
                legs.get(0).submit(op, offset, length, flags, buffer, tag, completion);
            }

            @Override
            public void close() {
                legs.get(0).close();
            }
        };
        mirror = new MirrorBlockDevice(new ArrayList<>(List.of(checking, legs.get(1))), bitmap, fast());
        legs.get(1).mode(FaultyBlockDevice.Mode.FAIL);
        assertEquals(IoStatus.OK, write(mirror, 0, pattern(4096, 1)));
        for (int r = 1; r < 16; r += 3) {
            assertEquals(IoStatus.OK, write(mirror, (long) r << 20, pattern(4096, r)));
        }
        assertEquals(5, seen[0], "writes issued while leg 1 was out");
        assertEquals(List.of(), violations);
        assertEquals(6, bitmap.dirtyCount());
    }
}
