package io.weft.actors;

import static io.weft.actors.TestNodes.get;
import static io.weft.actors.TestNodes.io;
import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import org.apache.pekko.actor.Address;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A storage node and a client node in one cluster (two actor systems in this JVM, so the in-process data path
 * works): the storage node goes away and comes back; the client node goes away.
 */
class TwoNodeTest {
    private static final Duration WAIT = Duration.ofSeconds(20);
    @TempDir
    Path tmp;
    private WeftRuntime storage;
    private WeftRuntime client;
    private WeftRuntime other;

    @AfterEach
    void stop() {
        for (WeftRuntime n : new WeftRuntime[] {client, other, storage}) {
            if (n != null) {
                n.shutdown();
            }
        }
    }

    private static String hostPort(Address a) {
        return a.host().get() + ":" + a.port().get();
    }

    private WeftRuntime startStorage(Path exports, List<String> seeds) {
        return WeftRuntime.start(TestNodes.config("st", List.of("storage"), exports, seeds, Map.of()));
    }

    @Test
    void deviceQueuesThenFailsWithEioWhileStorageIsGoneAndRemapsWhenItReturns() throws Exception {
        Path exports = Files.createDirectories(tmp.resolve("exports"));
        storage = startStorage(exports, List.of());
        String storageSeed = hostPort(storage.clusterAddress());
        client = WeftRuntime.start(TestNodes.config("cl", List.of("client"), null, List.of(storageSeed), Map.of()));
        await("client sees the storage node", WAIT, () -> get(client.storageNodes()).contains("st"));
        assertTrue(get(client.createVolume("st", "v.img", 1 << 20)).ok(), "volume created from the client node");
        Reply mapped = get(client.map(new MapSpec("dev", "st", "v.img", AccessMode.RW, null)));
        assertTrue(mapped.ok(), mapped.message());
        NodeState.DeviceEntry dev = client.state().device("dev");
        ByteBuffer data = ByteBuffer.allocate(512);
        data.put(0, (byte) 42);
        assertEquals(IoStatus.OK, io(dev.device, IoOp.WRITE, 0, 512, data));

        storage.shutdown();
        storage = null;
        await("device reconnecting", WAIT, () -> dev.snapshot().state() == DeviceState.RECONNECTING);
        CompletableFuture<Integer> queued = TestNodes.submit(dev.device, IoOp.READ, 0, 512, ByteBuffer.allocate(512));
        // io-timeout is 1 s in these tests: the request must fail with EIO, not hang and not succeed.
        await("queued IO failed", WAIT, queued::isDone);
        assertEquals(IoStatus.EIO, queued.get());

        storage = startStorage(exports, List.of(hostPort(client.clusterAddress())));
        await("device remapped by itself", WAIT, () -> dev.snapshot().state() == DeviceState.READY);
        assertTrue(dev.snapshot().reconnects() >= 1);
        ByteBuffer read = ByteBuffer.allocate(512);
        assertEquals(IoStatus.OK, io(dev.device, IoOp.READ, 0, 512, read));
        assertEquals(42, read.get(0), "data written before the restart is there");
    }

    @Test
    void ioSubmittedWhileStorageIsGoneCompletesWhenItReturnsWithinTheIoTimeout() throws Exception {
        Path exports = Files.createDirectories(tmp.resolve("exports"));
        Files.write(exports.resolve("w.img"), new byte[1 << 16]);
        storage = startStorage(exports, List.of());
        // A long io-timeout: the storage node's restart must fit inside it.
        client = WeftRuntime.start(TestNodes.config("cl", List.of("client"), null,
                List.of(hostPort(storage.clusterAddress())), Map.of("weft.client.io-timeout", "60s")));
        Reply mapped = get(client.map(new MapSpec("w", "st", "w.img", AccessMode.RW, null)));
        assertTrue(mapped.ok(), mapped.message());
        NodeState.DeviceEntry dev = client.state().device("w");

        storage.shutdown();
        storage = null;
        await("device reconnecting", WAIT, () -> dev.snapshot().state() == DeviceState.RECONNECTING);
        ByteBuffer data = ByteBuffer.allocate(4096);
        for (int i = 0; i < 4096; i++) {
            data.put(i, (byte) (i ^ 0x5a));
        }
        CompletableFuture<Integer> write = TestNodes.submit(dev.device, IoOp.WRITE, 8192, 4096, data);
        assertFalse(write.isDone(), "no path: the write waits");
        assertEquals(1, dev.device.inFlight());

        storage = startStorage(exports, List.of(hostPort(client.clusterAddress())));
        await("queued write completed after the remap", WAIT, write::isDone);
        assertEquals(IoStatus.OK, write.get());
        assertEquals(DeviceState.READY, dev.snapshot().state());
        byte[] onDisk = Files.readAllBytes(exports.resolve("w.img"));
        for (int i = 0; i < 4096; i++) {
            assertEquals((byte) (i ^ 0x5a), onDisk[8192 + i], "byte " + i + " reached the backing file");
        }
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

    @Test
    void aDownedClientNodeKeepsItsDeviceAndExportStartsANewIncarnationAndTheDeviceRemaps() throws Exception {
        Path exports = Files.createDirectories(tmp.resolve("exports"));
        Files.write(exports.resolve("w.img"), new byte[1 << 16]);
        Path dataDir = tmp.resolve("data-cl");
        storage = startStorage(exports, List.of());
        RecordingExporter exporter = new RecordingExporter();
        client = WeftRuntime.start(TestNodes.config("cl", List.of("client"), null,
                List.of(hostPort(storage.clusterAddress())), Map.of("weft.client.io-timeout", "60s",
                        "weft.node.rejoin.min-backoff", "200ms", "weft.data-dir", dataDir.toString())), exporter);
        Reply mapped = get(client.map(new MapSpec("w", "st", "w.img", AccessMode.RW, null)));
        assertTrue(mapped.ok(), mapped.message());
        NodeState.DeviceEntry dev = client.state().device("w");
        assertEquals(List.of("export w"), exporter.events);
        assertEquals(1, client.incarnation());
        List<io.weft.actors.client.DeviceRegistry.Mapping> recorded =
                io.weft.actors.client.DeviceRegistry.read(dataDir.resolve("mappings.json"));
        assertEquals(1, recorded.size(), recorded.toString());
        assertEquals("w", recorded.get(0).id());
        assertEquals("st", recorded.get(0).storageNode());
        assertEquals("test://w", recorded.get(0).export());

        // The cluster downs the client node (as the split-brain resolver does to a minority).
        storage.system().log().info("test: downing the client node");
        org.apache.pekko.cluster.typed.Cluster.get(storage.system()).manager()
                .tell(new org.apache.pekko.cluster.typed.Down(client.clusterAddress()));
        await("the client's first incarnation ended and the device waits for a path", WAIT,
                () -> dev.snapshot().state() == DeviceState.RECONNECTING);
        ByteBuffer data = ByteBuffer.allocate(4096);
        for (int i = 0; i < 4096; i++) {
            data.put(i, (byte) (i ^ 0x3c));
        }
        CompletableFuture<Integer> write = TestNodes.submit(dev.device, IoOp.WRITE, 4096, 4096, data);

        await("a new incarnation of the client node", WAIT, () -> client.incarnation() == 2);
        await("the write queued across the incarnations completed", WAIT, write::isDone);
        assertEquals(IoStatus.OK, write.get());
        await("device ready again", WAIT, () -> dev.snapshot().state() == DeviceState.READY);
        assertTrue(client.state().device("w") == dev, "the same device (queue, export) was adopted");
        assertEquals(List.of("export w"), exporter.events, "the export was neither withdrawn nor added again");
        assertTrue(client.awaitUp(WAIT), "the new incarnation joined the cluster");
        byte[] onDisk = Files.readAllBytes(exports.resolve("w.img"));
        for (int i = 0; i < 4096; i++) {
            assertEquals((byte) (i ^ 0x3c), onDisk[4096 + i], "byte " + i + " reached the backing file");
        }
        // Management works in the new incarnation too: an unmap through it withdraws the export and the record.
        Reply unmapped = get(client.unmap("w", false));
        assertTrue(unmapped.ok(), unmapped.message());
        assertTrue(exporter.events.contains("unexport w"), exporter.events.toString());
        assertEquals(List.of(), io.weft.actors.client.DeviceRegistry.read(dataDir.resolve("mappings.json")));
    }

    @Test
    void aClientNodeThatLeavesReleasesItsRwMapping() throws Exception {
        Path exports = Files.createDirectories(tmp.resolve("exports"));
        Files.write(exports.resolve("v.img"), new byte[1 << 16]);
        storage = startStorage(exports, List.of());
        String seed = hostPort(storage.clusterAddress());
        client = WeftRuntime.start(TestNodes.config("cl", List.of("client"), null, List.of(seed), Map.of()));
        other = WeftRuntime.start(TestNodes.config("cl2", List.of("client"), null, List.of(seed), Map.of()));
        assertTrue(get(client.map(new MapSpec("a", "st", "v.img", AccessMode.RW, null))).ok());
        Reply refused = get(other.map(new MapSpec("b", "st", "v.img", AccessMode.RW, null)));
        assertFalse(refused.ok(), "rw is exclusive across nodes");
        assertTrue(refused.message().contains("cl/a"), refused.message());

        client.shutdown();
        client = null;
        NodeState.BackendEntry backend = storage.state().backends().get(0);
        await("mapping of the departed client released", WAIT, () -> backend.snapshot().mappings().isEmpty());
        await("refused device cleaned up", WAIT, () -> other.state().device("b") == null);
        Reply now = get(other.map(new MapSpec("b", "st", "v.img", AccessMode.RW, null)));
        assertTrue(now.ok(), now.message());
    }
}
