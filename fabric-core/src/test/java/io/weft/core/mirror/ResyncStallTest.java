package io.weft.core.mirror;

import static io.weft.core.mirror.MirrorFixture.fileLeg;
import static io.weft.core.mirror.MirrorFixture.pattern;
import static io.weft.core.mirror.MirrorFixture.read;
import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.ForwardingBlockDevice;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A resync target that freezes (the {@code flap} drill: a storage node SIGSTOPped while its leg is RESYNCING) must
 * not hold the resync's synchronous IO, nor the region it fenced, once the leg is dropped. The leg timeout here is
 * ten minutes and the watchdog is off, so only the drop (driven by hand) can end the copy's wait in time: the old
 * code waited 2 x legTimeout (20 minutes) for the frozen write, and foreground writes to the fenced region with it.
 */
class ResyncStallTest {
    static final long SIZE = 16L << 20;
    static final int REGION = 1 << 20;
    static final long LEG_TIMEOUT = TimeUnit.MINUTES.toNanos(10);
    /** Generous for a loaded machine, far below the 2 x legTimeout the old copy waited. */
    static final long PROMPTLY_MS = 20_000;

    Path dir;
    MirrorBlockDevice mirror;
    FreezingLeg frozen;

    @BeforeEach
    void setUp() throws Exception {
        dir = MirrorFixture.tempDir("weft-resync-stall-");
    }

    @AfterEach
    void tearDown() throws Exception {
        if (frozen != null) {
            frozen.releaseAll();
        }
        if (mirror != null) {
            mirror.close();
        }
        MirrorFixture.deleteTree(dir);
    }

    private void newMirror() throws Exception {
        frozen = new FreezingLeg(fileLeg(dir, "leg1", SIZE));
        MirrorOptions options = MirrorOptions.defaults().withLegTimeoutNanos(LEG_TIMEOUT).withWatchdog(false)
                .withResyncBytesPerSecond(0).withActivityLog(ActivityLog.DEFAULT_EXTENTS, REGION);
        mirror = new MirrorBlockDevice(List.of(fileLeg(dir, "leg0", SIZE), frozen),
                WriteIntentBitmap.inMemory(SIZE, REGION), options);
    }

    @Test
    void droppingAFrozenResyncTargetEndsTheCopyAndReleasesTheFence() throws Exception {
        newMirror();
        frozen.holding = true;
        // W1 in flight on region 0 (done on leg 0, held by the frozen leg 1): the copy of region 0 waits for it,
        // then fences the region.
        CompletableFuture<Integer> w1 = submitWrite(0, pattern(4096, 1));
        FreezingLeg.Held w1OnLeg1 = frozen.awaitHeld(h -> h.op == IoOp.WRITE && h.length == 4096 && h.offset == 0);
        CompletableFuture<ResyncProgress> resync = mirror.resyncLeg(1, true);
        await("region 0 fenced by the resync", Duration.ofMillis(PROMPTLY_MS), () -> mirror.fencedRegion() == 0);

        // W2 to the fenced region, from its own thread: it waits in submit for the copy of region 0.
        byte[] w2Data = pattern(8192, 2);
        CompletableFuture<Integer> w2 = CompletableFuture.supplyAsync(() -> MirrorFixture.write(mirror, 4096, w2Data));
        // W1 answers on leg 1; the copy of region 0 then runs under the fence and its WRITE freezes on leg 1.
        frozen.release(w1OnLeg1);
        assertEquals(IoStatus.OK, w1.get(PROMPTLY_MS, TimeUnit.MILLISECONDS));
        FreezingLeg.Held copyWrite = frozen.awaitHeld(h -> h.op == IoOp.WRITE && h.length == REGION);
        assertEquals(0, mirror.fencedRegion(), "the copy of region 0 holds the fence while its write is frozen");

        // A foreground write elsewhere, frozen on leg 1 too; the watchdog (driven by hand, long after the leg
        // timeout) drops leg 1 for it, as the flap drill's watchdog did.
        CompletableFuture<Integer> w3 = submitWrite(10L * REGION, pattern(4096, 3));
        frozen.awaitHeld(h -> h.op == IoOp.WRITE && h.offset == 10L * REGION);
        mirror.checkTimeouts(System.nanoTime() + 3 * LEG_TIMEOUT);
        assertEquals(LegState.FAILED, mirror.legState(1));
        assertEquals(IoStatus.OK, w3.get(PROMPTLY_MS, TimeUnit.MILLISECONDS), "failed over to the in-sync leg");

        // The copy gives up at once: the resync ends, the fence goes, W2 completes with leg 0 holding its data.
        await("the resync to the dropped leg to end (the old code waited 2 x legTimeout for its frozen write)",
                Duration.ofMillis(PROMPTLY_MS), resync::isDone);
        assertTrue(resync.isCompletedExceptionally(), "a resync to a dropped leg fails");
        assertEquals(-1, mirror.fencedRegion(), "fence released");
        assertEquals(IoStatus.OK, w2.get(PROMPTLY_MS, TimeUnit.MILLISECONDS), "the write to the fenced region");
        assertArrayEquals(w2Data, read(mirror, 4096, w2Data.length));
        // The request the copy gave up on was cancelled below (the ownership rule), not left to the frozen leg.
        assertTrue(frozen.cancelled(copyWrite), "the copy's frozen WRITE was cancelled");
    }

    @Test
    void removingAFrozenResyncTargetEndsTheCopy() throws Exception {
        newMirror();
        frozen.holding = true;
        CompletableFuture<ResyncProgress> resync = mirror.resyncLeg(1, true);
        FreezingLeg.Held copyWrite = frozen.awaitHeld(h -> h.op == IoOp.WRITE && h.length == REGION);
        BlockDevice removed = mirror.removeLeg(1);
        assertNotNull(removed);
        await("the resync to the removed leg to end (the old code waited 2 x legTimeout for its frozen write)",
                Duration.ofMillis(PROMPTLY_MS), resync::isDone);
        assertTrue(resync.isCompletedExceptionally(), "a resync to a removed leg fails");
        assertTrue(frozen.cancelled(copyWrite), "the copy's frozen WRITE was cancelled");
        byte[] data = pattern(4096, 4);
        assertEquals(IoStatus.OK, MirrorFixture.write(mirror, 0, data));
        assertArrayEquals(data, read(mirror, 0, data.length));
        removed.close();
    }

    @Test
    void droppingAResyncTargetWhoseFinalFlushIsFrozenEndsTheResync() throws Exception {
        newMirror();
        frozen.holdFlushesOnly = true;
        frozen.holding = true;
        CompletableFuture<ResyncProgress> resync = mirror.resyncLeg(1, true);
        // Every region copied; the flush before the leg may be IN_SYNC freezes.
        FreezingLeg.Held flush = frozen.awaitHeld(h -> h.op == IoOp.FLUSH);
        BlockDevice removed = mirror.removeLeg(1);
        await("the resync to the removed leg to end (the old code waited 2 x legTimeout for its frozen flush)",
                Duration.ofMillis(PROMPTLY_MS), resync::isDone);
        assertTrue(resync.isCompletedExceptionally(), "a resync to a removed leg fails");
        assertTrue(frozen.cancelled(flush), "the frozen FLUSH was cancelled");
        // The activity log's flush (it shares the flusher with the resync) is not held up either.
        assertEquals(IoStatus.OK, MirrorFixture.io(mirror, IoOp.FLUSH, 0, 0, 0, null));
        removed.close();
    }

    private CompletableFuture<Integer> submitWrite(long offset, byte[] data) {
        ByteBuffer b = ByteBuffer.allocateDirect(data.length);
        b.put(data).flip();
        CompletableFuture<Integer> f = new CompletableFuture<>();
        mirror.submit(IoOp.WRITE, offset, data.length, 0, b, 9, (tag, status) -> f.complete(status));
        return f;
    }

    /**
     * A leg whose node is frozen: while {@code holding}, every request is held until released one by one; {@link
     * #cancel} completes a held request with ECANCELED and drops it (nothing of its buffer is touched after).
     */
    static final class FreezingLeg extends ForwardingBlockDevice {
        volatile boolean holding;
        /** While holding, hold only FLUSH (the node's disk cache is stuck, reads and writes still answer). */
        volatile boolean holdFlushesOnly;
        private final ConcurrentLinkedQueue<Held> held = new ConcurrentLinkedQueue<>();
        private final ConcurrentLinkedQueue<Held> cancelled = new ConcurrentLinkedQueue<>();
        final AtomicInteger cancels = new AtomicInteger();

        record Held(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag, IoCompletion completion) {
        }

        FreezingLeg(BlockDevice inner) {
            super(inner);
        }

        @Override
        public void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                           IoCompletion completion) {
            if (holding && (!holdFlushesOnly || op == IoOp.FLUSH)) {
                held.add(new Held(op, offset, length, flags, buffer, tag, completion));
            } else {
                delegate.submit(op, offset, length, flags, buffer, tag, completion);
            }
        }

        @Override
        public void cancel(long tag, IoCompletion completion) {
            for (Held h : held) {
                if (h.tag == tag && h.completion == completion && held.remove(h)) {
                    cancels.incrementAndGet();
                    cancelled.add(h);
                    completion.onComplete(tag, IoStatus.ECANCELED);
                    return;
                }
            }
        }

        Held awaitHeld(java.util.function.Predicate<Held> which) {
            Held[] found = new Held[1];
            await("a held request on the frozen leg", Duration.ofMillis(PROMPTLY_MS), () -> {
                for (Held h : held) {
                    if (which.test(h)) {
                        found[0] = h;
                        return true;
                    }
                }
                return false;
            });
            return found[0];
        }

        boolean cancelled(Held h) {
            return cancelled.contains(h);
        }

        void release(Held h) {
            if (held.remove(h)) {
                delegate.submit(h.op, h.offset, h.length, h.flags, h.buffer, h.tag, h.completion);
            }
        }

        /** The node resumes: everything still held is executed and answered. */
        void releaseAll() {
            holding = false;
            Held h;
            while ((h = held.poll()) != null) {
                delegate.submit(h.op, h.offset, h.length, h.flags, h.buffer, h.tag, h.completion);
            }
        }
    }
}
