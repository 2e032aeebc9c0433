package io.weft.cxl;

import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.store.StoreBlockDevice;
import io.weft.cxl.layout.RegionGeometry;
import io.weft.cxl.layout.RegionHeader;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * What a storage node's lease check reads for a cxl mapping (issue 12): when the client of a backend was last heard,
 * by the storage host's own clock. It follows a running client's blkdev heartbeat, stops moving while the client
 * process is paused (its host agent frozen), and knows no client for a backend nobody opened or after the client
 * closed its blkdev.
 */
class BlkdevLivenessTest {
    private static final Duration WAIT = Duration.ofSeconds(15);
    private Path regionPath;
    private Path storePath;
    private CxlRegion region;
    private CxlHost storage;
    private CxlHost client;

    @BeforeEach
    void setUp() throws Exception {
        regionPath = TestSupport.shmPath("liveness");
        storePath = TestSupport.shmPath("liveness-store");
        region = CxlRegion.format(regionPath, RegionGeometry.small(), RegionHeader.FLAG_ENTRY_CRC);
        storage = CxlHost.register(region, 1, "storage", TestSupport.fastOptions());
        client = CxlHost.register(region, 2, "client", TestSupport.fastOptions());
    }

    @AfterEach
    void tearDown() {
        if (region != null) {
            region.close();
        }
        TestSupport.deleteQuietly(regionPath, storePath);
    }

    @Test
    void aBackendsClientIsHeardWhileItRunsAndNotWhilePausedOrGone() throws Exception {
        StoreBlockDevice store = TestSupport.newStore(storePath, 1 << 20);
        CxlBackend backend = storage.createBackend(store, "s", BackendOptions.defaults().withChannels(1));
        CxlBackend unopened = storage.createBackend(store, "t", BackendOptions.defaults().withChannels(1));
        CxlBlockDevice blkdev = client.openBlkdev(backend.id(), new BlkdevOptions(0, true));

        // Running: the observed heartbeat keeps moving past any earlier reading.
        await("the client observed", WAIT, () -> backend.clientLastHeardNanos() != CxlHost.NEVER_HEARD);
        long first = backend.clientLastHeardNanos();
        await("the client heard again", WAIT, () -> backend.clientLastHeardNanos() - first > 0);
        assertEquals(CxlHost.NEVER_HEARD, unopened.clientLastHeardNanos(), "nobody opened that backend");

        // Paused: once a beat interval has let the last beat be observed, the reading stays where it is.
        client.freezeForTest(true);
        await("the paused client declared dead", WAIT, () -> storage.isDead(CxlRegion.Table.BLKDEV, blkdev.id()));
        long paused = backend.clientLastHeardNanos();
        long silentFor = System.nanoTime() - paused;
        assertTrue(silentFor >= TestSupport.fastOptions().deadTimeout().toNanos(),
                "a paused client is not heard: silent for " + silentFor / 1_000_000 + " ms");
        assertEquals(paused, backend.clientLastHeardNanos(), "no new reading while the client is paused");

        // Gone: the blkdev closed, the backend has no client any more.
        client.freezeForTest(false);
        blkdev.close();
        await("no client once the blkdev closed", WAIT,
                () -> backend.clientLastHeardNanos() == CxlHost.NEVER_HEARD);
    }
}
