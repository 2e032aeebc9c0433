package io.weft.actors;

import static io.weft.actors.TestNodes.get;
import static io.weft.actors.TestNodes.io;
import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.core.mirror.LegState;
import io.weft.core.mirror.ResyncProgress;
import io.weft.core.mirror.WriteIntentBitmap;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.apache.pekko.actor.Address;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A mirrored device over two storage nodes, with the client in the same JVM (three actor systems; the in-process
 * data path works between them): one storage node goes away under IO and comes back; only the regions written
 * meanwhile are copied to it.
 */
class MirroredDeviceTest {
    private static final Duration WAIT = Duration.ofSeconds(30);
    private static final int REGION = WriteIntentBitmap.DEFAULT_REGION_SIZE;
    private static final int SIZE = 8 * REGION;
    @TempDir
    Path tmp;
    private WeftRuntime a;
    private Path exportsA;
    private Path exportsB;
    private WeftRuntime b;
    private WeftRuntime client;

    @AfterEach
    void stop() {
        for (WeftRuntime n : new WeftRuntime[] {client, a, b}) {
            if (n != null) {
                n.shutdown();
            }
        }
    }

    private static String hostPort(Address address) {
        return address.host().get() + ":" + address.port().get();
    }

    /**
     * Starts storage node a (the seed) and b, each exporting an {@code m.img} of the given size under
     * {@link #exportsA} / {@link #exportsB}; returns the seed's host:port.
     */
    private String startStorageNodes(int sizeA, int sizeB) throws java.io.IOException {
        exportsA = Files.createDirectories(tmp.resolve("a"));
        exportsB = Files.createDirectories(tmp.resolve("b"));
        Files.write(exportsA.resolve("m.img"), new byte[sizeA]);
        Files.write(exportsB.resolve("m.img"), new byte[sizeB]);
        a = startStorage("a", exportsA, List.of());
        String seed = hostPort(a.clusterAddress());
        b = startStorage("b", exportsB, List.of(seed));
        return seed;
    }

    private static WeftRuntime startStorage(String name, Path exports, List<String> seeds) {
        return WeftRuntime.start(TestNodes.config(name, List.of("storage"), exports, seeds, Map.of()));
    }

    /** Writes {@code length} bytes of a seeded pattern at {@code offset}, checks OK, and records it in the model. */
    private static void write(io.weft.core.io.BlockDevice device, byte[] model, long offset, int length, long seed) {
        byte[] data = new byte[length];
        new Random(seed).nextBytes(data);
        assertEquals(IoStatus.OK, io(device, IoOp.WRITE, offset, length, ByteBuffer.wrap(data)),
                "write at " + offset);
        System.arraycopy(data, 0, model, (int) offset, length);
    }

    private static void verify(io.weft.core.io.BlockDevice device, byte[] model, long offset, int length) {
        ByteBuffer read = ByteBuffer.allocate(length);
        assertEquals(IoStatus.OK, io(device, IoOp.READ, offset, length, read), "read at " + offset);
        byte[] expected = new byte[length];
        System.arraycopy(model, (int) offset, expected, 0, length);
        assertArrayEquals(expected, read.array(), "data at " + offset);
    }

    @Test
    void aStorageNodeLostUnderIoDegradesTheDeviceAndOnlyDirtyRegionsAreResyncedWhenItReturns() throws Exception {
        Path dataDir = Files.createDirectories(tmp.resolve("client-data"));
        String seed = startStorageNodes(SIZE, SIZE);
        client = WeftRuntime.start(TestNodes.config("cl", List.of("client"), null, List.of(seed),
                Map.of("weft.data-dir", dataDir.toString(), "weft.client.io-timeout", "30s")));
        await("client sees both storage nodes", WAIT,
                () -> get(client.storageNodes()).containsAll(List.of("a", "b")));

        Reply mapped = get(client.map(MapSpec.mirrored("m", List.of(new MapSpec.Leg("a", "m.img"),
                new MapSpec.Leg("b", "m.img")), AccessMode.RW, null)));
        assertTrue(mapped.ok(), mapped.message());
        NodeState.DeviceEntry dev = client.state().device("m");
        assertEquals(DeviceState.READY, dev.snapshot().state());
        assertTrue(Files.exists(dataDir.resolve("m.wib")), "the write-intent bitmap lives in the data dir");
        byte[] model = new byte[SIZE];
        for (int r = 0; r < 8; r++) {
            write(dev.device, model, (long) r * REGION + 4096, 64 << 10, r);
        }
        for (int r = 0; r < 8; r++) {
            verify(dev.device, model, (long) r * REGION, REGION);
        }

        // Flushed: every leg holds the writes so far durably, so losing b's node costs only the regions written
        // while it is out (unflushed extents of the activity log would be resynced too: b's node may lose them).
        assertEquals(IoStatus.OK, io(dev.device, IoOp.FLUSH, 0, 0, ByteBuffer.allocate(0)));
        b.shutdown();
        b = null;
        await("device degraded", WAIT, () -> dev.snapshot().state() == DeviceState.DEGRADED);
        // Regions 1, 4 and 6 are written while leg b is out: no EIO, and they are the only dirty regions.
        write(dev.device, model, 1L * REGION, 8192, 101);
        write(dev.device, model, 4L * REGION + 12288, 4096, 104);
        write(dev.device, model, 6L * REGION + REGION - 4096, 4096, 106);
        write(dev.device, model, 1L * REGION + 65536, 4096, 111);
        assertEquals(DeviceState.DEGRADED, dev.snapshot().state());
        assertEquals(LegState.FAILED, dev.snapshot().mirror().legState(1), "leg b dropped by the failed writes");
        assertEquals(3, dev.snapshot().mirror().status().dirtyRegions());
        NodeState.MirrorView degraded = dev.mirrorStatus();
        assertTrue(degraded.degraded());
        assertEquals(List.of("in-sync", "failed"), degraded.legs().stream().map(NodeState.LegView::state).toList());
        verify(dev.device, model, 0, SIZE);

        b = startStorage("b", exportsB, List.of(hostPort(client.clusterAddress())));
        await("device ready again after the resync", WAIT, () -> dev.snapshot().state() == DeviceState.READY);
        ResyncProgress progress = dev.snapshot().mirror().progress();
        assertEquals(1, progress.leg());
        assertFalse(progress.full(), "a returning leg gets a partial resync");
        assertEquals(3, progress.regionsTotal(), "only the dirty regions are copied");
        assertEquals(3, progress.regionsDone());
        assertEquals(3L * REGION, progress.bytesCopied());
        assertEquals(0, dev.snapshot().mirror().status().dirtyRegions());
        NodeState.MirrorView healed = dev.mirrorStatus();
        assertFalse(healed.degraded());
        assertEquals(List.of("in-sync", "in-sync"), healed.legs().stream().map(NodeState.LegView::state).toList());
        assertEquals(100, healed.resync().percent());
        assertEquals(3, healed.resync().regionsTotal());
        String json = new com.fasterxml.jackson.databind.ObjectMapper().writeValueAsString(dev.status());
        assertTrue(json.contains("\"legs\":[{\"index\":0,\"storageNode\":\"a\""), json);

        write(dev.device, model, 2L * REGION, 4096, 202);
        assertEquals(IoStatus.OK, io(dev.device, IoOp.FLUSH, 0, 0, ByteBuffer.allocate(0)));
        verify(dev.device, model, 0, SIZE);
        Reply unmapped = get(client.unmap("m", false));
        assertTrue(unmapped.ok(), unmapped.message());
        byte[] onA = Files.readAllBytes(exportsA.resolve("m.img"));
        byte[] onB = Files.readAllBytes(exportsB.resolve("m.img"));
        assertArrayEquals(model, onA, "leg a holds every acknowledged write");
        assertArrayEquals(onA, onB, "both legs byte-identical");
    }

    @Test
    void aClientRestartedDuringADegradedPeriodKeepsItsBitmapAndResyncsOnlyTheDirtyRegions() throws Exception {
        Path dataDir = Files.createDirectories(tmp.resolve("client-data"));
        Map<String, Object> clientConfig = Map.of("weft.data-dir", dataDir.toString());
        String seed = startStorageNodes(SIZE, SIZE);
        client = WeftRuntime.start(TestNodes.config("cl", List.of("client"), null, List.of(seed), clientConfig));
        await("client sees both storage nodes", WAIT,
                () -> get(client.storageNodes()).containsAll(List.of("a", "b")));
        MapSpec spec = MapSpec.mirrored("m", List.of(new MapSpec.Leg("a", "m.img"), new MapSpec.Leg("b", "m.img")),
                AccessMode.RW, null);
        Reply mapped = get(client.map(spec));
        assertTrue(mapped.ok(), mapped.message());
        NodeState.DeviceEntry dev = client.state().device("m");
        byte[] model = new byte[SIZE];
        write(dev.device, model, 0, 4096, 1);
        write(dev.device, model, 5L * REGION, 4096, 5);

        // Flushed: every leg holds the writes so far durably, so losing b's node costs only the regions written
        // while it is out (unflushed extents of the activity log would be resynced too: b's node may lose them).
        assertEquals(IoStatus.OK, io(dev.device, IoOp.FLUSH, 0, 0, ByteBuffer.allocate(0)));
        b.shutdown();
        b = null;
        await("device degraded", WAIT, () -> dev.snapshot().state() == DeviceState.DEGRADED);
        write(dev.device, model, 2L * REGION, 4096, 22);
        write(dev.device, model, 7L * REGION + 8192, 4096, 77);
        assertEquals(2, dev.snapshot().mirror().status().dirtyRegions());

        client.shutdown(); // the client goes away while leg b is out; its bitmap stays in the data dir
        client = null;
        b = startStorage("b", exportsB, List.of(seed));
        client = WeftRuntime.start(TestNodes.config("cl", List.of("client"), null, List.of(seed), clientConfig));
        await("client sees both storage nodes again", WAIT,
                () -> get(client.storageNodes()).containsAll(List.of("a", "b")));
        Reply remapped = get(client.map(spec));
        assertTrue(remapped.ok(), remapped.message());
        NodeState.DeviceEntry again = client.state().device("m");
        await("device ready after the resync", WAIT, () -> again.snapshot().state() == DeviceState.READY);
        ResyncProgress progress = again.snapshot().mirror().progress();
        assertEquals(1, progress.leg());
        assertFalse(progress.full());
        assertEquals(2, progress.regionsTotal(), "only the regions written while b was out are copied");
        assertEquals(2, progress.regionsDone());
        verify(again.device, model, 0, SIZE);
        Reply unmapped = get(client.unmap("m", false));
        assertTrue(unmapped.ok(), unmapped.message());
        byte[] onA = Files.readAllBytes(exportsA.resolve("m.img"));
        assertArrayEquals(model, onA);
        assertArrayEquals(onA, Files.readAllBytes(exportsB.resolve("m.img")), "both legs byte-identical");
    }

    @Test
    void legsMustBeOnDifferentStorageNodesAndTheSameSize() throws Exception {
        assertThrows(IllegalArgumentException.class, () -> MapSpec.mirrored("x",
                List.of(new MapSpec.Leg("a", "1.img"), new MapSpec.Leg("a", "2.img")), AccessMode.RW, null));
        assertThrows(IllegalArgumentException.class, () -> MapSpec.mirrored("x",
                List.of(new MapSpec.Leg("a", "1.img")), AccessMode.RW, null));
        assertThrows(IllegalArgumentException.class, () -> MapSpec.mirrored("x", List.of(new MapSpec.Leg("a", "1"),
                new MapSpec.Leg("b", "1"), new MapSpec.Leg("c", "1"), new MapSpec.Leg("d", "1")), AccessMode.RW,
                null));
        assertEquals(new MapSpec.Leg("a", "dir/x:y.img"), MapSpec.Leg.parse("a:dir/x:y.img"));

        String seed = startStorageNodes(REGION, 2 * REGION);
        client = WeftRuntime.start(TestNodes.config("cl", List.of("client"), null, List.of(seed),
                Map.of("weft.data-dir", tmp.resolve("client-data").toString())));
        await("client sees both storage nodes", WAIT,
                () -> get(client.storageNodes()).containsAll(List.of("a", "b")));
        Reply refused = get(client.map(MapSpec.mirrored("m", List.of(new MapSpec.Leg("a", "m.img"),
                new MapSpec.Leg("b", "m.img")), AccessMode.RW, null)));
        assertFalse(refused.ok());
        assertTrue(refused.message().contains("differ in size"), refused.message());
        await("refused device removed", WAIT, () -> client.state().device("m") == null);
    }

    @Test
    void aDownedClientNodeKeepsItsMirrorAndExportAndTheNewIncarnationAdoptsAndResyncsIt() throws Exception {
        Path dataDir = Files.createDirectories(tmp.resolve("client-data"));
        String seed = startStorageNodes(SIZE, SIZE);
        RecordingExporter exporter = new RecordingExporter();
        client = WeftRuntime.start(TestNodes.config("cl", List.of("client"), null, List.of(seed),
                Map.of("weft.data-dir", dataDir.toString(), "weft.client.io-timeout", "60s",
                        "weft.node.rejoin.min-backoff", "200ms")), exporter);
        await("client sees both storage nodes", WAIT,
                () -> get(client.storageNodes()).containsAll(List.of("a", "b")));
        Reply mapped = get(client.map(MapSpec.mirrored("m", List.of(new MapSpec.Leg("a", "m.img"),
                new MapSpec.Leg("b", "m.img")), AccessMode.RW, null)));
        assertTrue(mapped.ok(), mapped.message());
        NodeState.DeviceEntry dev = client.state().device("m");
        io.weft.core.mirror.MirrorBlockDevice mirror = dev.snapshot().mirror();
        assertEquals(DeviceState.READY, dev.snapshot().state());
        assertEquals(List.of("export m"), exporter.events);
        assertEquals(1, client.incarnation());

        // The cluster downs the client node (as the split-brain resolver does to a minority).
        a.system().log().info("test: downing the client node");
        org.apache.pekko.cluster.typed.Cluster.get(a.system()).manager()
                .tell(new org.apache.pekko.cluster.typed.Down(client.clusterAddress()));
        await("the client's first incarnation ended", WAIT,
                () -> dev.snapshot().state() == DeviceState.RECONNECTING
                        || dev.snapshot().state() == DeviceState.CLOSED);
        DeviceSnapshot downed = dev.snapshot();
        assertEquals(DeviceState.RECONNECTING, downed.state(),
                "the downed incarnation leaves the mirror running, waiting for its legs (" + downed.lastError() + ")");
        byte[] pattern = new byte[8192];
        new Random(15).nextBytes(pattern);
        long offset = 3L * REGION + 4096;
        java.util.concurrent.CompletableFuture<Integer> write = TestNodes.submit(dev.device, IoOp.WRITE, offset,
                pattern.length, ByteBuffer.wrap(pattern.clone()));

        await("a new incarnation of the client node", WAIT, () -> client.incarnation() == 2);
        await("the write queued across the incarnations completed", WAIT, write::isDone);
        assertEquals(IoStatus.OK, write.get());
        await("mirror ready (every leg in sync) again", WAIT, () -> dev.snapshot().state() == DeviceState.READY);
        assertTrue(client.state().device("m") == dev, "the same device (queue, export) was adopted");
        assertTrue(dev.snapshot().mirror() == mirror, "the same mirror was adopted");
        assertEquals(List.of("export m"), exporter.events, "the export was neither withdrawn nor added again");
        assertFalse(dev.mirrorStatus().degraded());
        assertEquals(IoStatus.OK, io(dev.device, IoOp.FLUSH, 0, 0, ByteBuffer.allocate(0)));
        byte[] onA = Files.readAllBytes(exportsA.resolve("m.img"));
        byte[] onB = Files.readAllBytes(exportsB.resolve("m.img"));
        byte[] written = new byte[pattern.length];
        System.arraycopy(onA, (int) offset, written, 0, pattern.length);
        assertArrayEquals(pattern, written, "the write reached leg a");
        assertArrayEquals(onA, onB, "both legs byte-identical");

        // Management works in the new incarnation: an unmap withdraws the export and closes the mirror.
        Reply unmapped = get(client.unmap("m", false));
        assertTrue(unmapped.ok(), unmapped.message());
        assertEquals(List.of("export m", "unexport m"), exporter.events);
    }

    /** Records what the device actors do to exports: a downing must neither withdraw nor re-add one. */
    private static final class RecordingExporter implements io.weft.actors.client.DeviceExporter {
        final List<String> events = new java.util.concurrent.CopyOnWriteArrayList<>();

        @Override
        public String export(String name, String description, io.weft.core.io.BlockDevice device) {
            events.add("export " + name);
            return "test://" + name;
        }

        @Override
        public void unexport(String name) {
            events.add("unexport " + name);
        }
    }
}
