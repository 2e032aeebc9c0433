package io.weft.core.mirror;

import static io.weft.core.mirror.MirrorFixture.fileLeg;
import static io.weft.core.mirror.MirrorFixture.firstDifference;
import static io.weft.core.mirror.MirrorFixture.pattern;
import static io.weft.core.mirror.MirrorFixture.write;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.testkit.RecordingBlockDevice;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Crash consistency of {@link MirrorBlockDevice} (issue 11, "crash-consistent mirrors"): the activity log, the flush
 * that makes a resynced leg durable before it is IN_SYNC, and FLUSH errors of an in-sync leg.
 *
 * <p>A client crash is simulated by abandoning a device (no close, no watchdog) while some writes are held by one
 * leg (FaultyBlockDevice HOLD: the leg never answers, and never executes them), then constructing a new device over
 * the same leg stores and the reopened bitmap file, as a restarted client would.
 */
class CrashConsistencyTest {
    static final long SIZE = 16L << 20;
    static final int REGION = 64 << 10;
    static final int EXTENT = 256 << 10;
    static final int REGIONS_PER_EXTENT = EXTENT / REGION;

    Path dir;
    final List<AutoCloseable> toClose = new ArrayList<>();

    @BeforeEach
    void setUp() throws Exception {
        dir = MirrorFixture.tempDir("weft-crash");
    }

    @AfterEach
    void tearDown() throws Exception {
        for (AutoCloseable c : toClose) {
            c.close();
        }
        MirrorFixture.deleteTree(dir);
    }

    static MirrorOptions options() {
        return MirrorOptions.defaults().withWatchdog(false).withResyncBytesPerSecond(0)
                .withActivityLog(8, EXTENT);
    }

    private static void submitWrite(BlockDevice d, long offset, byte[] data, CompletableFuture<Integer> done) {
        ByteBuffer b = ByteBuffer.allocateDirect(data.length);
        b.put(data).flip();
        d.submit(IoOp.WRITE, offset, data.length, 0, b, 1, (tag, st) -> done.complete(st));
    }

    /** Returns every FAILED leg (as the client's actor does after a map) and waits until all are in sync. */
    private static void returnFailedLegs(MirrorBlockDevice m) throws Exception {
        for (int i = 0; i < MirrorBlockDevice.MAX_LEGS; i++) {
            if (m.legState(i) == LegState.FAILED) {
                m.legReturned(i).get(30, TimeUnit.SECONDS);
            }
        }
        for (int i = 0; i < MirrorBlockDevice.MAX_LEGS; i++) {
            LegState s = m.legState(i);
            assertTrue(s == LegState.IN_SYNC || s == LegState.EMPTY, "leg " + i + " is " + s);
        }
    }

    @Test
    void writesInFlightAtAClientCrashAreResyncedFromOneLegBeforeBothServeReads() throws Exception {
        Path wib = dir.resolve("vol.wib");
        BlockDevice store0 = fileLeg(dir, "leg0", SIZE);
        BlockDevice store1 = fileLeg(dir, "leg1", SIZE);
        FaultyBlockDevice leg0 = new FaultyBlockDevice(store0, false);
        FaultyBlockDevice leg1 = new FaultyBlockDevice(store1, false);
        MirrorBlockDevice first = new MirrorBlockDevice(List.of(leg0, leg1), WriteIntentBitmap.create(wib, SIZE,
                REGION), options());
        // Acknowledged writes in three extents (0, 5, 20): the legs agree there.
        long[] acknowledged = {0, 5L * EXTENT + 4096, 20L * EXTENT};
        for (int i = 0; i < acknowledged.length; i++) {
            assertEquals(IoStatus.OK, write(first, acknowledged[i], pattern(8192, i)));
        }
        // In flight at the crash: extent 9 reached leg 0 only, extent 30 reached leg 1 only.
        long onlyOn0 = 9L * EXTENT + 8192;
        long onlyOn1 = 30L * EXTENT;
        leg1.mode(FaultyBlockDevice.Mode.HOLD);
        CompletableFuture<Integer> w1 = new CompletableFuture<>();
        submitWrite(first, onlyOn0, pattern(16384, 7), w1);
        leg0.mode(FaultyBlockDevice.Mode.HOLD);
        leg1.mode(FaultyBlockDevice.Mode.PASS);
        CompletableFuture<Integer> w2 = new CompletableFuture<>();
        submitWrite(first, onlyOn1, pattern(16384, 8), w2);
        assertTrue(!w1.isDone() && !w2.isDone(), "both writes are still in flight when the client dies");
        assertTrue(firstDifference(store0, store1, SIZE) >= 0, "the crash left the legs different");
        // kill -9: `first` is abandoned as it is. The restarted client opens the same legs and bitmap file.

        MirrorBlockDevice second = new MirrorBlockDevice(List.of(store0, store1), WriteIntentBitmap.open(wib),
                options());
        toClose.add(second);
        int inSync = 0;
        for (int i = 0; i < 2; i++) {
            inSync += second.legState(i) == LegState.IN_SYNC ? 1 : 0;
        }
        assertEquals(1, inSync, "after an unclean stop only one leg may serve reads until the logged extents are"
                + " resynced; legs are " + second.legState(0) + ", " + second.legState(1));
        returnFailedLegs(second);
        long diff = firstDifference(store0, store1, SIZE);
        assertEquals(-1, diff, "legs differ at offset " + diff + " after the restart");
        // Exactly the logged extents (5 written: 0, 5, 9, 20, 30) were copied, nothing else.
        assertEquals(5L * REGIONS_PER_EXTENT, second.regionsCopiedTotal(), "regions resynced after the crash");
        assertEquals(0, second.bitmap().dirtyCount());
    }

    @Test
    void aCleanCloseLeavesNothingToResync() throws Exception {
        Path wib = dir.resolve("vol.wib");
        MirrorBlockDevice first = new MirrorBlockDevice(List.of(fileLeg(dir, "leg0", SIZE), fileLeg(dir, "leg1",
                SIZE)), WriteIntentBitmap.create(wib, SIZE, REGION), options());
        for (int i = 0; i < 6; i++) {
            assertEquals(IoStatus.OK, write(first, i * 3L * EXTENT, pattern(4096, i)));
        }
        assertTrue(first.activityLog().activeExtents() > 0, "the writes made their extents active");
        first.close();

        BlockDevice store0 = fileLeg(dir, "leg0", SIZE);
        BlockDevice store1 = fileLeg(dir, "leg1", SIZE);
        MirrorBlockDevice second = new MirrorBlockDevice(List.of(store0, store1), WriteIntentBitmap.open(wib),
                options());
        toClose.add(second);
        assertEquals(LegState.IN_SYNC, second.legState(0));
        assertEquals(LegState.IN_SYNC, second.legState(1));
        assertEquals(0, second.activityLog().activeExtents());
        assertEquals(0, second.bitmap().dirtyCount());
        assertEquals(0, second.regionsCopiedTotal());
    }

    @Test
    void aFullLogEvictsOnlyAfterFlushingTheLegs() throws Exception {
        RecordingBlockDevice leg0 = new RecordingBlockDevice(fileLeg(dir, "leg0", SIZE));
        RecordingBlockDevice leg1 = new RecordingBlockDevice(fileLeg(dir, "leg1", SIZE));
        MirrorBlockDevice m = new MirrorBlockDevice(List.of(leg0, leg1), WriteIntentBitmap.create(
                dir.resolve("vol.wib"), SIZE, REGION), options());
        toClose.add(m);
        for (int e = 0; e < 8; e++) {
            assertEquals(IoStatus.OK, write(m, (long) e * EXTENT, pattern(4096, e)));
        }
        assertEquals(8, m.activityLog().activeExtents());
        assertTrue(!leg0.ops().contains(IoOp.FLUSH), "no flush while the log has free slots");
        assertEquals(IoStatus.OK, write(m, 40L * EXTENT, pattern(4096, 40)));
        assertEquals(8, m.activityLog().activeExtents(), "one extent left the log for the new one");
        assertTrue(leg0.ops().contains(IoOp.FLUSH) && leg1.ops().contains(IoOp.FLUSH),
                "both legs were flushed before an extent left the log");
        long rounds = m.activityLog().flushRounds();
        for (int e = 41; e < 47; e++) {
            assertEquals(IoStatus.OK, write(m, (long) e * EXTENT, pattern(4096, e)));
        }
        assertEquals(rounds, m.activityLog().flushRounds(), "extents flushed by that round leave without another");
        // A write to an active extent costs no log IO.
        long misses = m.activityLog().misses();
        assertEquals(IoStatus.OK, write(m, 46L * EXTENT + 4096, pattern(4096, 99)));
        assertEquals(misses, m.activityLog().misses());
    }

    @Test
    void aLegWhoseNodeLostUnflushedWritesGetsThemBackWhenItReturns() throws Exception {
        BlockDevice store0 = fileLeg(dir, "leg0", SIZE);
        BlockDevice store1 = fileLeg(dir, "leg1", SIZE);
        FaultyBlockDevice leg1 = new FaultyBlockDevice(store1, false);
        MirrorBlockDevice m = new MirrorBlockDevice(List.of(store0, leg1), WriteIntentBitmap.create(
                dir.resolve("vol.wib"), SIZE, REGION), options());
        toClose.add(m);
        long flushedAt = 2L * EXTENT;
        long unflushedAt = 6L * EXTENT + 4096;
        assertEquals(IoStatus.OK, write(m, flushedAt, pattern(4096, 1)));
        assertEquals(IoStatus.OK, MirrorFixture.io(m, IoOp.FLUSH, 0, 0, 0, null));
        assertEquals(IoStatus.OK, write(m, unflushedAt, pattern(4096, 2)));
        // Leg 1's node crashes: the write it acknowledged but never flushed is gone from its store.
        assertEquals(IoStatus.OK, write(store1, unflushedAt, new byte[4096]));
        leg1.mode(FaultyBlockDevice.Mode.FAIL);
        assertEquals(IoStatus.OK, write(m, 12L * EXTENT, pattern(4096, 3)));
        assertEquals(LegState.FAILED, m.legState(1));
        leg1.mode(FaultyBlockDevice.Mode.PASS);
        m.legReturned(1).get(30, TimeUnit.SECONDS);
        long diff = firstDifference(store0, store1, SIZE);
        assertEquals(-1, diff, "legs differ at offset " + diff + " after leg 1 returned");
        // The unflushed extent and the region written while it was out; not the flushed extent.
        assertEquals(REGIONS_PER_EXTENT + 1, m.regionsCopiedTotal());
    }

    @Test
    void aResyncedLegIsFlushedBeforeItIsInSync() throws Exception {
        FaultyBlockDevice leg0 = new FaultyBlockDevice(fileLeg(dir, "leg0", SIZE), false);
        RecordingBlockDevice recorder = new RecordingBlockDevice(fileLeg(dir, "leg1", SIZE));
        FaultyBlockDevice leg1 = new FaultyBlockDevice(recorder, false);
        MirrorBlockDevice m = new MirrorBlockDevice(List.of(leg0, leg1), WriteIntentBitmap.create(
                dir.resolve("vol.wib"), SIZE, REGION), options());
        toClose.add(m);
        List<IoOp> opsAtInSync = new CopyOnWriteArrayList<>();
        m.addListener(new MirrorListener() {
            @Override
            public void legInSync(int leg, long nanoTime) {
                if (leg == 1) {
                    opsAtInSync.addAll(recorder.ops());
                }
            }
        });
        leg1.mode(FaultyBlockDevice.Mode.FAIL);
        assertEquals(IoStatus.OK, write(m, 3L * REGION, pattern(8192, 3)));
        assertEquals(LegState.FAILED, m.legState(1));
        leg1.mode(FaultyBlockDevice.Mode.PASS);
        int before = recorder.ops().size();
        m.legReturned(1).get(30, TimeUnit.SECONDS);
        List<IoOp> resync = opsAtInSync.subList(before, opsAtInSync.size());
        assertTrue(resync.contains(IoOp.WRITE), "the resync copied to leg 1: " + resync);
        assertEquals(IoOp.FLUSH, resync.get(resync.size() - 1),
                "leg 1 became IN_SYNC without a flush after its last copy: " + resync);
    }

    @Test
    void aFlushThatAnInSyncLegFailedIsNotReportedOk() throws Exception {
        RecordingBlockDevice leg0 = new RecordingBlockDevice(fileLeg(dir, "leg0", SIZE));
        RecordingBlockDevice leg1 = new RecordingBlockDevice(fileLeg(dir, "leg1", SIZE));
        MirrorBlockDevice m = new MirrorBlockDevice(List.of(leg0, leg1), WriteIntentBitmap.create(
                dir.resolve("vol.wib"), SIZE, REGION), options());
        toClose.add(m);
        assertEquals(IoStatus.OK, write(m, 0, pattern(4096, 1)));
        leg1.failFlushesWith(IoStatus.ENOSPC);
        int st = MirrorFixture.io(m, IoOp.FLUSH, 0, 0, 0, null);
        assertTrue(st != IoStatus.OK || m.legState(1) != LegState.IN_SYNC,
                "FLUSH acknowledged " + IoStatus.name(st) + " while leg 1, which failed it with ENOSPC, is "
                        + m.legState(1));
        // The choice (docs/mirror.md "Flush"): another in-sync leg flushed, so the failing leg is dropped.
        assertEquals(IoStatus.OK, st);
        assertEquals(LegState.FAILED, m.legState(1));
        // The last in-sync leg failing a flush is never dropped: the flush fails.
        leg0.failFlushesWith(IoStatus.ENOSPC);
        assertEquals(IoStatus.ENOSPC, MirrorFixture.io(m, IoOp.FLUSH, 0, 0, 0, null));
        assertEquals(LegState.IN_SYNC, m.legState(0));
    }
}
