package io.weft.actors;

import static io.weft.actors.TestNodes.get;
import static io.weft.actors.TestNodes.io;
import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.actors.client.DeviceExporter;
import io.weft.actors.transport.InProcessTransport;
import io.weft.core.io.BlockDevice;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/** One node with both roles: mapping as IBNBD does it, access modes, export roots, resize, unmap, remap. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class SingleNodeTest {
    private static final Duration WAIT = Duration.ofSeconds(15);

    /** One published moment: a path came back and the device is ready again. */
    private static boolean reconnectedAndReady(DeviceSnapshot now) {
        return now.reconnects() >= 1 && now.state() == DeviceState.READY;
    }
    private Path tmp;
    private WeftRuntime node;
    private Path exports;
    private final RecordingExporter exporter = new RecordingExporter();

    /** Stands in for the NBD server: records what is exported; refuses names starting with "noexport". */
    static final class RecordingExporter implements DeviceExporter {
        final Map<String, BlockDevice> exported = new ConcurrentHashMap<>();
        final List<String> events = new CopyOnWriteArrayList<>();

        @Override
        public String export(String name, String description, BlockDevice device) {
            if (name.startsWith("noexport")) {
                throw new IllegalStateException("NBD server not running");
            }
            exported.put(name, device);
            events.add("export " + name);
            return "nbd://test/" + name;
        }

        @Override
        public void unexport(String name) {
            if (exported.remove(name) != null) {
                events.add("unexport " + name);
            }
        }
    }

    @BeforeAll
    void start(@TempDir Path dir) throws Exception {
        tmp = dir;
        exports = Files.createDirectories(tmp.resolve("exports"));
        node = WeftRuntime.start(TestNodes.config("solo", List.of("storage", "client"), exports, List.of(),
                Map.of()), exporter);
        assertEquals("solo", node.nodeName());
        assertTrue(node.awaitUp(Duration.ofSeconds(20)), "node joined itself");
    }

    @AfterAll
    void stop() {
        node.shutdown();
    }

    private Reply createVolume(String name, long size) {
        return get(node.createVolume("solo", name, size));
    }

    private Reply map(String id, String path, AccessMode mode) {
        return get(node.map(new MapSpec(id, "solo", path, mode, null)));
    }

    @Test
    void mapsAVolumeAndMovesDataThroughTheInProcessPath() {
        assertTrue(createVolume("data.img", 1 << 20).ok());
        Reply mapped = map("data", "data.img", AccessMode.RW);
        assertTrue(mapped.ok(), mapped.message());
        NodeState.DeviceEntry e = node.state().device("data");
        assertEquals(DeviceState.READY, e.snapshot().state());
        assertEquals(1 << 20, e.device.info().size());
        assertEquals(InProcessTransport.NAME, e.snapshot().transport());
        ByteBuffer written = ByteBuffer.allocate(4096);
        for (int i = 0; i < 4096; i++) {
            written.put(i, (byte) (i * 7));
        }
        assertEquals(IoStatus.OK, io(e.device, IoOp.WRITE, 65536, 4096, written));
        ByteBuffer read = ByteBuffer.allocate(4096);
        assertEquals(IoStatus.OK, io(e.device, IoOp.READ, 65536, 4096, read));
        assertArrayEquals(written.array(), read.array());
        NodeState.BackendEntry b = node.state().backends().stream()
                .filter(x -> x.path.endsWith("data.img")).findFirst().orElseThrow();
        assertEquals(1, b.snapshot().mappings().size());
        assertEquals("data", b.snapshot().mappings().get(0).deviceId());
        assertTrue(b.stats.snapshot().op(io.weft.core.io.IoOp.WRITE).ops() >= 1);
        assertTrue(get(node.unmap("data", false)).ok());
        await("device gone", WAIT, () -> node.state().device("data") == null);
        await("mapping released", WAIT, () -> b.snapshot().mappings().isEmpty());
    }

    @Test
    void accessModesAreEnforced() {
        assertTrue(createVolume("shared.img", 1 << 20).ok());
        assertTrue(map("w1", "shared.img", AccessMode.RW).ok());
        Reply second = map("w2", "shared.img", AccessMode.RW);
        assertFalse(second.ok());
        assertTrue(second.message().contains("read-write"), second.message());
        await("refused device dropped", WAIT, () -> node.state().device("w2") == null);

        Reply ro = map("r1", "shared.img", AccessMode.RO);
        assertTrue(ro.ok(), ro.message());
        NodeState.DeviceEntry r1 = node.state().device("r1");
        assertTrue(r1.device.info().readOnly());
        assertEquals(IoStatus.EPERM, io(r1.device, IoOp.WRITE, 0, 512, ByteBuffer.allocate(512)));
        assertEquals(IoStatus.OK, io(r1.device, IoOp.READ, 0, 512, ByteBuffer.allocate(512)));

        assertTrue(map("m1", "shared.img", AccessMode.MIGRATION).ok());
        Reply third = map("m2", "shared.img", AccessMode.MIGRATION);
        assertFalse(third.ok(), third.message());

        // Unmapping the rw holder frees its slot for a new writer.
        assertTrue(get(node.unmap("w1", false)).ok());
        await("w1 gone", WAIT, () -> node.state().device("w1") == null);
        Reply again = map("w3", "shared.img", AccessMode.RW);
        assertFalse(again.ok(), "migration still holds a writer slot plus... " + again.message());
        assertTrue(get(node.unmap("m1", true)).ok());
        await("m1 gone", WAIT, () -> node.state().device("m1") == null);
        await("w3 id free", WAIT, () -> node.state().device("w3") == null);
        Reply finally1 = map("w4", "shared.img", AccessMode.RW);
        assertTrue(finally1.ok(), finally1.message());
        for (String id : List.of("r1", "w4")) {
            assertTrue(get(node.unmap(id, false)).ok());
        }
    }

    @Test
    void anImageAnotherProcessHoldsIsNotMappedAndTheReasonSaysLocked() throws Exception {
        assertTrue(createVolume("held.img", 1 << 20).ok());
        // Stands in for another process (a second node on this host, qemu): its own open file, locked read-write.
        try (io.weft.core.store.FileBackingStore other =
                     io.weft.core.store.FileBackingStore.open(exports.resolve("held.img"), false)) {
            Reply refused = map("h1", "held.img", AccessMode.RW);
            assertFalse(refused.ok(), refused.message());
            assertTrue(refused.message().contains("locked"), refused.message());
            await("refused device dropped", WAIT, () -> node.state().device("h1") == null);
        }
        Reply mapped = map("h2", "held.img", AccessMode.RW);
        assertTrue(mapped.ok(), mapped.message());
        assertTrue(get(node.unmap("h2", false)).ok());
    }

    @Test
    void twoPathsToOneImageNeverGiveTwoWriters() throws Exception {
        // A hard link is another path, so another backend, whose own access modes know nothing of the first.
        assertTrue(createVolume("linked.img", 1 << 20).ok());
        Files.createLink(exports.resolve("linked-too.img"), exports.resolve("linked.img"));
        Reply first = map("l1", "linked.img", AccessMode.RW);
        assertTrue(first.ok(), first.message());
        Reply second = map("l2", "linked-too.img", AccessMode.RW);
        assertFalse(second.ok(), second.message());
        assertTrue(second.message().contains("locked"), second.message());
        await("refused device dropped", WAIT, () -> node.state().device("l2") == null);
        assertTrue(get(node.unmap("l1", false)).ok());
    }

    @Test
    void exportRootsAreEnforced() throws Exception {
        Path outside = Files.write(tmp.resolve("outside.img"), new byte[4096]);
        Files.createSymbolicLink(exports.resolve("escape.img"), outside);
        Files.write(exports.resolve("inside.img"), new byte[4096]);
        Reply dotdot = map("x1", "../outside.img", AccessMode.RO);
        assertFalse(dotdot.ok());
        assertTrue(dotdot.message().contains(".."), dotdot.message());
        Reply absolute = map("x2", outside.toString(), AccessMode.RO);
        assertFalse(absolute.ok());
        assertTrue(absolute.message().contains("outside"), absolute.message());
        Reply symlink = map("x3", "escape.img", AccessMode.RO);
        assertFalse(symlink.ok());
        assertTrue(symlink.message().contains("outside"), symlink.message());
        Reply missing = map("x4", "nope.img", AccessMode.RO);
        assertFalse(missing.ok());
        Reply ok = map("x5", "inside.img", AccessMode.RO);
        assertTrue(ok.ok(), ok.message());
        assertFalse(createVolume("../evil.img", 4096).ok());
        assertFalse(Files.exists(tmp.resolve("evil.img")));
        assertTrue(get(node.unmap("x5", true)).ok());
    }

    @Test
    void resizeReachesTheMappedDevice() {
        assertTrue(createVolume("grow.img", 1 << 20).ok());
        assertTrue(map("grow", "grow.img", AccessMode.RW).ok());
        NodeState.DeviceEntry e = node.state().device("grow");
        assertEquals(IoStatus.EOVERFLOW, io(e.device, IoOp.READ, 1 << 20, 512, ByteBuffer.allocate(512)));
        Reply resized = get(node.resize("solo", "grow.img", 2 << 20));
        assertTrue(resized.ok(), resized.message());
        await("client sees new size", WAIT, () -> e.device.info().size() == 2 << 20);
        assertEquals(IoStatus.OK, io(e.device, IoOp.READ, 1 << 20, 512, ByteBuffer.allocate(512)));
        assertFalse(get(node.resize("solo", "grow.img", 1000)).ok(), "unaligned size refused");
        assertTrue(get(node.unmap("grow", false)).ok());
    }

    @Test
    void remapReconnectsAndForceUnmapFailsQueuedIoWithEio() {
        assertTrue(createVolume("remap.img", 1 << 20).ok());
        assertTrue(map("rm", "remap.img", AccessMode.RW).ok());
        NodeState.DeviceEntry e = node.state().device("rm");
        assertTrue(get(node.remap("rm")).ok());
        await("reconnected", WAIT, () -> reconnectedAndReady(e.snapshot()));
        assertEquals(IoStatus.OK, io(e.device, IoOp.READ, 0, 512, ByteBuffer.allocate(512)));

        // Take the path away by hand, queue a request, force-unmap: the request fails with EIO, nothing hangs.
        e.device.disconnect();
        var pending = TestNodes.submit(e.device, IoOp.READ, 0, 512, ByteBuffer.allocate(512));
        assertFalse(pending.isDone());
        Reply forced = get(node.unmap("rm", true));
        assertTrue(forced.ok(), forced.message());
        assertEquals(IoStatus.EIO, TestNodes.get(pending));
        assertEquals(IoStatus.ESHUTDOWN, io(e.device, IoOp.READ, 0, 512, ByteBuffer.allocate(512)));
    }

    @Test
    void theDeviceOwnsItsExport() {
        assertTrue(createVolume("exp.img", 1 << 20).ok());
        Reply mapped = map("exp", "exp.img", AccessMode.RW);
        assertTrue(mapped.ok(), mapped.message());
        assertTrue(mapped.message().contains("nbd://test/exp"), mapped.message());
        NodeState.DeviceEntry e = node.state().device("exp");
        assertTrue(exporter.exported.get("exp") == e.device, "the export serves the queueing device");
        assertEquals("nbd://test/exp", e.status().export());
        // A remap keeps the export (IO just queues meanwhile).
        assertTrue(get(node.remap("exp")).ok());
        await("reconnected", WAIT, () -> reconnectedAndReady(e.snapshot()));
        assertEquals(List.of("export exp"), exporter.events.stream().filter(x -> x.endsWith(" exp")).toList());
        assertTrue(get(node.unmap("exp", false)).ok());
        assertFalse(exporter.exported.containsKey("exp"));
        assertTrue(exporter.events.contains("unexport exp"));

        // An export failure leaves the device mapped and says why.
        assertTrue(map("noexport1", "exp.img", AccessMode.RO).ok());
        NodeState.DeviceEntry ne = node.state().device("noexport1");
        assertEquals(DeviceState.READY, ne.snapshot().state());
        assertTrue(ne.snapshot().exportError().contains("NBD server not running"), ne.snapshot().exportError());
        assertTrue(get(node.unmap("noexport1", true)).ok());
    }

    @Test
    void operationsOnUnknownThingsSayWhat() {
        Reply unmap = get(node.unmap("ghost", false));
        assertFalse(unmap.ok());
        assertTrue(unmap.message().contains("no device"), unmap.message());
        Reply other = get(node.createVolume("nowhere", "v.img", 4096));
        assertFalse(other.ok());
        assertTrue(other.message().contains("not found"), other.message());
        assertNull(node.state().device("ghost"));
        Reply badTransport = get(node.map(new MapSpec("bt", "solo", "x", AccessMode.RO, "carrier-pigeon")));
        assertFalse(badTransport.ok());
        assertTrue(badTransport.message().contains("not enabled"), badTransport.message());
    }
}
