package io.weft.core.mirror;

import static io.weft.core.mirror.MirrorFixture.faultyLegs;
import static io.weft.core.mirror.MirrorFixture.fileLeg;
import static io.weft.core.mirror.MirrorFixture.firstDifference;
import static io.weft.core.mirror.MirrorFixture.pattern;
import static io.weft.core.mirror.MirrorFixture.read;
import static io.weft.core.mirror.MirrorFixture.write;
import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The authority rules of {@link MirrorBlockDevice} (see its class comment): only an IN_SYNC leg makes a write
 * acknowledged, the last IN_SYNC leg is never dropped, and no leg that missed an acknowledged write becomes IN_SYNC —
 * including across a client restart. Time is driven by hand: the watchdog is off and the tests call
 * {@link MirrorBlockDevice#checkTimeouts} with a "now" far past the leg timeout, so nothing depends on the machine's
 * speed. Found by DrillsIT (bug 6): the only in-sync leg was dropped for slowness while the other resynced, writes
 * were acknowledged by the resyncing leg alone, and the stale leg was later declared in sync and copied over them.
 */
class AuthorityTest extends MirrorTestBase {
    static final long SIZE = 32L << 20;
    static final int REGION = 1 << 20;
    static final long LEG_TIMEOUT = 200_000_000L;
    static final long LONG_AFTER = 60_000_000_000L;
    static final int A = 0;
    static final int B = 1;

    final List<String> dropped = new CopyOnWriteArrayList<>();
    /** Every write acknowledged OK: offset → data. The final check reads each back from every leg. */
    final Map<Long, byte[]> acknowledged = new LinkedHashMap<>();



    static MirrorOptions manualTime() {
        return MirrorOptions.defaults().withLegTimeoutNanos(LEG_TIMEOUT).withResyncBytesPerSecond(0)
                .withWatchdog(false);
    }

    MirrorBlockDevice open(List<? extends BlockDevice> legs, WriteIntentBitmap bitmap) {
        mirror = new MirrorBlockDevice(new ArrayList<>(legs), bitmap, manualTime());
        mirror.addListener(new MirrorListener() {
            @Override
            public void legDropped(int leg, String reason, long nanoTime) {
                dropped.add(leg + ":" + reason);
            }
        });
        return mirror;
    }

    /** Writes a block (one per region, so every write dirties its own region) and records it if acknowledged. */
    void writeAcknowledged(int region, int seed) {
        long offset = (long) region * REGION + 8192;
        byte[] data = pattern(4096, seed);
        assertEquals(IoStatus.OK, write(mirror, offset, data), "write to region " + region);
        acknowledged.put(offset, data);
    }

    /** Submits a write without waiting; its status arrives in the future. */
    CompletableFuture<Integer> submitWrite(int region, int seed, Map<Long, byte[]> submitted) {
        long offset = (long) region * REGION + 8192;
        byte[] data = pattern(4096, seed);
        ByteBuffer b = ByteBuffer.allocateDirect(4096);
        b.put(data).flip();
        submitted.put(offset, data);
        CompletableFuture<Integer> f = new CompletableFuture<>();
        mirror.submit(IoOp.WRITE, offset, 4096, 0, b, 1, (tag, status) -> f.complete(status));
        return f;
    }

    /** What the client actor does: hands every FAILED leg back (when the mirror accepts it) until all are IN_SYNC. */
    void returnLegsUntilAllInSync(int... legIndexes) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (true) {
            boolean all = true;
            for (int leg : legIndexes) {
                LegState st = mirror.legState(leg);
                if (st == LegState.FAILED) {
                    try {
                        mirror.legReturned(leg);
                    } catch (IllegalStateException notYet) {
                        // no in-sync leg to copy from: another leg must come first
                    }
                }
                all &= mirror.legState(leg) == LegState.IN_SYNC;
            }
            if (all) {
                return;
            }
            assertTrue(System.nanoTime() < deadline, "legs never all in sync: " + mirror.status());
            Thread.onSpinWait();
            java.util.concurrent.locks.LockSupport.parkNanos(1_000_000);
        }
    }

    void assertEveryAcknowledgedWriteOnEveryLeg(List<? extends BlockDevice> legDevices) {
        for (Map.Entry<Long, byte[]> e : acknowledged.entrySet()) {
            for (int i = 0; i < legDevices.size(); i++) {
                assertArrayEquals(e.getValue(), read(legDevices.get(i), e.getKey(), 4096),
                        "acknowledged write @" + e.getKey() + " on leg " + i);
            }
            assertArrayEquals(e.getValue(), read(mirror, e.getKey(), 4096), "read through the mirror @" + e.getKey());
        }
    }

    @Test
    void theLastInSyncLegSlowWhileTheOtherResyncsIsNotDroppedAndNoAcknowledgedWriteIsLost() throws Exception {
        List<FaultyBlockDevice> legs = faultyLegs(dir, 2, SIZE, false);
        FaultyBlockDevice a = legs.get(A);
        FaultyBlockDevice b = legs.get(B);
        open(legs, WriteIntentBitmap.inMemory(SIZE, REGION));
        writeAcknowledged(0, 1);

        a.mode(FaultyBlockDevice.Mode.FAIL); // a's node dies
        writeAcknowledged(1, 2);
        writeAcknowledged(2, 3);
        assertEquals(LegState.FAILED, mirror.legState(A));

        a.mode(FaultyBlockDevice.Mode.PASS); // a's node is back; b is slow (its requests are held)
        b.mode(FaultyBlockDevice.Mode.HOLD);
        mirror.legReturned(A);
        assertEquals(LegState.RESYNCING, mirror.legState(A));
        Map<Long, byte[]> whileSlow = new LinkedHashMap<>();
        List<CompletableFuture<Integer>> pending = new ArrayList<>();
        for (int r = 3; r < 8; r++) {
            pending.add(submitWrite(r, 10 + r, whileSlow));
        }
        await("b holding the writes", Duration.ofSeconds(10), () -> b.heldCount() >= 5);
        mirror.checkTimeouts(System.nanoTime() + LONG_AFTER);

        assertEquals(LegState.IN_SYNC, mirror.legState(B), "the only in-sync leg is not dropped for slowness");
        assertEquals(List.of("0:EIO"), dropped);
        for (CompletableFuture<Integer> f : pending) {
            assertFalse(f.isDone(), "a write the resyncing leg alone has is not acknowledged");
        }

        b.releaseHeld(); // b answers
        for (CompletableFuture<Integer> f : pending) {
            assertEquals(IoStatus.OK, f.get(10, TimeUnit.SECONDS));
        }
        acknowledged.putAll(whileSlow);
        writeAcknowledged(9, 20);
        returnLegsUntilAllInSync(A, B);

        assertEveryAcknowledgedWriteOnEveryLeg(List.of(a.inner(), b.inner()));
        assertEquals(-1, firstDifference(a.inner(), b.inner(), SIZE));
        assertEquals(List.of("0:EIO"), dropped, "nothing else was dropped");
    }

    @Test
    void theLastInSyncLegSlowAloneDelaysIoWithoutAnErrorAndNothingIsDropped() throws Exception {
        List<FaultyBlockDevice> legs = faultyLegs(dir, 2, SIZE, true);
        FaultyBlockDevice a = legs.get(A);
        FaultyBlockDevice b = legs.get(B);
        open(legs, WriteIntentBitmap.inMemory(SIZE, REGION));
        writeAcknowledged(0, 1);
        a.mode(FaultyBlockDevice.Mode.FAIL);
        writeAcknowledged(1, 2);

        b.mode(FaultyBlockDevice.Mode.HOLD);
        Map<Long, byte[]> whileSlow = new LinkedHashMap<>();
        List<CompletableFuture<Integer>> pending = new ArrayList<>();
        for (int r = 2; r < 6; r++) {
            pending.add(submitWrite(r, 30 + r, whileSlow));
        }
        ByteBuffer readBuffer = ByteBuffer.allocateDirect(4096);
        CompletableFuture<Integer> pendingRead = new CompletableFuture<>();
        mirror.submit(IoOp.READ, 8192, 4096, 0, readBuffer, 2, (tag, status) -> pendingRead.complete(status));
        await("b holding every request", Duration.ofSeconds(10), () -> b.heldCount() >= 5);
        for (int k = 1; k <= 3; k++) {
            mirror.checkTimeouts(System.nanoTime() + k * LONG_AFTER);
        }

        assertEquals(LegState.IN_SYNC, mirror.legState(B));
        assertEquals(List.of("0:EIO"), dropped, "only the failed leg was dropped");
        assertFalse(pendingRead.isDone());
        for (CompletableFuture<Integer> f : pending) {
            assertFalse(f.isDone());
        }

        b.releaseHeld();
        assertEquals(IoStatus.OK, pendingRead.get(10, TimeUnit.SECONDS), "the read completes when b answers");
        byte[] got = new byte[4096];
        readBuffer.clear();
        readBuffer.get(got);
        assertArrayEquals(acknowledged.get(8192L), got);
        for (CompletableFuture<Integer> f : pending) {
            assertEquals(IoStatus.OK, f.get(10, TimeUnit.SECONDS), "no error to the application");
        }
        acknowledged.putAll(whileSlow);
        a.mode(FaultyBlockDevice.Mode.PASS);
        returnLegsUntilAllInSync(A);
        assertEveryAcknowledgedWriteOnEveryLeg(List.of(a.inner(), b.inner()));
    }

    @Test
    void theLastInSyncLegFailingAWriteTheResyncingLegAcceptedFailsItAndDropsTheResyncingLeg() throws Exception {
        List<FaultyBlockDevice> legs = faultyLegs(dir, 2, SIZE, false);
        FaultyBlockDevice a = legs.get(A);
        FaultyBlockDevice b = legs.get(B);
        open(legs, WriteIntentBitmap.inMemory(SIZE, REGION));
        a.mode(FaultyBlockDevice.Mode.FAIL);
        writeAcknowledged(1, 1);
        a.mode(FaultyBlockDevice.Mode.PASS);
        b.mode(FaultyBlockDevice.Mode.HOLD); // keeps a RESYNCING: the copy waits for b
        mirror.legReturned(A);
        await("the resync reading from b", Duration.ofSeconds(10), () -> b.heldCount() >= 1);
        b.mode(FaultyBlockDevice.Mode.FAIL);

        assertEquals(IoStatus.EIO, write(mirror, 4L * REGION, pattern(4096, 2)), "not acknowledged by a alone");
        assertEquals(LegState.IN_SYNC, mirror.legState(B), "the authority stays, though it failed");
        assertEquals(LegState.FAILED, mirror.legState(A), "a holds a write the authority does not: out again");
        assertTrue(mirror.bitmap().isDirty(4), "a's next resync copies that region back");
        assertEquals(0b10, mirror.bitmap().inSyncMask());

        b.releaseHeld();
        writeAcknowledged(5, 3);
        returnLegsUntilAllInSync(A, B);
        assertEveryAcknowledgedWriteOnEveryLeg(List.of(a.inner(), b.inner()));
        assertEquals(-1, firstDifference(a.inner(), b.inner(), SIZE), "the failed write did not leave the legs apart");
    }

    @Test
    void aClientRestartWhileTheLastInSyncLegIsSlowKeepsOnlyItAuthoritative() throws Exception {
        Path bitmapFile = dir.resolve("vol.wib");
        FaultyBlockDevice a = new FaultyBlockDevice(fileLeg(dir, "a", SIZE), false);
        FaultyBlockDevice b = new FaultyBlockDevice(fileLeg(dir, "b", SIZE), false);
        open(List.of(a, b), WriteIntentBitmap.create(bitmapFile, SIZE, REGION));
        a.mode(FaultyBlockDevice.Mode.FAIL);
        writeAcknowledged(1, 1);
        writeAcknowledged(2, 2);
        a.mode(FaultyBlockDevice.Mode.PASS);
        b.mode(FaultyBlockDevice.Mode.HOLD);
        mirror.legReturned(A);
        Map<Long, byte[]> whileSlow = new LinkedHashMap<>();
        CompletableFuture<Integer> unacknowledged = submitWrite(6, 6, whileSlow);
        await("b holding the write", Duration.ofSeconds(10), () -> b.heldCount() >= 1);
        mirror.checkTimeouts(System.nanoTime() + LONG_AFTER);
        assertFalse(unacknowledged.isDone());
        assertEquals(0b10, mirror.bitmap().inSyncMask(), "persisted: b is the authority, a is not");

        mirror.close(); // the client dies with the write in flight
        mirror = null;
        assertEquals(IoStatus.ESHUTDOWN, unacknowledged.get(10, TimeUnit.SECONDS));
        assertEquals(0b10, WriteIntentBitmap.open(bitmapFile).inSyncMask());

        FaultyBlockDevice a2 = new FaultyBlockDevice(fileLeg(dir, "a", SIZE), false);
        FaultyBlockDevice b2 = new FaultyBlockDevice(fileLeg(dir, "b", SIZE), false);
        open(List.of(a2, b2), WriteIntentBitmap.open(bitmapFile));
        assertEquals(LegState.FAILED, mirror.legState(A), "the restarted client does not trust a");
        assertEquals(LegState.IN_SYNC, mirror.legState(B));
        assertTrue(mirror.bitmap().isDirty(1) && mirror.bitmap().isDirty(2), "a's missing regions are still known");
        writeAcknowledged(3, 3);
        returnLegsUntilAllInSync(A, B);
        assertEveryAcknowledgedWriteOnEveryLeg(List.of(a2.inner(), b2.inner()));
        assertEquals(-1, firstDifference(a2.inner(), b2.inner(), SIZE));
    }

    @Test
    void aClientRestartAfterTheResyncingLegAloneSawWritesDoesNotResurrectTheStaleLeg() throws Exception {
        // b is dropped while a is IN_SYNC (allowed: another in-sync leg remains), writes go to a alone, the client
        // restarts: b must come back FAILED and get a's writes, never the other way round.
        Path bitmapFile = dir.resolve("vol2.wib");
        FaultyBlockDevice a = new FaultyBlockDevice(fileLeg(dir, "a", SIZE), false);
        FaultyBlockDevice b = new FaultyBlockDevice(fileLeg(dir, "b", SIZE), false);
        open(List.of(a, b), WriteIntentBitmap.create(bitmapFile, SIZE, REGION));
        writeAcknowledged(0, 1);
        b.mode(FaultyBlockDevice.Mode.HOLD);
        Map<Long, byte[]> whileSlow = new LinkedHashMap<>();
        CompletableFuture<Integer> w = submitWrite(4, 4, whileSlow);
        await("b holding the write", Duration.ofSeconds(10), () -> b.heldCount() >= 1);
        mirror.checkTimeouts(System.nanoTime() + LONG_AFTER);
        assertEquals(IoStatus.OK, w.get(10, TimeUnit.SECONDS), "a is in sync: b may be dropped for slowness");
        acknowledged.putAll(whileSlow);
        assertEquals(LegState.FAILED, mirror.legState(B));
        assertEquals(List.of("1:no completion within 200 ms"), dropped);
        writeAcknowledged(5, 5);
        mirror.close();
        mirror = null;

        FaultyBlockDevice a2 = new FaultyBlockDevice(fileLeg(dir, "a", SIZE), false);
        FaultyBlockDevice b2 = new FaultyBlockDevice(fileLeg(dir, "b", SIZE), false);
        open(List.of(a2, b2), WriteIntentBitmap.open(bitmapFile));
        assertEquals(LegState.IN_SYNC, mirror.legState(A));
        assertEquals(LegState.FAILED, mirror.legState(B));
        returnLegsUntilAllInSync(A, B);
        assertEveryAcknowledgedWriteOnEveryLeg(List.of(a2.inner(), b2.inner()));
    }
}
