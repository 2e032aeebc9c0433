package io.weft.cxl;

import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.core.store.StoreBlockDevice;
import io.weft.cxl.CxlRegion.Table;
import io.weft.cxl.layout.MetaEntry;
import io.weft.cxl.layout.Records;
import io.weft.cxl.layout.RegionGeometry;
import io.weft.cxl.layout.RegionHeader;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Fields read from the region are bounded by local geometry before use: a backend record advertising a max IO size
 * larger than the client's data slot must not let a large request be copied past its slot, nor wedge the ring.
 */
class UntrustedRegionTest {
    private Path regionPath;
    private Path storePath;
    private CxlRegion region;
    private CxlHost host;
    private CxlBackend backend;
    private CxlBlockDevice dev;
    private int slotSize;

    @BeforeEach
    void setUp() throws Exception {
        regionPath = TestSupport.shmPath("untrusted");
        storePath = TestSupport.shmPath("untrusted-store");
        region = CxlRegion.format(regionPath, RegionGeometry.small(), RegionHeader.FLAG_ENTRY_CRC);
        host = CxlHost.register(region, 1, "node-1", TestSupport.fastOptions());
        StoreBlockDevice store = TestSupport.newStore(storePath, 4 << 20);
        backend = host.createBackend(store, "s", BackendOptions.defaults().withChannels(1));
        slotSize = region.geometry().slotSize();
        // A corrupt or hostile backend record: max IO four slots long.
        MetaEntry entry = region.entry(Table.BACKEND, backend.id());
        UnsafeBuffer body = new UnsafeBuffer(new byte[MetaEntry.BODY_SIZE]);
        entry.read(body);
        body.putInt(Records.BACKEND_MAX_IO, 4 * slotSize);
        entry.write(body);
        dev = host.openBlkdev(backend.id(), BlkdevOptions.defaults());
    }

    @AfterEach
    void tearDown() {
        if (region != null) {
            region.close();
        }
        TestSupport.deleteQuietly(regionPath, storePath);
    }

    @Test
    void aMaxIoBeyondTheSlotCannotMakeSubmitCopyPastItsSlot() {
        ChannelSegment seg = region.channel(backend.segmentIds()[0]);
        byte[] before = new byte[seg.data.capacity()];
        seg.data.getBytes(0, before);
        ByteBuffer big = ByteBuffer.allocateDirect(2 * slotSize);
        for (int i = 0; i < big.capacity(); i++) {
            big.put(i, (byte) 0x77);
        }
        int status = SyncIo.run(dev, IoOp.WRITE, 0, 2 * slotSize, 0, big);
        byte[] after = new byte[seg.data.capacity()];
        seg.data.getBytes(0, after);
        int diff = Arrays.mismatch(before, after);
        assertEquals(-1, diff, "the payload was copied into the data area (first byte changed at " + diff
                + ", slot size " + slotSize + ")");
        assertNotEquals(IoStatus.OK, status);
        assertEquals(slotSize, dev.info().maxIoSize(), "max IO is bounded by the slot size");
        assertAll(() -> assertNull(dev.failures().get(0), "the queue still serves"),
                () -> assertEquals(IoStatus.OK, verifiedWriteRead(slotSize)));
    }

    @Test
    void anOversizedRequestOnTheLastSlotFailsCleanlyAndLaterSubmittersStillWork() throws Exception {
        int depth = region.geometry().ringDepth();
        for (int i = 0; i < depth - 1; i++) { // the next request gets the last data slot
            assertEquals(IoStatus.OK, SyncIo.run(dev, IoOp.READ, 0, 4096, 0, ByteBuffer.allocateDirect(4096)));
        }
        Throwable thrown = null;
        CompletableFuture<Integer> big = new CompletableFuture<>();
        try {
            dev.submit(IoOp.WRITE, 0, 2 * slotSize, 0, ByteBuffer.allocateDirect(2 * slotSize), 1,
                    (tag, status) -> big.complete(status));
        } catch (Throwable t) {
            thrown = t;
        }
        // A later submitter on another thread must not spin forever behind an index that was never published.
        CompletableFuture<Integer> later = CompletableFuture.supplyAsync(() -> verifiedWriteRead(4096));
        Integer laterStatus;
        try {
            laterStatus = later.get(10, TimeUnit.SECONDS);
        } catch (TimeoutException e) {
            laterStatus = null;
        }
        Throwable submitThrew = thrown;
        Integer laterResult = laterStatus;
        assertAll(() -> assertNull(submitThrew, "submit threw instead of completing with an error"),
                () -> assertEquals(IoStatus.OK, laterResult, "a later submitter (null: still spinning after 10 s)"));
        assertNotEquals(IoStatus.OK, big.get(10, TimeUnit.SECONDS));
    }

    /** WRITE a pattern then READ it back (on the calling thread's queue). @return OK or the first failure */
    private int verifiedWriteRead(int length) {
        ByteBuffer out = ByteBuffer.allocateDirect(length);
        for (int i = 0; i < length; i++) {
            out.put(i, (byte) (i * 31 + 7));
        }
        int status = SyncIo.run(dev, IoOp.WRITE, 8192, length, 0, out);
        if (status != IoStatus.OK) {
            return status;
        }
        ByteBuffer in = ByteBuffer.allocateDirect(length);
        status = SyncIo.run(dev, IoOp.READ, 8192, length, 0, in);
        if (status == IoStatus.OK && in.mismatch(out) >= 0) {
            return IoStatus.EIO;
        }
        return status;
    }
}
