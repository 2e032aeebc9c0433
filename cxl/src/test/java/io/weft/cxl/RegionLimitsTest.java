package io.weft.cxl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.cxl.layout.RegionGeometry;
import io.weft.cxl.layout.RegionHeader;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * Issue 12: one object more than a region's table holds fails at once with {@link RegionFullException}, whose message
 * names the region, the limit and the {@code weft cxl format} options of a larger region; nothing is left claimed.
 */
class RegionLimitsTest {
    /** 2 backends, 2 blkdevs, 4 channel segments. */
    private static final RegionGeometry TINY = new RegionGeometry(4, 2, 2, 4, 8, 16 << 10);

    @Test
    void theObjectBeyondEachTableIsRefusedNamingTheLimitAndTheFormatOptions() throws Exception {
        Path regionPath = TestSupport.shmPath("limits");
        Path store = TestSupport.shmPath("limits-store");
        try (CxlRegion region = CxlRegion.format(regionPath, TINY, RegionHeader.FLAG_ENTRY_CRC);
             CxlHost host = CxlHost.register(region, 1, "n", TestSupport.fastOptions())) {
            var device = TestSupport.newStore(store, 1 << 20);
            // 3 channels when 4 segments are free, then 2 of the 1 left: the segment table runs out first.
            CxlBackend wide = host.createBackend(device, "s", BackendOptions.defaults().withChannels(3));
            RegionFullException segments = assertThrows(RegionFullException.class,
                    () -> host.createBackend(device, "s", BackendOptions.defaults().withChannels(2)));
            assertEquals("channel segments", segments.resource());
            assertTrue(segments.getMessage().contains("3 of 4 channel segments in use, 2 needed"),
                    segments.getMessage());
            assertTrue(segments.getMessage().contains("weft cxl format " + regionPath)
                    && segments.getMessage().contains("--channels 8"), segments.getMessage());
            CxlBackend narrow = host.createBackend(device, "s", BackendOptions.defaults().withChannels(1));

            RegionFullException backends = assertThrows(RegionFullException.class,
                    () -> host.createBackend(device, "s", BackendOptions.defaults().withChannels(1)));
            assertEquals("backends", backends.resource());
            assertEquals(2, backends.limit());
            assertTrue(backends.getMessage().contains("2 of 2 backends in use"), backends.getMessage());
            assertTrue(backends.getMessage().contains("--backends 4"), backends.getMessage());

            host.openBlkdev(wide.id(), BlkdevOptions.defaults()).close();
            CxlBlockDevice one = host.openBlkdev(wide.id(), BlkdevOptions.defaults());
            CxlBlockDevice two = host.openBlkdev(narrow.id(), BlkdevOptions.defaults());
            narrow.close();
            CxlBackend third = host.createBackend(device, "s", BackendOptions.defaults().withChannels(1));
            RegionFullException blkdevs = assertThrows(RegionFullException.class,
                    () -> host.openBlkdev(third.id(), BlkdevOptions.defaults()));
            assertEquals("blkdevs", blkdevs.resource());
            assertTrue(blkdevs.getMessage().contains("2 of 2 blkdevs in use")
                    && blkdevs.getMessage().contains("--blkdevs 4"), blkdevs.getMessage());

            // The refusals claimed nothing: freeing one blkdev is enough to open the next.
            two.close();
            host.openBlkdev(third.id(), BlkdevOptions.defaults()).close();
            one.close();
        } finally {
            TestSupport.deleteQuietly(regionPath, store);
        }
    }
}
