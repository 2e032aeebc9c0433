package io.weft.core.mirror;

import static io.weft.core.mirror.MirrorFixture.faultyLegs;
import static io.weft.core.mirror.MirrorFixture.fileLeg;
import static io.weft.core.mirror.MirrorFixture.firstDifference;
import static io.weft.core.mirror.MirrorFixture.pattern;
import static io.weft.core.mirror.MirrorFixture.read;
import static io.weft.core.mirror.MirrorFixture.write;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

class ResyncTest extends MirrorTestBase {
    static final long SIZE = 64L << 20;
    static final int REGION = 1 << 20;



    static MirrorOptions options(long rate) {
        // Activity log extents of one region: a dropped leg's unflushed extents (marked for a resync in case its
        // node lost them) then coincide with the regions these tests count.
        return MirrorOptions.defaults().withLegTimeoutNanos(2_000_000_000L).withResyncBytesPerSecond(rate)
                .withActivityLog(ActivityLog.DEFAULT_EXTENTS, REGION);
    }

    @Test
    void onlyTheDirtyRegionsAreCopied() throws Exception {
        List<FaultyBlockDevice> legs = faultyLegs(dir, 2, SIZE, false);
        mirror = new MirrorBlockDevice(new ArrayList<>(legs), WriteIntentBitmap.inMemory(SIZE, REGION), options(0));
        assertEquals(IoStatus.OK, write(mirror, 0, pattern(4096, 1)));
        // Flushed: leg 1 keeps region 0 even if its node crashes, so its drop marks nothing there.
        assertEquals(IoStatus.OK, MirrorFixture.io(mirror, IoOp.FLUSH, 0, 0, 0, null));
        legs.get(1).mode(FaultyBlockDevice.Mode.FAIL);
        // Regions 2, 7, 8 (a write across the boundary), 40.
        assertEquals(IoStatus.OK, write(mirror, 2L * REGION + 4096, pattern(4096, 2)));
        assertEquals(IoStatus.OK, write(mirror, 8L * REGION - 4096, pattern(8192, 3)));
        assertEquals(IoStatus.OK, write(mirror, 40L * REGION, pattern(65536, 4)));
        assertEquals(IoStatus.OK, write(mirror, 40L * REGION + 8192, pattern(4096, 5)));
        assertEquals(LegState.FAILED, mirror.legState(1));
        assertEquals(4, mirror.bitmap().dirtyCount());

        legs.get(1).mode(FaultyBlockDevice.Mode.PASS);
        long writesBefore = legs.get(1).writes.get();
        ResyncProgress p = mirror.legReturned(1).get(30, TimeUnit.SECONDS);
        assertEquals(LegState.IN_SYNC, mirror.legState(1));
        assertEquals(4, p.regionsTotal());
        assertEquals(4, p.regionsDone());
        assertEquals(4L * REGION, p.bytesCopied());
        assertFalse(p.running());
        assertEquals(4, legs.get(1).writes.get() - writesBefore, "one 1 MiB copy per dirty region");
        assertEquals(4L * REGION, legs.get(1).writtenBytes.get() - 4096 - 0, "bytes written to the returning leg");
        assertEquals(0, mirror.bitmap().dirtyCount(), "bits cleared after the copy");
        assertEquals(-1, firstDifference(legs.get(0).inner(), legs.get(1).inner(), SIZE));
    }

    @Test
    void resyncWithConcurrentWritesLeavesIdenticalLegs() throws Exception {
        List<FaultyBlockDevice> legs = faultyLegs(dir, 2, SIZE, true);
        mirror = new MirrorBlockDevice(new ArrayList<>(legs), WriteIntentBitmap.inMemory(SIZE, REGION),
                options(48L << 20));
        long seed = System.nanoTime();
        Random random = new Random(seed);
        legs.get(1).mode(FaultyBlockDevice.Mode.FAIL);
        int dirtyRegions = 32;
        for (int r = 0; r < dirtyRegions; r++) {
            assertEquals(IoStatus.OK, write(mirror, (long) r * REGION + 4096L * random.nextInt(256),
                    pattern(4096, r)), "seed " + seed);
        }
        assertEquals(dirtyRegions, mirror.bitmap().dirtyCount());
        legs.get(1).mode(FaultyBlockDevice.Mode.PASS);
        var done = mirror.legReturned(1);
        // Foreground writes into the regions being copied, until the copy ends.
        byte[][] model = new byte[dirtyRegions * 256][];
        int writes = 0;
        while (!done.isDone()) {
            int block = random.nextInt(dirtyRegions * 256);
            int len = 4096 * (1 + random.nextInt(4));
            if (block + len / 4096 > model.length) {
                continue;
            }
            byte[] data = pattern(len, writes);
            assertEquals(IoStatus.OK, write(mirror, block * 4096L, data), "seed " + seed);
            for (int k = 0; k < len / 4096; k++) {
                model[block + k] = java.util.Arrays.copyOfRange(data, k * 4096, (k + 1) * 4096);
            }
            writes++;
        }
        ResyncProgress p = done.get(30, TimeUnit.SECONDS);
        assertEquals(LegState.IN_SYNC, mirror.legState(1));
        assertEquals(dirtyRegions, p.regionsDone());
        assertTrue(writes > 10, "foreground writes during resync: " + writes);
        assertEquals(0, mirror.bitmap().dirtyCount(), "every leg in sync: no region left dirty (retries "
                + p.retries() + ")");
        assertEquals(-1, firstDifference(legs.get(0).inner(), legs.get(1).inner(), SIZE),
                "seed " + seed + ", " + writes + " writes, retries " + p.retries());
        for (int b = 0; b < model.length; b++) {
            if (model[b] != null) {
                assertArrayEquals(model[b], read(legs.get(1).inner(), b * 4096L, 4096), "seed " + seed + " block " + b);
            }
        }
    }

    @Test
    void aClientRestartKeepsTheBitmapAndResyncsOnlyDirtyRegions() throws Exception {
        Path bitmapFile = dir.resolve("vol.wib");
        List<BlockDevice> legs = new ArrayList<>();
        legs.add(fileLeg(dir, "a", SIZE));
        FaultyBlockDevice b = new FaultyBlockDevice(fileLeg(dir, "b", SIZE), false);
        legs.add(b);
        MirrorBlockDevice first = new MirrorBlockDevice(legs, WriteIntentBitmap.create(bitmapFile, SIZE, REGION),
                options(0));
        b.mode(FaultyBlockDevice.Mode.FAIL);
        for (int r : new int[] {3, 9, 20}) {
            assertEquals(IoStatus.OK, write(first, (long) r * REGION, pattern(16384, r)));
        }
        assertEquals(LegState.FAILED, first.legState(1));
        first.close(); // the client goes away mid-degraded period

        WriteIntentBitmap reopened = WriteIntentBitmap.open(bitmapFile);
        assertEquals(3, reopened.dirtyCount());
        FaultyBlockDevice b2 = new FaultyBlockDevice(fileLeg(dir, "b", SIZE), false);
        BlockDevice a = fileLeg(dir, "a", SIZE);
        mirror = new MirrorBlockDevice(new ArrayList<>(List.of(a, b2)), reopened, options(0));
        assertEquals(LegState.IN_SYNC, mirror.legState(0));
        assertEquals(LegState.FAILED, mirror.legState(1), "the restarted client knows leg 1 is stale");
        ResyncProgress p = mirror.legReturned(1).get(30, TimeUnit.SECONDS);
        assertEquals(3, p.regionsDone());
        assertEquals(3, b2.writes.get());
        // Compared through the mirror's own leg: a second read-write open of the image would be refused (locked).
        assertEquals(-1, firstDifference(a, b2.inner(), SIZE));
    }

    @Test
    void anAddedLegIsFullySyncedAndServesNoReadsUntilInSync() throws Exception {
        List<FaultyBlockDevice> legs = faultyLegs(dir, 2, SIZE, true);
        mirror = new MirrorBlockDevice(new ArrayList<>(legs), WriteIntentBitmap.inMemory(SIZE, REGION),
                options(128L << 20));
        for (int r = 0; r < 64; r += 5) {
            assertEquals(IoStatus.OK, write(mirror, (long) r * REGION, pattern(4096, r)));
        }
        FaultyBlockDevice added = new FaultyBlockDevice(fileLeg(dir, "c", SIZE), true);
        int leg = mirror.addLeg(added);
        assertEquals(2, leg);
        assertEquals(LegState.RESYNCING, mirror.legState(2));
        AtomicReference<ResyncProgress> seen = new AtomicReference<>();
        long readsWhileResyncing = 0;
        int foregroundReads = 0;
        while (!mirror.resyncCompletion(2).isDone()) {
            boolean resyncingBefore = mirror.legState(2) == LegState.RESYNCING;
            long readsBefore = added.reads.get();
            read(mirror, 0, 4096);
            foregroundReads++;
            if (resyncingBefore && mirror.legState(2) == LegState.RESYNCING) {
                readsWhileResyncing += added.reads.get() - readsBefore;
            }
            seen.set(mirror.progress());
        }
        assertTrue(foregroundReads > 10, "reads during the copy: " + foregroundReads);
        assertEquals(0, readsWhileResyncing, "a resyncing leg never serves reads");
        ResyncProgress p = mirror.resyncCompletion(2).get(30, TimeUnit.SECONDS);
        assertTrue(p.full());
        assertEquals(64, p.regionsDone());
        assertEquals(64, p.regionsTotal());
        assertTrue(seen.get() != null && seen.get().regionsTotal() == 64);
        assertEquals(LegState.IN_SYNC, mirror.legState(2));
        assertEquals(-1, firstDifference(legs.get(0).inner(), added.inner(), SIZE));
        assertThrows(IllegalStateException.class, () -> mirror.addLeg(added), "three positions in use");
    }

    @Test
    void aLegThatFailsDuringResyncIsDroppedAgain() throws Exception {
        List<FaultyBlockDevice> legs = faultyLegs(dir, 2, SIZE, false);
        mirror = new MirrorBlockDevice(new ArrayList<>(legs), WriteIntentBitmap.inMemory(SIZE, REGION), options(0));
        legs.get(1).mode(FaultyBlockDevice.Mode.FAIL);
        assertEquals(IoStatus.OK, write(mirror, 0, pattern(4096, 1)));
        var done = mirror.legReturned(1); // still failing
        assertThrows(Exception.class, () -> done.get(30, TimeUnit.SECONDS));
        assertEquals(LegState.FAILED, mirror.legState(1));
        assertTrue(mirror.bitmap().isDirty(0), "the region stays dirty");
        assertTrue(mirror.progress().lastError() != null);
    }

    @Test
    void theLastInSyncLegThatFailsStaysAuthoritativeAndTheOtherResyncsFromIt() throws Exception {
        List<FaultyBlockDevice> legs = faultyLegs(dir, 2, SIZE, false);
        mirror = new MirrorBlockDevice(new ArrayList<>(legs), WriteIntentBitmap.inMemory(SIZE, REGION), options(0));
        legs.get(1).mode(FaultyBlockDevice.Mode.FAIL);
        byte[] data = pattern(4096, 77);
        assertEquals(IoStatus.OK, write(mirror, 0, data));
        legs.get(0).mode(FaultyBlockDevice.Mode.FAIL);
        assertEquals(IoStatus.EIO, write(mirror, 4096, data), "the authority's error reaches the caller");
        assertEquals(LegState.IN_SYNC, mirror.legState(0), "the last in-sync leg is never dropped");
        assertEquals(0b01, mirror.bitmap().inSyncMask());
        legs.get(0).mode(FaultyBlockDevice.Mode.PASS);
        legs.get(1).mode(FaultyBlockDevice.Mode.PASS);
        assertArrayEquals(data, read(mirror, 0, 4096));
        mirror.legReturned(1).get(30, TimeUnit.SECONDS);
        assertEquals(-1, firstDifference(legs.get(0).inner(), legs.get(1).inner(), SIZE));
        assertArrayEquals(data, read(legs.get(1).inner(), 0, 4096));
    }

    @Test
    void aWriteRacingTheCopyOfItsRegionIsNotLost() throws Exception {
        // Many small foreground writes into a single dirty region while it is copied repeatedly.
        List<FaultyBlockDevice> legs = faultyLegs(dir, 2, SIZE, true);
        mirror = new MirrorBlockDevice(new ArrayList<>(legs), WriteIntentBitmap.inMemory(SIZE, REGION), options(0));
        for (int round = 0; round < 5; round++) {
            legs.get(1).mode(FaultyBlockDevice.Mode.FAIL);
            int r0 = round;
            assertEquals(IoStatus.OK, write(mirror, 0, pattern(4096, round)),
                    () -> "round " + r0 + ": " + mirror.status());
            assertEquals(LegState.FAILED, mirror.legState(1));
            legs.get(1).mode(FaultyBlockDevice.Mode.PASS);
            var done = mirror.legReturned(1);
            int i = 0;
            while (!done.isDone() || i < 50) {
                int r = round;
                assertEquals(IoStatus.OK, write(mirror, 4096L * (i % 256), pattern(4096, 1000 * round + i)),
                        () -> "round " + r + ": " + mirror.status());
                i++;
            }
            done.get(30, TimeUnit.SECONDS);
            assertEquals(-1, firstDifference(legs.get(0).inner(), legs.get(1).inner(), 2L * REGION), "round " + round);
            assertEquals(0, mirror.bitmap().dirtyCount(), "round " + round + ": the raced region is clean");
        }
    }
    @Test
    void aLegReturnedWhileAnotherResyncsKeepsTheBitsItNeeds() throws Exception {
        // Leg 1 and leg 2 both missed regions 2 and 5; leg 2 comes back while leg 1's (throttled) copy runs. Leg 1's
        // copy must not clear bits leg 2 still needs: before the fix only a FAILED leg kept them, not a RESYNCING one.
        List<FaultyBlockDevice> legs = faultyLegs(dir, 3, SIZE, false);
        mirror = new MirrorBlockDevice(new ArrayList<>(legs), WriteIntentBitmap.inMemory(SIZE, REGION),
                options(4L << 20)); // 1 MiB region per 250 ms
        legs.get(1).mode(FaultyBlockDevice.Mode.FAIL);
        legs.get(2).mode(FaultyBlockDevice.Mode.FAIL);
        for (int r : new int[] {2, 5, 9, 12}) {
            assertEquals(IoStatus.OK, write(mirror, (long) r * REGION, pattern(4096, r)));
        }
        assertEquals(LegState.FAILED, mirror.legState(2));
        legs.get(1).mode(FaultyBlockDevice.Mode.PASS);
        legs.get(2).mode(FaultyBlockDevice.Mode.PASS);
        var first = mirror.legReturned(1);
        var second = mirror.legReturned(2);
        assertEquals(4, first.get(30, TimeUnit.SECONDS).regionsDone());
        assertEquals(4, second.get(30, TimeUnit.SECONDS).regionsDone(), "leg 2 got every region it missed");
        assertEquals(-1, firstDifference(legs.get(0).inner(), legs.get(2).inner(), SIZE));
        assertEquals(0, mirror.bitmap().dirtyCount());
    }

    @Test
    void bitsStayWhileAnotherLegIsStillOut() throws Exception {
        List<FaultyBlockDevice> legs = faultyLegs(dir, 3, SIZE, false);
        mirror = new MirrorBlockDevice(new ArrayList<>(legs), WriteIntentBitmap.inMemory(SIZE, REGION), options(0));
        legs.get(1).mode(FaultyBlockDevice.Mode.FAIL);
        assertEquals(IoStatus.OK, write(mirror, 2L * REGION, pattern(4096, 1)));
        legs.get(2).mode(FaultyBlockDevice.Mode.FAIL);
        assertEquals(IoStatus.OK, write(mirror, 5L * REGION, pattern(4096, 2)));
        assertEquals(2, mirror.bitmap().dirtyCount());

        legs.get(1).mode(FaultyBlockDevice.Mode.PASS);
        assertEquals(2, mirror.legReturned(1).get(30, TimeUnit.SECONDS).regionsDone());
        assertEquals(2, mirror.bitmap().dirtyCount(), "leg 2 still needs both regions");
        assertEquals(-1, firstDifference(legs.get(0).inner(), legs.get(1).inner(), SIZE));

        legs.get(2).mode(FaultyBlockDevice.Mode.PASS);
        long before = legs.get(2).writes.get();
        assertEquals(2, mirror.legReturned(2).get(30, TimeUnit.SECONDS).regionsDone());
        assertEquals(2, legs.get(2).writes.get() - before);
        assertEquals(0, mirror.bitmap().dirtyCount());
        assertEquals(-1, firstDifference(legs.get(0).inner(), legs.get(2).inner(), SIZE));
        assertFalse(mirror.status().degraded());
    }
}
