package io.weft.cxl;

import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.core.store.StoreBlockDevice;
import io.weft.cxl.layout.RegionGeometry;
import io.weft.cxl.layout.RegionHeader;
import io.weft.testkit.FaultInjectingBlockDevice;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * Which channel (ring) of a blkdev a submitting thread uses. Issue 17: four NBD connections on one device must not
 * share a ring when the device has four channels, whatever ids their reader threads happen to have.
 */
class ChannelAssignmentTest {

    /**
     * Four submitting threads whose thread ids are all multiples of four (what {@code id % channels} would map to one
     * channel) each leave one request in flight on a four-channel blkdev; the backend's device holds every request,
     * so each stays counted on the channel it was published on.
     */
    @Test
    void asManySubmittingThreadsAsChannelsGetOneChannelEachWhateverTheirIds() throws Exception {
        Path regionPath = TestSupport.shmPath("assign");
        Path storePath = TestSupport.shmPath("assign-store");
        int channels = 4;
        try (CxlRegion region = CxlRegion.format(regionPath, RegionGeometry.small(), RegionHeader.FLAG_ENTRY_CRC);
             CxlHost host = CxlHost.register(region, 1, "n", TestSupport.fastOptions())) {
            StoreBlockDevice store = TestSupport.newStore(storePath, 1 << 20);
            FaultInjectingBlockDevice held = new FaultInjectingBlockDevice(store, "held")
                    .defaultFault(FaultInjectingBlockDevice.Fault.HOLD);
            CxlBackend backend = host.createBackend(held, "s", BackendOptions.defaults().withChannels(channels));
            CxlBlockDevice dev = host.openBlkdev(backend.id(), BlkdevOptions.submitterAssisted());
            assertEquals(channels, dev.queueCount());
            AtomicInteger completed = new AtomicInteger();
            AtomicInteger failed = new AtomicInteger();
            List<Thread> submitters = new ArrayList<>();
            while (submitters.size() < channels) {
                int n = submitters.size();
                Thread t = new Thread(() -> dev.submit(IoOp.READ, n * 4096L, 4096, 0, ByteBuffer.allocateDirect(4096),
                        n, (tag, s) -> {
                            if (s != IoStatus.OK) {
                                failed.incrementAndGet();
                            }
                            completed.incrementAndGet();
                        }), "submitter-" + n);
                if (t.getId() % channels == 0) { // ids that id % channels puts on one ring; others are never started
                    submitters.add(t);
                }
            }
            for (Thread t : submitters) {
                t.start();
                t.join(30_000);
            }
            await("the backend holds all four requests", Duration.ofSeconds(30), () -> held.held().size() == channels);
            long[] perChannel = new long[channels];
            for (int q = 0; q < channels; q++) {
                perChannel[q] = dev.inFlight(q);
            }
            assertArrayEquals(new long[] {1, 1, 1, 1}, perChannel,
                    "requests in flight per channel, one submitting thread per channel");
            held.releaseAll();
            await("every request completes", Duration.ofSeconds(30), () -> completed.get() == channels);
            assertEquals(0, failed.get());
            dev.close();
            backend.close();
        } finally {
            TestSupport.deleteQuietly(regionPath, storePath);
        }
    }
}
