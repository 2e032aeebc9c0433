package io.weft.cxl;

import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.core.store.StoreBlockDevice;
import io.weft.cxl.layout.ChannelLayout;
import io.weft.cxl.layout.RegionGeometry;
import io.weft.cxl.layout.RegionHeader;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicInteger;
import org.agrona.concurrent.IdleStrategy;
import org.junit.jupiter.api.Test;

/**
 * The idle path: an idle handler agent sleeps on its doorbell (a futex word in the channel's control area) for up to a
 * heartbeat interval, and a client that publishes a request wakes it. The heartbeat here is 20 s, so a request
 * that completes within the 10 s deadline can only have been served because the doorbell woke the handler.
 */
class DoorbellTest {
    private static final Duration LONG_HEARTBEAT = Duration.ofSeconds(20);

    private static CxlOptions sleepyOptions() {
        return new CxlOptions(LONG_HEARTBEAT, LONG_HEARTBEAT.multipliedBy(3), LONG_HEARTBEAT.multipliedBy(6), 200, 100,
                Duration.ofNanos(1_000), Duration.ofMillis(1), Duration.ofNanos(200_000));
    }

    @Test
    void clientPublishWakesSleepingHandlerAndCloseIsNotHeldUp() throws Exception {
        Path regionPath = TestSupport.shmPath("doorbell");
        Path storePath = TestSupport.shmPath("doorbell-store");
        try (CxlRegion region = CxlRegion.format(regionPath, RegionGeometry.small(), RegionHeader.FLAG_ENTRY_CRC);
             CxlHost host = CxlHost.register(region, 1, "n", sleepyOptions())) {
            StoreBlockDevice store = TestSupport.newStore(storePath, 1 << 20);
            // Two channels on one handler agent: both name the first channel's segment as the doorbell.
            CxlBackend backend = host.createBackend(store, "s",
                    BackendOptions.defaults().withChannels(2).withHandlerAgents(1));
            int[] segments = backend.segmentIds();
            ChannelSegment first = region.channel(segments[0]);
            ChannelSegment second = region.channel(segments[1]);
            // The shared agent points its channels at its lead's doorbell on its own thread, before it first sleeps.
            await("both channels name the lead's doorbell", Duration.ofSeconds(10), () ->
                    first.control.getIntVolatile(ChannelLayout.DOORBELL_SEGMENT) == segments[0] + 1
                    && second.control.getIntVolatile(ChannelLayout.DOORBELL_SEGMENT) == segments[0] + 1);
            assertEquals(segments[0] + 1, first.control.getIntVolatile(ChannelLayout.DOORBELL_SEGMENT));
            assertEquals(segments[0] + 1, second.control.getIntVolatile(ChannelLayout.DOORBELL_SEGMENT));
            CxlBlockDevice dev = host.openBlkdev(backend.id(), new BlkdevOptions(2, true));
            ByteBuffer buf = ByteBuffer.allocateDirect(4096);
            for (int round = 0; round < 3; round++) {
                await("handler announces sleep", Duration.ofSeconds(10), () ->
                        first.control.getIntVolatile(ChannelLayout.HANDLER_DOORBELL) == ChannelLayout.DOORBELL_ASLEEP
                        && second.control.getIntVolatile(ChannelLayout.HANDLER_DOORBELL)
                        == ChannelLayout.DOORBELL_ASLEEP);
                buf.clear();
                AtomicInteger status = new AtomicInteger(-1);
                dev.submit(IoOp.WRITE, round * 4096L, 4096, 0, buf, round, (tag, s) -> status.set(s));
                await("request served after the doorbell", Duration.ofSeconds(10), () -> {
                    dev.invoker().invoke();
                    return status.get() >= 0;
                });
                assertEquals(IoStatus.OK, status.get());
            }
            assertTrue(backend.served(0) + backend.served(1) >= 3, "the handler served every request");
            dev.close();
            await("handler asleep again", Duration.ofSeconds(10), () ->
                    first.control.getIntVolatile(ChannelLayout.HANDLER_DOORBELL) == ChannelLayout.DOORBELL_ASLEEP);
            // The agent is asleep on its doorbell: close must wake it rather than wait out the 20 s sleep.
            Thread closer = new Thread(backend::close, "closer");
            closer.start();
            await("backend close returns", Duration.ofSeconds(10), () -> !closer.isAlive());
        } finally {
            TestSupport.deleteQuietly(regionPath, storePath);
        }
    }

    @Test
    void overdueCompletionUsesBoundedParksNeverTheSleeper() {
        AtomicInteger sleeps = new AtomicInteger();
        AtomicInteger backOffs = new AtomicInteger();
        boolean[] expecting = {true};
        HotWindowIdleStrategy idle = new HotWindowIdleStrategy(countingBackOff(backOffs), 0, 1_000_000_000L,
                () -> expecting[0], new HotWindowIdleStrategy.Sleeper() {
                    @Override
                    public boolean announce() {
                        return true;
                    }

                    @Override
                    public void sleep(long maxNs) {
                        sleeps.incrementAndGet();
                    }
                });
        await("back-off after the 10 ms in-flight spin", Duration.ofSeconds(10), () -> {
            idle.idle(0);
            return backOffs.get() > 0;
        });
        assertEquals(0, sleeps.get(), "a due completion never sends the agent into a heartbeat-long sleep");
        assertTrue(idle.mayPark());
        expecting[0] = false;
        idle.idle(0);
        assertEquals(1, sleeps.get(), "nothing due: the sleeper takes over");
        idle.idle(1);
        assertFalse(idle.mayPark(), "work resets the strategy");
    }

    private static IdleStrategy countingBackOff(AtomicInteger count) {
        return new IdleStrategy() {
            @Override
            public void idle(int workCount) {
                idle();
            }

            @Override
            public void idle() {
                count.incrementAndGet();
            }

            @Override
            public void reset() {
            }
        };
    }
}
