package io.weft.cxl;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.core.store.StoreBlockDevice;
import io.weft.cxl.layout.RegionGeometry;
import io.weft.cxl.layout.RegionHeader;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.security.SecureRandom;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A Weft process in the region that was not granted a backend cannot open a blkdev on it: the backend entry holds
 * the SHA-256 of its mapping's capability and a blkdev opens only for the capability itself. (Cooperative: a process
 * that maps the region can read and write all of it; the region file is created 0600 so only the nodes' user can.)
 */
class HostileCxlAttachTest {
    private Path regionPath;
    private Path storePath;
    private CxlRegion region;
    private CxlHost host;

    @BeforeEach
    void setUp() throws Exception {
        regionPath = TestSupport.shmPath("hostile");
        storePath = TestSupport.shmPath("hostile-store");
        region = CxlRegion.format(regionPath, RegionGeometry.small(), RegionHeader.FLAG_ENTRY_CRC);
        host = CxlHost.register(region, 1, "node-1", TestSupport.fastOptions());
    }

    @AfterEach
    void tearDown() {
        if (region != null) {
            region.close();
        }
        TestSupport.deleteQuietly(regionPath, storePath);
    }

    @Test
    void aBlkdevWithoutTheGrantedCapabilityCannotOpenTheBackend() throws Exception {
        SecureRandom random = new SecureRandom();
        byte[] granted = new byte[32];
        byte[] guessed = new byte[32];
        random.nextBytes(granted);
        random.nextBytes(guessed);
        StoreBlockDevice store = TestSupport.newStore(storePath, 1L << 20);
        CxlBackend backend = host.createBackend(store, storePath.toString(), BackendOptions.defaults().withChannels(1),
                CxlHost.grantDigest(granted));
        byte[] before = Files.readAllBytes(storePath);

        IllegalStateException none = assertThrows(IllegalStateException.class,
                () -> host.openBlkdev(backend.id(), BlkdevOptions.defaults()));
        assertTrue(none.getMessage().contains("granted to another client"), none.getMessage());
        IllegalStateException wrong = assertThrows(IllegalStateException.class,
                () -> host.openBlkdev(backend.id(), BlkdevOptions.defaults(), guessed));
        assertTrue(wrong.getMessage().contains("does not match"), wrong.getMessage());
        // The digest itself is readable by anyone in the region; presenting it instead of the capability fails.
        assertThrows(IllegalStateException.class,
                () -> host.openBlkdev(backend.id(), BlkdevOptions.defaults(), CxlHost.grantDigest(granted)));
        assertArrayEquals(before, Files.readAllBytes(storePath), "a refused attach changed the store");

        CxlBlockDevice dev = host.openBlkdev(backend.id(), BlkdevOptions.defaults(), granted);
        ByteBuffer buf = ByteBuffer.allocateDirect(4096);
        assertEquals(IoStatus.OK, SyncIo.run(dev, IoOp.READ, 0, 4096, 0, buf));
        dev.close();

        assertEquals(Set.of(PosixFilePermission.OWNER_READ, PosixFilePermission.OWNER_WRITE),
                Files.getPosixFilePermissions(regionPath), "the region file is readable by other users");
    }
}
