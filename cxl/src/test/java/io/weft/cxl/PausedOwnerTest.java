package io.weft.cxl;

import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.DeviceInfo;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.core.store.StoreBlockDevice;
import io.weft.cxl.CxlRegion.Table;
import io.weft.cxl.layout.MetaEntry;
import io.weft.cxl.layout.Records;
import io.weft.cxl.layout.RegionGeometry;
import io.weft.cxl.layout.RegionHeader;
import io.weft.testkit.ManuallyCompletedBlockDevice;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.concurrent.ConcurrentLinkedQueue;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * A process paused longer than the dead timeout (GC, SIGSTOP) is declared dead by a peer, whose janitor clears it and
 * hands its channel segment to a new owner. When the paused process resumes, its next publish must find that it no
 * longer holds its claim: it writes nothing into the reassigned segment and its callers get an error.
 *
 * <p>The pause is modelled in one JVM: the paused side's host agent and handler agents are frozen (they write
 * nothing), and a client opened with an invoker has no thread of its own, so it acts only when the test drives it.
 */
class PausedOwnerTest {
    private static final Duration WAIT = Duration.ofSeconds(15);
    private static final DeviceInfo INFO = new DeviceInfo(1 << 20, 512, 4096, 1 << 20, false, true, true, false,
            false, false, false, true);
    private Path regionPath;
    private Path storePath;
    private CxlRegion region;
    private CxlHost storage;
    private CxlHost client;

    @BeforeEach
    void setUp() throws Exception {
        regionPath = TestSupport.shmPath("paused");
        storePath = TestSupport.shmPath("paused-store");
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
    void aPausedClientDeclaredDeadWritesNothingIntoItsReassignedChannelAndFailsItsRequests() throws Exception {
        StoreBlockDevice store = TestSupport.newStore(storePath, 1 << 20);
        CxlBackend backend = storage.createBackend(store, "s", BackendOptions.defaults().withChannels(1));
        CxlBlockDevice paused = client.openBlkdev(backend.id(), new BlkdevOptions(0, true));
        assertEquals(IoStatus.OK, driven(paused, IoOp.WRITE, 0, pattern((byte) 1)));

        // The client process pauses; the storage node sees its blkdev dead, clears it and opens the channel itself.
        client.freezeForTest(true);
        await("the paused blkdev declared dead", WAIT, () -> storage.isDead(Table.BLKDEV, paused.id()));
        storage.clearDead(Table.BLKDEV, paused.id());
        CxlBlockDevice successor = storage.openBlkdev(backend.id(), new BlkdevOptions(0, true));
        assertEquals(IoStatus.OK, driven(successor, IoOp.WRITE, 4096, pattern((byte) 2)));
        backend.freezeForTest(true); // a quiet segment, so any byte that changes below was written by the paused one
        await("handlers frozen", WAIT, backend::frozenForTest);
        ChannelSegment seg = region.channel(backend.segmentIds()[0]);
        byte[][] before = snapshot(seg);

        // The client resumes where it stopped: it submits and polls as if nothing had happened.
        client.freezeForTest(false);
        ConcurrentLinkedQueue<Integer> statuses = new ConcurrentLinkedQueue<>();
        paused.submit(IoOp.WRITE, 0, 4096, 0, pattern((byte) 3), 1, (tag, status) -> statuses.add(status));
        for (int i = 0; i < 100; i++) {
            paused.invoker().invoke();
        }
        assertUnchanged(before, snapshot(seg), "the resumed client wrote into the channel it no longer holds");
        await("the resumed client's request completes", WAIT, () -> !statuses.isEmpty());
        int status = statuses.peek();
        assertTrue(status == IoStatus.EIO || status == IoStatus.ESHUTDOWN, IoStatus.name(status));
        assertTrue(paused.failures().get(0).contains("claim lost"), paused.failures().toString());

        // More submitters on several threads: each request fails at once; none waits for an index never published.
        int threads = 4;
        int each = 10;
        java.util.concurrent.CountDownLatch done = new java.util.concurrent.CountDownLatch(threads * each);
        java.util.concurrent.atomic.AtomicInteger notFailed = new java.util.concurrent.atomic.AtomicInteger();
        Thread[] submitters = new Thread[threads];
        for (int t = 0; t < threads; t++) {
            submitters[t] = new Thread(() -> {
                for (int i = 0; i < each; i++) {
                    paused.submit(IoOp.WRITE, 8192, 4096, 0, pattern((byte) 4), i, (tag, st) -> {
                        if (st != IoStatus.EIO) {
                            notFailed.incrementAndGet();
                        }
                        done.countDown();
                    });
                }
            }, "resumed-submitter-" + t);
            submitters[t].start();
        }
        assertTrue(done.await(WAIT.toSeconds(), java.util.concurrent.TimeUnit.SECONDS),
                done.getCount() + " requests of the resumed client never completed");
        assertEquals(0, notFailed.get(), "requests of a client that lost its claim completed without EIO");
        assertEquals(0, paused.inFlight());
        assertUnchanged(before, snapshot(seg), "the resumed client's later submitters wrote into the channel");

        // Closing the resumed client touches neither the channel nor the blkdev entry now owned by its successor.
        paused.close();
        assertUnchanged(before, snapshot(seg), "closing the resumed client wrote into the channel");
        assertRecordState(Table.BLKDEV, successor.id(), Records.BLKDEV_STATE);

        // The new owner is unaffected.
        backend.freezeForTest(false);
        ByteBuffer back = ByteBuffer.allocateDirect(4096);
        assertEquals(IoStatus.OK, driven(successor, IoOp.READ, 0, back));
        assertEquals((byte) 1, back.get(100), "block 0 still holds the paused client's acknowledged write");
        successor.close();
        backend.close();
    }

    @Test
    void aPausedBackendDeclaredDeadWritesNothingIntoItsReassignedSegment() throws Exception {
        ManuallyCompletedBlockDevice holding = new ManuallyCompletedBlockDevice(INFO);
        CxlBackend paused = storage.createBackend(holding, "held", BackendOptions.defaults().withChannels(1));
        CxlBlockDevice orphan = client.openBlkdev(paused.id(), new BlkdevOptions(0, true));
        ConcurrentLinkedQueue<Integer> statuses = new ConcurrentLinkedQueue<>();
        ByteBuffer buffer = ByteBuffer.allocateDirect(4096);
        orphan.submit(IoOp.READ, 0, 4096, 0, buffer, 1, (tag, status) -> statuses.add(status));
        await("the READ held by the store", WAIT, () -> holding.held() == 1);

        // The storage process pauses with the READ in its store; the client node declares it dead, clears it and
        // creates a backend of its own, which takes the freed segment.
        storage.freezeForTest(true);
        paused.freezeForTest(true);
        await("handlers frozen", WAIT, paused::frozenForTest);
        await("the paused backend declared dead", WAIT, () -> client.isDead(Table.BACKEND, paused.id()));
        client.clearDead(Table.BACKEND, paused.id());
        StoreBlockDevice store = TestSupport.newStore(storePath, 1 << 20);
        CxlBackend successor = client.createBackend(store, "s", BackendOptions.defaults().withChannels(1));
        assertEquals(paused.segmentIds()[0], successor.segmentIds()[0], "the freed segment was reassigned");
        successor.freezeForTest(true);
        await("successor frozen", WAIT, successor::frozenForTest);
        ChannelSegment seg = region.channel(successor.segmentIds()[0]);
        byte[][] before = snapshot(seg);

        // The storage process resumes and its store finishes the READ (it completes; the zero-copy payload is the
        // store's own business, so it writes nothing here): the handler must not publish into the new owner's rings.
        storage.freezeForTest(false);
        holding.releaseAll(IoStatus.OK);
        long cycles = paused.dutyCyclesForTest();
        paused.freezeForTest(false);
        await("the resumed handler ran duty cycles", WAIT, () -> paused.dutyCyclesForTest() > cycles + 2);
        assertUnchanged(before, snapshot(seg), "the resumed backend wrote into the segment it no longer holds");
        assertTrue(paused.fenceReasons().get(0) != null && paused.fenceReasons().get(0).contains("CLAIM_LOST"),
                "the resumed backend reports the lost claim: " + paused.fenceReasons());

        // The orphaned client's request fails; it too writes nothing into the reassigned segment.
        for (int i = 0; i < 100 && statuses.isEmpty(); i++) {
            orphan.invoker().invoke();
        }
        await("the orphaned READ fails", WAIT, () -> !statuses.isEmpty());
        assertEquals(IoStatus.EIO, (int) statuses.peek());
        assertUnchanged(before, snapshot(seg), "the orphaned client wrote into the reassigned segment");
        orphan.close();
        paused.close();
        assertUnchanged(before, snapshot(seg), "closing the paused side wrote into the reassigned segment");
        assertRecordState(Table.BACKEND, successor.id(), Records.BACKEND_STATE);
        assertRecordState(Table.SEGMENT, successor.segmentIds()[0], Records.SEGMENT_STATE);
        successor.close();
    }

    /** Submits and drives the invoker until the request completes. */
    private static int driven(CxlBlockDevice dev, IoOp op, long offset, ByteBuffer buffer) {
        ConcurrentLinkedQueue<Integer> done = new ConcurrentLinkedQueue<>();
        dev.submit(op, offset, 4096, 0, buffer, 0, (tag, status) -> done.add(status));
        await(op + " completes", WAIT, () -> {
            dev.invoker().invoke();
            return !done.isEmpty();
        });
        return done.peek();
    }

    private static ByteBuffer pattern(byte b) {
        ByteBuffer buf = ByteBuffer.allocateDirect(4096);
        for (int i = 0; i < 4096; i++) {
            buf.put(i, b);
        }
        return buf;
    }

    private static final String[] AREAS = {"control", "submission ring", "completion ring", "data"};

    private static byte[][] snapshot(ChannelSegment seg) {
        UnsafeBuffer[] areas = {seg.control, seg.submissions, seg.completions, seg.data};
        byte[][] out = new byte[areas.length][];
        for (int a = 0; a < areas.length; a++) {
            out[a] = new byte[areas[a].capacity()];
            areas[a].getBytes(0, out[a]);
        }
        return out;
    }

    /** The entry's record is intact and says running (a late writer would have marked it stopped or wiped it). */
    private void assertRecordState(Table table, int slot, int stateField) {
        UnsafeBuffer body = new UnsafeBuffer(new byte[MetaEntry.BODY_SIZE]);
        MetaEntry e = region.entry(table, slot);
        assertTrue(e.claim() != 0 && e.read(body) >= 0, table + " " + slot + " record wiped by the late writer");
        assertEquals(Records.STATE_RUNNING, body.getInt(stateField), table + " " + slot + " record state");
    }

    private static void assertUnchanged(byte[][] before, byte[][] after, String what) {
        for (int a = 0; a < before.length; a++) {
            int at = Arrays.mismatch(before[a], after[a]);
            if (at >= 0) {
                throw new AssertionError(what + ": " + AREAS[a] + " byte " + at + " changed from " + before[a][at]
                        + " to " + after[a][at]);
            }
        }
    }

    /**
     * What a storage node's lease check reads for a cxl mapping (issue 12): when the client of a backend was last
     * heard, by the storage host's own clock. It follows a running client's blkdev heartbeat, stops moving while the
     * client process is paused (its host agent frozen), and knows no client for a backend nobody opened or after the
     * client closed its blkdev.
     */
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
