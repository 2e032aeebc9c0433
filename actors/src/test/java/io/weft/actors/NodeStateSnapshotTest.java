package io.weft.actors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.actors.client.QueueingBlockDevice;
import io.weft.core.io.BlockDevice;
import io.weft.core.io.DeviceInfo;
import io.weft.core.stats.IoStats;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/**
 * What publishing state as snapshots buys (issue 16): a published snapshot never changes, a publication replaces it
 * as a whole, and a reader polling while the owner publishes only ever sees combinations the owner published.
 */
class NodeStateSnapshotTest {
    private static final DeviceInfo INFO = new DeviceInfo(1 << 20, 512, 4096, 1 << 16, false, true, true, false,
            true, false, false, true);
    /** At least this many publications, and the owner goes on publishing until the reader has read this often. */
    private static final int ROUNDS = 5_000;

    private static NodeState.DeviceEntry entry(MapSpec spec) {
        return new NodeState.DeviceEntry(new NodeState(), spec,
                new QueueingBlockDevice(INFO, 8, 1_000_000_000L, new IoStats(spec.deviceId())));
    }

    private static NodeState.DeviceEntry singleLeg() {
        return entry(new MapSpec("vol0", "s", "vol0.img", AccessMode.RW, "inprocess"));
    }

    @Test
    void aPublishedSnapshotNeverChangesAndIsReplacedAsAWhole() {
        NodeState.DeviceEntry e = singleLeg();
        DeviceSnapshot mapping = e.snapshot();
        assertEquals(DeviceState.MAPPING, mapping.state());
        assertEquals("inprocess", mapping.transport(), "a new entry starts with the transport it was mapped over");

        DeviceSnapshot lost = e.update(d -> d.withLastError("path lost").withReconnect());
        assertNotSame(mapping, lost);
        assertSame(lost, e.snapshot(), "the publication is what readers get from now on");
        assertEquals("", mapping.lastError(), "the snapshot a reader holds is not touched by a later publication");
        assertEquals(0, mapping.reconnects());
        assertEquals("path lost", lost.lastError());
        assertEquals(1, lost.reconnects());
        assertEquals(mapping.stateSince(), lost.stateSince(), "the state did not change, nor its start");
        assertSame(lost, lost.withState(DeviceState.MAPPING), "publishing the same state is no change");
        DeviceSnapshot ready = e.update(d -> d.withState(DeviceState.READY));
        assertEquals(DeviceState.MAPPING, lost.state());
        assertEquals("path lost", ready.lastError(), "a publication carries every field it did not change");
    }

    @Test
    void theLegListsAreCopiesThatKeepEmptyPositionsAndRefuseChanges() {
        MapSpec.Leg a = new MapSpec.Leg("a", "a.img");
        MapSpec.Leg b = new MapSpec.Leg("b", "b.img");
        NodeState.DeviceEntry e = entry(new MapSpec("m0", "a", "a.img", AccessMode.RW, "inprocess", List.of(a, b)));
        MapSpec.Leg[] positions = {a, null, b};
        NodeState.SessionView[] views = {new NodeState.SessionView("m0", "a"), null,
                new NodeState.SessionView("m0", "b")};
        BlockDevice[] devices = new BlockDevice[3];
        DeviceSnapshot published = e.update(d -> d.withLegs(Arrays.asList(positions), Arrays.asList(views),
                Arrays.asList(devices)));

        positions[0] = null; // the actor goes on changing its own arrays
        views[2] = null;
        assertEquals(Arrays.asList(a, null, b), published.legPositions(), "the published positions are a copy");
        assertEquals("b", published.legSessions().get(2).storageNode);
        assertNull(published.legSessions().get(1), "an empty position stays empty, by index");
        assertEquals(3, published.legDevices().size());
        assertThrows(UnsupportedOperationException.class, () -> published.legPositions().set(0, b));
        assertThrows(UnsupportedOperationException.class, () -> published.legSessions().add(null));
        assertThrows(UnsupportedOperationException.class, () -> published.legDevices().remove(0));
    }

    @Test
    void aSessionViewPublishesItsSnapshotAndTheRenewalApart() {
        NodeState.DeviceEntry e = singleLeg();
        NodeState.SessionView view = e.sessionView;
        SessionSnapshot before = view.snapshot();
        SessionSnapshot connected = view.update(v -> v.withPhase(SessionPhase.CONNECTED).withMappingId("m-1")
                .withStorageAddress("pekko://weft@127.0.0.1:2552").withTransportPaths(2));
        view.leaseRenewed(System.currentTimeMillis());

        assertEquals(SessionPhase.SEARCHING, before.phase(), "the snapshot held before the publication is unchanged");
        assertEquals("", before.mappingId());
        assertSame(connected, view.snapshot());
        assertSame(connected, view.snapshot(), "a renewal is the renewer's own value, not a new session snapshot");
        NodeState.SessionStatus status = e.sessionStatus();
        assertEquals("connected", status.state());
        assertEquals("m-1", status.mappingId());
        assertEquals("pekko://weft@127.0.0.1:2552", status.storageAddress());
        assertTrue(status.lastHeartbeatAgoMillis() >= 0, "renewed: " + status.lastHeartbeatAgoMillis());
    }

    /**
     * The owner (a plain thread standing in for the device actor) publishes n reconnects, the error "path n" and
     * RECONNECTING for odd n, READY for even n; a reader polling the status meanwhile must see those three agree
     * every time. Reading the fields one by one (as before the snapshots) can pair one publication's state with
     * another's error. Each side goes on until the other has done its share, so the two overlap however the threads
     * are scheduled.
     */
    @Test
    void aReaderPollingWhileTheOwnerPublishesSeesOnlyPublishedCombinations() throws Exception {
        NodeState.DeviceEntry e = singleLeg();
        e.update(d -> d.withState(DeviceState.READY).withLastError("path 0"));
        AtomicBoolean done = new AtomicBoolean();
        AtomicLong reads = new AtomicLong();
        AtomicReference<Throwable> ownerFailed = new AtomicReference<>();
        Thread owner = new Thread(() -> {
            try {
                for (int n = 1; n <= ROUNDS || reads.get() < ROUNDS; n++) {
                    String error = "path " + n;
                    DeviceState state = n % 2 == 1 ? DeviceState.RECONNECTING : DeviceState.READY;
                    e.update(d -> d.withReconnect().withLastError(error).withState(state));
                }
            } catch (Throwable t) {
                ownerFailed.set(t);
            } finally {
                done.set(true);
            }
        }, "snapshot-owner");
        owner.start();
        List<String> torn = new ArrayList<>();
        while (!done.get()) {
            NodeState.DeviceStatus status = e.status();
            reads.incrementAndGet();
            long n = status.reconnects();
            String expectedState = n % 2 == 1 ? "reconnecting" : "ready";
            boolean published = status.lastError().equals("path " + n) && status.state().equals(expectedState);
            if (!published && torn.size() < 10) {
                torn.add(n + "/" + status.lastError() + "/" + status.state());
            }
        }
        owner.join();
        assertNull(ownerFailed.get());
        assertEquals(List.of(), torn, "combinations never published, after " + reads + " reads");
        DeviceSnapshot last = e.snapshot();
        assertTrue(last.reconnects() >= ROUNDS, "published " + last.reconnects());
        assertEquals("path " + last.reconnects(), last.lastError());
        assertEquals(last.reconnects() % 2 == 1 ? DeviceState.RECONNECTING : DeviceState.READY, last.state());
    }
}
