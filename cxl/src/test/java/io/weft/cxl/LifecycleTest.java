package io.weft.cxl;

import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.DeviceInfo;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.core.store.StoreBlockDevice;
import io.weft.cxl.CxlRegion.Table;
import io.weft.cxl.layout.ChannelLayout;
import io.weft.cxl.layout.MetaEntry;
import io.weft.cxl.layout.Records;
import io.weft.cxl.layout.RegionGeometry;
import io.weft.cxl.layout.RegionHeader;
import io.weft.testkit.ManuallyCompletedBlockDevice;
import io.weft.testkit.RecordingBlockDevice;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Heartbeats and dead detection, clearing, force stop, and replay after a backend restart. */
class LifecycleTest {
    private static final Duration WAIT = Duration.ofSeconds(10);
    private static final DeviceInfo INFO = new DeviceInfo(1 << 20, 512, 4096, 1 << 20, false, true, true, false,
            false, false, false, true);
    private Path regionPath;
    private Path storePath;
    private CxlRegion region;
    private CxlHost host;

    @BeforeEach
    void setUp() throws Exception {
        regionPath = TestSupport.shmPath("life");
        storePath = TestSupport.shmPath("life-store");
        region = CxlRegion.format(regionPath, RegionGeometry.small(), RegionHeader.FLAG_ENTRY_CRC);
        host = CxlHost.register(region, 1, "node-1", TestSupport.fastOptions());
    }

    @AfterEach
    void tearDown() {
        if (region != null) {
            region.close(); // also closes the host
        }
        TestSupport.deleteQuietly(regionPath, storePath);
    }

    @Test
    void livenessUsesOnlyTheObserversMonotonicClock() {
        LivenessTracker t = new LivenessTracker(2, 1_000);
        assertFalse(t.isDead(0, 0), "never observed: not known dead");
        t.observe(0, 5, 10_000);
        assertFalse(t.isDead(0, 10_999));
        assertTrue(t.isDead(0, 11_000));
        t.observe(0, 6, 11_500); // it moved: alive again
        assertFalse(t.isDead(0, 12_000));
        assertEquals(500, t.silentForNs(0, 12_000));
        t.observe(0, 6, 20_000); // same value again: still counting from the last change
        assertTrue(t.isDead(0, 20_000));
        t.reset(0);
        assertFalse(t.isDead(0, 99_999));
        assertEquals(-1, t.silentForNs(1, 0));
    }

    @Test
    void aLiveObjectIsNeverClearedAndAStaleOneIsDetectedAndCleared() throws Exception {
        try (CxlHost other = CxlHost.register(region, 2, "node-2", TestSupport.fastOptions())) {
            StoreBlockDevice store = TestSupport.newStore(storePath, 1 << 20);
            CxlBackend backend = host.createBackend(store, "s", BackendOptions.defaults().withChannels(1));
            CxlBlockDevice dev = host.openBlkdev(backend.id(), BlkdevOptions.defaults());
            // Another host watches the live objects past the dead timeout: they stay alive and cannot be cleared.
            Duration beyondTimeout = TestSupport.fastOptions().deadTimeout().multipliedBy(2);
            long until = System.nanoTime() + beyondTimeout.toNanos();
            await("two dead timeouts of observation", WAIT, () -> System.nanoTime() > until);
            assertTrue(other.isAlive(Table.BLKDEV, dev.id()));
            assertTrue(other.isAlive(Table.BACKEND, backend.id()));
            assertTrue(other.isAlive(Table.HOST, host.slot()));
            assertThrows(IllegalStateException.class, () -> other.clearDead(Table.BLKDEV, dev.id()));
            assertThrows(IllegalStateException.class, () -> other.clearDead(Table.BACKEND, backend.id()));
            assertThrows(IllegalStateException.class, () -> other.clearDead(Table.HOST, host.slot()));
            // The same node id cannot register twice while its first registration is alive.
            assertThrows(IllegalStateException.class,
                    () -> CxlHost.register(region, 1, "impostor", TestSupport.fastOptions()));

            // A host entry whose owner vanished without a goodbye: claimed, recorded, never beating.
            int stale = -1;
            for (int s = 0; s < region.geometry().maxHosts() && stale < 0; s++) {
                if (region.entry(Table.HOST, s).casClaim(0, 0x5EED)) {
                    stale = s;
                }
            }
            MetaEntry e = region.entry(Table.HOST, stale);
            UnsafeBuffer body = new UnsafeBuffer(new byte[MetaEntry.BODY_SIZE]);
            body.putLong(Records.HOST_NODE_ID, 99);
            e.write(body);
            int staleSlot = stale;
            await("stale host detected", WAIT, () -> other.isDead(Table.HOST, staleSlot));
            assertTrue(other.status().hosts().stream().anyMatch(h -> h.slot() == staleSlot && !h.alive()));
            other.clearDead(Table.HOST, staleSlot);
            assertEquals(0, region.entry(Table.HOST, staleSlot).claim());
            dev.close();
            backend.close();
        }
    }

    /**
     * A restarted node finds its dead predecessor's host entry and watches it for a dead timeout; a peer's janitor
     * clears that entry meanwhile. The restart must take a free slot, not mistake the cleared entry for a live twin.
     */
    @Test
    void aRestartedHostWhosePredecessorIsClearedWhileItWatchesRegistersInAFreeSlot() throws Exception {
        int staleSlot = staleHostEntry(42, 0);
        await("stale host detected", WAIT, () -> host.isDead(Table.HOST, staleSlot));
        CompletableFuture<CxlHost> restarted = registerWhenWatching(42);
        host.clearDead(Table.HOST, staleSlot);
        try (CxlHost h = restarted.get(10, TimeUnit.SECONDS)) {
            assertEquals(42, h.nodeId());
        }
    }

    /**
     * The janitor clears a dead entry in two steps: it wipes the records (heartbeat back to 0), then releases the
     * claim. A restart watching the entry between the two steps must not take the wipe for a live twin's beat.
     */
    @Test
    void aRestartedHostSeeingItsPredecessorWipedButStillClaimedRegistersInAFreeSlot() throws Exception {
        MetaEntry staleEntry = region.entry(Table.HOST, staleHostEntry(43, 2));
        CompletableFuture<CxlHost> restarted = registerWhenWatching(43);
        staleEntry.wipeRecords(); // the janitor's first step; its claim release has not happened yet
        try (CxlHost h = restarted.get(10, TimeUnit.SECONDS)) {
            assertEquals(43, h.nodeId());
        }
        staleEntry.casClaim(STALE_CLAIM, 0);
    }

    /**
     * A janitor revokes the dead predecessor's claim (first step of a clear) while a restart watches it, and is still
     * in its grace period when the watch ends: the restart must take a free slot, not fail on the revoked claim.
     */
    @Test
    void aRestartedHostSeeingItsPredecessorRevokedRegistersInAFreeSlot() throws Exception {
        int staleSlot = staleHostEntry(44, 0);
        MetaEntry staleEntry = region.entry(Table.HOST, staleSlot);
        CompletableFuture<CxlHost> restarted = registerWhenWatching(44);
        assertTrue(staleEntry.casClaim(STALE_CLAIM, MetaEntry.CLAIM_REVOKED)); // a janitor's step 1
        try (CxlHost h = restarted.get(10, TimeUnit.SECONDS)) {
            assertEquals(44, h.nodeId());
            assertTrue(h.slot() != staleSlot, "took a free slot, not the entry being cleared");
        }
        staleEntry.wipeRecords();
        staleEntry.casClaim(MetaEntry.CLAIM_REVOKED, 0);
    }

    private static final long STALE_CLAIM = 0x5EED;

    /** A dead predecessor's host entry for {@code nodeId} that had beaten {@code beats} times. @return its slot */
    private int staleHostEntry(long nodeId, int beats) {
        for (int s = 0; s < region.geometry().maxHosts(); s++) {
            MetaEntry e = region.entry(Table.HOST, s);
            if (e.casClaim(0, STALE_CLAIM)) {
                UnsafeBuffer body = new UnsafeBuffer(new byte[MetaEntry.BODY_SIZE]);
                body.putLong(Records.HOST_NODE_ID, nodeId);
                e.write(body);
                for (int b = 0; b < beats; b++) {
                    e.beat();
                }
                return s;
            }
        }
        throw new IllegalStateException("no free host slot");
    }

    /** Registers {@code nodeId} on another thread; returns once it sleeps watching the stale entry's heartbeat. */
    private CompletableFuture<CxlHost> registerWhenWatching(long nodeId) {
        CompletableFuture<CxlHost> restarted = new CompletableFuture<>();
        Thread registering = new Thread(() -> {
            try {
                restarted.complete(CxlHost.register(region, nodeId, "restarted", TestSupport.fastOptions()));
            } catch (Throwable t) {
                restarted.completeExceptionally(t);
            }
        }, "registering");
        registering.start();
        await("register watching the stale entry", WAIT,
                () -> registering.getState() == Thread.State.TIMED_WAITING || restarted.isDone());
        return restarted;
    }

    @Test
    void forceStopCompletesInFlightWithEioExactlyOnceAndTheBackendServesTheNextBlkdev() {
        ManuallyCompletedBlockDevice holding = new ManuallyCompletedBlockDevice(INFO);
        CxlBackend backend = host.createBackend(holding, "held", BackendOptions.defaults().withChannels(1));
        CxlBlockDevice dev = host.openBlkdev(backend.id(), BlkdevOptions.defaults());
        ConcurrentLinkedQueue<String> completions = new ConcurrentLinkedQueue<>();
        ByteBuffer[] buffers = new ByteBuffer[5];
        for (int i = 0; i < 5; i++) {
            buffers[i] = ByteBuffer.allocateDirect(4096);
            dev.submit(IoOp.READ, i * 4096L, 4096, 0, buffers[i], i, (tag, status) -> {
                poison(buffers[(int) tag]);
                completions.add(tag + ":" + IoStatus.name(status));
            });
        }
        await("5 requests held by the store", WAIT, () -> holding.held() == 5);
        assertEquals(5, dev.inFlight());
        dev.forceStop();
        assertEquals(List.of("0:EIO", "1:EIO", "2:EIO", "3:EIO", "4:EIO"), List.copyOf(completions));
        assertEquals(IoStatus.EIO, SyncIo.run(dev, IoOp.READ, 0, 4096, 0, ByteBuffer.allocateDirect(4096)));
        assertTrue(host.status().blkdevs().isEmpty(), "the blkdev entry is released");
        // The store finishes late: the backend completes into the ring, but nobody is called twice and no late
        // payload reaches a buffer whose completion already ran.
        holding.releaseAllFilled((byte) 0x5A);
        int seg = backend.segmentIds()[0];
        await("late completions published", WAIT, () -> region.channel(seg).completionTail() == 5);
        assertEquals(5, completions.size());
        for (ByteBuffer b : buffers) {
            assertPoisoned(b);
        }
        // The channel is free again: a new blkdev opens it and does IO.
        CxlBlockDevice next = host.openBlkdev(backend.id(), BlkdevOptions.defaults());
        ConcurrentLinkedQueue<Integer> statuses = new ConcurrentLinkedQueue<>();
        next.submit(IoOp.READ, 0, 4096, 0, ByteBuffer.allocateDirect(4096), 9, (t, s) -> statuses.add(s));
        await("held again", WAIT, () -> holding.held() == 1);
        holding.releaseAll(IoStatus.OK);
        await("completed", WAIT, () -> statuses.size() == 1);
        assertEquals(IoStatus.OK, statuses.peek());
        next.close();
        backend.close();
    }

    @Test
    void aRequestThatNeverCompletesFailsWithEtimedoutAfterTheIoTimeout() throws Exception {
        CxlOptions shortIo = TestSupport.fastOptions().withIoTimeout(Duration.ofSeconds(1));
        try (CxlHost impatient = CxlHost.register(region, 5, "impatient", shortIo)) {
            ManuallyCompletedBlockDevice holding = new ManuallyCompletedBlockDevice(INFO);
            CxlBackend backend = host.createBackend(holding, "held", BackendOptions.defaults().withChannels(1));
            CxlBlockDevice dev = impatient.openBlkdev(backend.id(), BlkdevOptions.defaults());
            ConcurrentLinkedQueue<Integer> statuses = new ConcurrentLinkedQueue<>();
            ByteBuffer buffer = ByteBuffer.allocateDirect(4096);
            dev.submit(IoOp.READ, 0, 4096, 0, buffer, 1, (t, s) -> {
                poison(buffer);
                statuses.add(s);
            });
            await("request timed out", WAIT, () -> !statuses.isEmpty());
            assertEquals(IoStatus.ETIMEDOUT, statuses.peek());
            assertTrue(dev.failures().get(0).startsWith("ETIMEDOUT"), dev.failures().toString());
            dev.close();
            holding.releaseAllFilled((byte) 0x5A);
            int seg = backend.segmentIds()[0];
            await("late completion published", WAIT, () -> region.channel(seg).completionTail() == 1);
            assertEquals(1, statuses.size());
            assertPoisoned(buffer);
            backend.close();
        }
    }

    private static void poison(ByteBuffer b) {
        for (int i = 0; i < b.capacity(); i++) {
            b.put(i, (byte) 0xEE);
        }
    }

    private static void assertPoisoned(ByteBuffer b) {
        for (int i = 0; i < b.capacity(); i++) {
            assertEquals((byte) 0xEE, b.get(i), "byte " + i + " written after the request's completion ran");
        }
    }

    @Test
    void aRestartedHandlerReplaysPendingRequestsButNeverReappliesOnesMarkedDone() throws Exception {
        StoreBlockDevice store = TestSupport.newStore(storePath, 1 << 20);
        RecordingBlockDevice device = new RecordingBlockDevice(store);
        ChannelSegment seg = region.channel(0);
        seg.initialise(0, 0, ChannelLayout.FLAG_ENTRY_CRC | ChannelLayout.FLAG_DATA_CRC);
        long clientToken = 0xC11E;
        long backendToken = 0xBAC0;
        assertTrue(seg.casClientClaim(0, clientToken));
        MetaEntry segEntry = region.entry(Table.SEGMENT, 0);
        assertTrue(segEntry.casClaim(0, backendToken));
        ClientChannel client = new ClientChannel(seg, clientToken, System.nanoTime());
        ConcurrentLinkedQueue<String> completions = new ConcurrentLinkedQueue<>();
        ByteBuffer[] payloads = new ByteBuffer[3];
        for (int i = 0; i < 3; i++) {
            payloads[i] = ByteBuffer.allocateDirect(4096);
            Pattern.fill(payloads[i], 0, i, 1);
            assertEquals(-1, client.submit(IoOp.WRITE, i * 4096L, 4096, 0, payloads[i], i,
                    (tag, status) -> completions.add(tag + ":" + IoStatus.name(status))));
        }
        // The previous backend applied request 1 and wrote its DONE mark, then died before publishing the completion.
        assertEquals(IoStatus.OK, store.execute(IoOp.WRITE, 0, 4096, 0, payloads[0].duplicate().clear()));
        seg.control.putLongRelease(ChannelLayout.DONE_MARKS, ChannelLayout.doneMark(1, IoStatus.OK));

        ChannelHandler restarted = new ChannelHandler(seg, segEntry, backendToken, device, 1_000_000);
        restarted.attach();
        long beat = 1_000_000_000L;
        for (int i = 0; i < 1000 && seg.completionTail() < 3; i++) {
            restarted.doWork(beat += 1000);
        }
        assertEquals(3, seg.completionTail());
        assertEquals(List.of("WRITE@4096+4096/0", "WRITE@8192+4096/0"), List.copyOf(device.requests()),
                "request 1 was not applied again; 2 and 3 were applied once");
        long now = System.nanoTime();
        for (int i = 0; i < 1000 && completions.size() < 3; i++) {
            client.poll(now, Long.MAX_VALUE / 4, Long.MAX_VALUE / 4);
        }
        assertEquals(List.of("0:OK", "1:OK", "2:OK"), List.copyOf(completions));

        // A second restart after everything was completed replays nothing.
        ChannelHandler again = new ChannelHandler(seg, segEntry, backendToken, device, 1_000_000);
        again.attach();
        for (int i = 0; i < 100; i++) {
            again.doWork(beat += 1000);
        }
        assertEquals(2, device.requests().size());
        ByteBuffer back = ByteBuffer.allocateDirect(4096);
        for (int i = 0; i < 3; i++) {
            back.clear();
            assertEquals(IoStatus.OK, store.execute(IoOp.READ, i * 4096L, 4096, 0, back));
            assertEquals(1, Pattern.versionOf(back, 0, i));
        }
    }
}
