package io.weft.cxl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.IoOp;
import io.weft.cxl.layout.RegionGeometry;
import io.weft.cxl.layout.RegionHeader;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * Several producers on one channel (NBD readers of several connections sharing a device's queue): a producer that
 * the scheduler preempts between reserving its ring index and publishing it must not hold up the others' submit
 * calls. Before the fix every later producer busy-spun until the earlier one had published; on a loaded 2-core machine
 * the spinners kept the preempted thread off the CPU, and four NBD connections collapsed to a few thousand IOPS.
 * Order on the ring is still kept: nothing after the paused entry becomes visible to the backend before it.
 */
class ProducerPublicationTest {
    private static final long WAIT_SECONDS = 10;

    @Test
    void aProducerDoesNotWaitForAnEarlierOnePausedBeforePublishing() throws Exception {
        Path regionPath = TestSupport.shmPath("publication");
        CountDownLatch paused = new CountDownLatch(1);
        CountDownLatch resume = new CountDownLatch(1);
        try (CxlRegion region = CxlRegion.format(regionPath, RegionGeometry.small(), RegionHeader.FLAG_ENTRY_CRC)) {
            // The first producer is "preempted" after writing its entry.
            ClientChannel channel = TestSupport.channelPausingFirstProducer(region, 0xC11E, paused, resume);
            ChannelSegment seg = channel.segment();
            AtomicInteger firstStatus = new AtomicInteger(Integer.MIN_VALUE);
            AtomicInteger secondStatus = new AtomicInteger(Integer.MIN_VALUE);
            Thread first = new Thread(() -> firstStatus.set(submitRead(channel, 0, 0)), "producer-0");
            Thread second = new Thread(() -> secondStatus.set(submitRead(channel, 4096, 1)), "producer-1");
            first.start();
            assertTrue(paused.await(WAIT_SECONDS, TimeUnit.SECONDS), "the first producer reached its publication");
            second.start();
            try {
                second.join(TimeUnit.SECONDS.toMillis(WAIT_SECONDS));
                assertTrue(!second.isAlive(), "the second producer's submit returned while the first one is paused");
                assertEquals(-1, secondStatus.get(), "the second request is queued");
                assertEquals(0, seg.submissionTail(), "nothing past the paused producer's entry is visible yet");
            } finally {
                resume.countDown();
                first.join(TimeUnit.SECONDS.toMillis(WAIT_SECONDS));
                second.join(TimeUnit.SECONDS.toMillis(WAIT_SECONDS));
            }
            assertEquals(-1, firstStatus.get(), "the first request is queued");
            assertEquals(2, seg.submissionTail(), "both entries published, in ring order, once the first one was");
            assertEquals(2, channel.inFlight());
        } finally {
            resume.countDown();
            TestSupport.deleteQuietly(regionPath);
        }
    }

    private static int submitRead(ClientChannel channel, long offset, long tag) {
        return channel.submit(IoOp.READ, offset, 4096, 0, ByteBuffer.allocateDirect(4096), tag, (t, s) -> { });
    }
}
