package io.weft.cxl;

import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.DeviceInfo;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.core.store.StoreBlockDevice;
import io.weft.cxl.layout.ChannelLayout;
import io.weft.cxl.layout.FenceCode;
import io.weft.cxl.layout.RegionGeometry;
import io.weft.cxl.layout.RegionHeader;
import io.weft.testkit.ManuallyCompletedBlockDevice;
import io.weft.testkit.RecordingBlockDevice;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.ConcurrentLinkedQueue;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A hostile or corrupt peer writes garbage into a live region. Each fault goes into its own channel of one backend
 * (all served by a single handler agent); the victim channel is fenced with a readable reason, the device never sees
 * the bad request, and the healthy channel keeps serving verified IO.
 */
class FaultInjectionTest {
    private static final Duration WAIT = Duration.ofSeconds(10);
    private Path regionPath;
    private Path storePath;
    private CxlRegion region;
    private CxlHost host;
    private CxlBackend backend;
    private RecordingBlockDevice recording;

    @BeforeEach
    void setUp() throws Exception {
        regionPath = TestSupport.shmPath("faults");
        storePath = TestSupport.shmPath("faults-store");
        region = CxlRegion.format(regionPath, RegionGeometry.small(), RegionHeader.FLAG_ENTRY_CRC);
        host = CxlHost.register(region, 1, "node-1", TestSupport.fastOptions());
        StoreBlockDevice store = TestSupport.newStore(storePath, 1L << 20);
        recording = new RecordingBlockDevice(store);
        backend = host.createBackend(recording, storePath.toString(),
                BackendOptions.defaults().withChannels(8).withHandlerAgents(1).withCrc(true, true));
    }

    @AfterEach
    void tearDown() {
        if (region != null) {
            region.close(); // also closes the host
        }
        TestSupport.deleteQuietly(regionPath, storePath);
    }

    /** Writes one submission entry the way a client would, then lets the caller spoil it. */
    private static void writeEntry(ChannelSegment seg, long index, long requestId, IoOp op, long offset, int length,
                                   long dataOffset, boolean goodCrc) {
        UnsafeBuffer sub = seg.submissions;
        int e = (int) (index & seg.mask) * ChannelLayout.SUB_ENTRY_SIZE;
        sub.setMemory(e, ChannelLayout.SUB_ENTRY_SIZE, (byte) 0);
        sub.putLong(e + ChannelLayout.SUB_REQUEST_ID, requestId);
        sub.putLong(e + ChannelLayout.SUB_DEVICE_OFFSET, offset);
        sub.putInt(e + ChannelLayout.SUB_LENGTH, length);
        sub.putInt(e + ChannelLayout.SUB_OP, op.ordinal());
        sub.putLong(e + ChannelLayout.SUB_DATA_OFFSET, dataOffset);
        if (op == IoOp.WRITE && dataOffset >= 0 && dataOffset + length <= seg.data.capacity()) {
            sub.putInt(e + ChannelLayout.SUB_DATA_CRC,
                    new io.weft.cxl.layout.Checksums.Calculator(seg.data).compute((int) dataOffset, length));
        }
        int crc = new io.weft.cxl.layout.Checksums.Calculator(sub).compute(e, ChannelLayout.SUB_CRC);
        sub.putInt(e + ChannelLayout.SUB_CRC, goodCrc ? crc : ~crc);
    }

    private ChannelSegment channel(int c) {
        return region.channel(backend.segmentIds()[c]);
    }

    private void awaitFence(int c, FenceCode code) {
        int seg = backend.segmentIds()[c];
        // The fence is written reason, code, then state (the state is what peers poll): wait for the state too, or a
        // status read between the code and the state stores sees the code with the state still active.
        await("channel " + c + " fenced with " + code, WAIT,
                () -> host.status().channel(seg).backendFence() == code
                        && host.status().channel(seg).backendState().equals("fenced"));
        RegionStatus.Channel status = host.status().channel(seg);
        assertEquals("fenced", status.backendState());
        assertTrue(!status.backendFenceReason().isEmpty());
        assertNotNull(backend.fenceReasons().get(c));
        assertTrue(backend.isFenced(c));
    }

    @Test
    void everyKindOfBadInputFencesOnlyItsChannel() throws Exception {
        // The healthy client uses channel 0 only.
        CxlBlockDevice dev = host.openBlkdev(backend.id(), new BlkdevOptions(1, false));
        ByteBuffer buf = ByteBuffer.allocateDirect(4096);
        Pattern.fill(buf, 0, 3, 1);
        assertEquals(IoStatus.OK, SyncIo.run(dev, IoOp.WRITE, 3 * 4096L, 4096, 0, buf));
        long slotBytes = region.geometry().slotSize();
        long dataArea = slotBytes * region.geometry().ringDepth();

        // 1: wild submission tail, far beyond the ring.
        channel(1).control.putLongRelease(ChannelLayout.SUB_TAIL, 1_000_000);
        awaitFence(1, FenceCode.WILD_INDEX);

        // 2: data offset outside the data area.
        writeEntry(channel(2), 0, 1, IoOp.WRITE, 0x10000, 4096, dataArea, true);
        channel(2).control.putLongRelease(ChannelLayout.SUB_TAIL, 1);
        awaitFence(2, FenceCode.DATA_OUT_OF_BOUNDS);

        // 3: device range outside the device.
        writeEntry(channel(3), 0, 1, IoOp.READ, 1L << 40, 4096, 0, true);
        channel(3).control.putLongRelease(ChannelLayout.SUB_TAIL, 1);
        awaitFence(3, FenceCode.BAD_REQUEST);

        // 4: entry checksum does not match.
        writeEntry(channel(4), 0, 1, IoOp.WRITE, 0x20000, 4096, 0, false);
        channel(4).control.putLongRelease(ChannelLayout.SUB_TAIL, 1);
        awaitFence(4, FenceCode.ENTRY_CHECKSUM);

        // 5: request id out of sequence (a replayed or forged entry).
        writeEntry(channel(5), 0, 7, IoOp.WRITE, 0x30000, 4096, 0, true);
        channel(5).control.putLongRelease(ChannelLayout.SUB_TAIL, 1);
        awaitFence(5, FenceCode.REQUEST_SEQUENCE);

        // 6: payload changed after its checksum was taken.
        writeEntry(channel(6), 0, 1, IoOp.WRITE, 0x40000, 4096, 0, true);
        channel(6).data.putLong(8, 0xBAD);
        channel(6).control.putLongRelease(ChannelLayout.SUB_TAIL, 1);
        awaitFence(6, FenceCode.DATA_CHECKSUM);

        // 7: completion head moved beyond the completion tail (a client scribbling on the backend's index).
        writeEntry(channel(7), 0, 1, IoOp.READ, 0, 4096, 0, true);
        channel(7).control.putLongRelease(ChannelLayout.COMP_HEAD, 99);
        channel(7).control.putLongRelease(ChannelLayout.SUB_TAIL, 1);
        awaitFence(7, FenceCode.WILD_INDEX);

        // None of the bad requests reached the device; channel 0 still serves verified IO.
        for (String seen : recording.requests()) {
            assertTrue(!seen.contains("@65536") && !seen.contains("@131072") && !seen.contains("@196608")
                    && !seen.contains("@262144") && !seen.contains("@1099511627776"), seen);
        }
        ByteBuffer back = ByteBuffer.allocateDirect(4096);
        assertEquals(IoStatus.OK, SyncIo.run(dev, IoOp.READ, 3 * 4096L, 4096, 0, back));
        assertEquals(1, Pattern.versionOf(back, 0, 3));
        assertNull(backend.fenceReasons().get(0));
        assertEquals(1L << 20, Files.size(storePath), "the store never grew");
        String rendered = host.status().render();
        assertTrue(rendered.contains("fenced by backend: DATA_CHECKSUM"), rendered);

        // The operator resets a fenced channel no client holds; it serves a well-formed request again.
        assertThrows(IllegalStateException.class, () -> backend.resetChannel(0), "channel 0 is held by the blkdev");
        backend.resetChannel(4);
        assertNull(backend.fenceReasons().get(4));
        assertEquals(FenceCode.NONE, host.status().channel(backend.segmentIds()[4]).backendFence());
        ChannelSegment reset = channel(4);
        writeEntry(reset, 0, 1, IoOp.WRITE, 0x50000, 4096, 0, true);
        reset.control.putLongRelease(ChannelLayout.SUB_TAIL, 1);
        await("reset channel completes a request", WAIT, () -> reset.completionTail() == 1);
        assertTrue(recording.requests().contains("WRITE@327680+4096/0"), recording.requests().toString());
        assertEquals(FenceCode.DATA_CHECKSUM, host.status().channel(backend.segmentIds()[6]).backendFence(),
                "other fences stay until reset");
        dev.close();
    }

    @Test
    void aCorruptCompletionFencesTheClientSideAndFailsItsRequests() {
        ManuallyCompletedBlockDevice holding = new ManuallyCompletedBlockDevice(
                new DeviceInfo(1 << 20, 512, 4096, 1 << 20, false, true, true,
                false, false, false, false, true));
        CxlBackend held = host.createBackend(holding, "held", BackendOptions.defaults().withChannels(1));
        CxlBlockDevice dev = host.openBlkdev(held.id(), BlkdevOptions.defaults());
        ConcurrentLinkedQueue<Integer> statuses = new ConcurrentLinkedQueue<>();
        dev.submit(IoOp.READ, 0, 4096, 0, ByteBuffer.allocateDirect(4096), 1, (t, s) -> statuses.add(s));
        await("request held by the device", WAIT, () -> holding.held() == 1);
        // A "backend" publishes a completion with a garbage checksum.
        ChannelSegment seg = region.channel(held.segmentIds()[0]);
        seg.completions.putLong(ChannelLayout.COMP_REQUEST_ID, 1);
        seg.completions.putInt(ChannelLayout.COMP_CRC, 0xDEAD);
        seg.control.putLongRelease(ChannelLayout.COMP_TAIL, 1);
        await("request failed", WAIT, () -> statuses.size() == 1);
        assertEquals(IoStatus.EIO, statuses.peek());
        assertEquals(FenceCode.ENTRY_CHECKSUM, host.status().channel(held.segmentIds()[0]).clientFence());
        assertTrue(dev.failures().get(0).contains("ENTRY_CHECKSUM"), dev.failures().toString());
        assertEquals(IoStatus.EIO, SyncIo.run(dev, IoOp.READ, 0, 4096, 0, ByteBuffer.allocateDirect(4096)));
        holding.releaseAll(IoStatus.OK);
        assertEquals(1, statuses.size(), "exactly one completion per request");
        dev.close();
    }
}
