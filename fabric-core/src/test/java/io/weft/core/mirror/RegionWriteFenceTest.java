package io.weft.core.mirror;

import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The part where foreground writes and the resync's copy meet, on its own: the per-region counters the copy's race
 * rule reads, and the fence that makes a write to the one region being copied wait for that copy.
 */
class RegionWriteFenceTest {
    static final long WAIT_MS = 20_000;

    @Test
    void aWriteCountsAsStartedOnEveryRegionItTouchesAndFinishedWhenItEnds() {
        RegionWriteFence fence = new RegionWriteFence(4);
        fence.beginWrite(1, 2);
        assertEquals(0, fence.started(0));
        assertEquals(1, fence.started(1));
        assertEquals(1, fence.started(2));
        assertEquals(0, fence.finished(1), "in flight: finished lags started");
        fence.endWrite(1, 2);
        assertEquals(1, fence.finished(1));
        assertEquals(1, fence.finished(2));
        assertEquals(0, fence.started(3));
    }

    @Test
    void aWriteToTheFencedRegionWaitsUntilTheFenceIsLiftedAndOthersDoNot() throws Exception {
        RegionWriteFence fence = new RegionWriteFence(4);
        fence.fence(2);
        assertEquals(2, fence.fencedRegion());
        fence.beginWrite(0, 1); // not fenced: returns at once
        assertEquals(1, fence.started(0));

        CompletableFuture<Void> fencedWrite = CompletableFuture.runAsync(() -> fence.beginWrite(1, 2));
        // It backed out (started and finished both counted once on region 2) and now waits for the fence.
        await("the fenced write backed out", java.time.Duration.ofMillis(WAIT_MS), () -> fence.finished(2) == 1);
        assertEquals(1, fence.started(2));
        assertFalse(fencedWrite.isDone(), "a write to the fenced region waits for the copy");

        fence.unfence();
        fencedWrite.get(WAIT_MS, TimeUnit.MILLISECONDS);
        assertEquals(-1, fence.fencedRegion());
        assertEquals(2, fence.started(2), "counted again once the fence is gone");
        assertEquals(1, fence.finished(2), "and in flight until it ends");
        assertEquals(3, fence.started(1), "region 1: the unfenced write, the backed-out try and the real one");
    }
}
