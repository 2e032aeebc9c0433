package io.weft.actors.transport;

import static io.weft.actors.TestNodes.get;
import static io.weft.actors.TestNodes.io;
import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.actors.AccessMode;
import io.weft.actors.DeviceState;
import io.weft.actors.MapSpec;
import io.weft.actors.NodeState;
import io.weft.actors.Reply;
import io.weft.actors.TestNodes;
import io.weft.actors.WeftRuntime;
import io.weft.core.io.BlockDevice;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.cxl.CxlRegion;
import io.weft.cxl.layout.RegionGeometry;
import io.weft.cxl.layout.RegionHeader;
import io.weft.testkit.TestConfig;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import org.apache.pekko.actor.Address;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two nodes in this JVM (two actor systems) moving data over the real cxl transport (a region file in /dev/shm that
 * both attach) and the rdma transport (software provider on loopback, ephemeral ports): map, verified IO, unmap
 * tears the channels down, a storage restart re-creates them and queued IO completes.
 */
class DataTransportsTest {
    private static final MappingGrant GRANT = MappingGrant.issue("client", "client@test#1");
    private static final Duration WAIT = Duration.ofSeconds(20);
    @TempDir
    Path tmp;
    private final List<WeftRuntime> nodes = new ArrayList<>();
    private final List<Path> regions = new ArrayList<>();

    @AfterEach
    void stop() throws Exception {
        for (int i = nodes.size() - 1; i >= 0; i--) {
            nodes.get(i).shutdown();
        }
        for (Path r : regions) {
            Files.deleteIfExists(r);
        }
    }

    private Path region() throws Exception {
        Path p = Path.of("/dev/shm", "weft-transports-test-" + UUID.randomUUID());
        regions.add(p);
        CxlRegion.format(p, RegionGeometry.small(), RegionHeader.FLAG_ENTRY_CRC).close();
        return p;
    }

    private static String hostPort(Address a) {
        return a.host().get() + ":" + a.port().get();
    }

    private WeftRuntime start(String name, String role, Path exports, List<String> seeds, Path region,
                              Map<String, Object> extra) {
        Map<String, Object> m = new HashMap<>();
        m.put("weft.rdma.provider", "software");
        m.put("weft.rdma.listen", List.of("127.0.0.1:0"));
        m.put("weft.cxl.regions", region == null ? List.of() : List.of(region.toString()));
        m.putAll(extra);
        WeftRuntime n = WeftRuntime.start(TestNodes.config(name, List.of(role), exports, seeds, m));
        nodes.add(n);
        return n;
    }

    private static ByteBuffer pattern(int length, int seed) {
        ByteBuffer b = ByteBuffer.allocateDirect(length);
        for (int i = 0; i < length; i++) {
            b.put(i, (byte) (i * 31 + seed));
        }
        return b;
    }

    /** Writes distinct patterns at several offsets and reads each back through the device. */
    private static void verifiedIo(BlockDevice dev, int seed) {
        for (int k = 0; k < 8; k++) {
            long offset = k * 65536L + 4096;
            ByteBuffer out = pattern(16384, seed + k);
            assertEquals(IoStatus.OK, io(dev, IoOp.WRITE, offset, 16384, out), "write " + k);
        }
        for (int k = 0; k < 8; k++) {
            long offset = k * 65536L + 4096;
            ByteBuffer in = ByteBuffer.allocateDirect(16384);
            assertEquals(IoStatus.OK, io(dev, IoOp.READ, offset, 16384, in), "read " + k);
            assertEquals(pattern(16384, seed + k), in, "data read back at " + offset);
        }
    }

    private static void assertFileHolds(Path file, long offset, ByteBuffer expected) throws Exception {
        byte[] all = Files.readAllBytes(file);
        for (int i = 0; i < expected.capacity(); i++) {
            assertEquals(expected.get(i), all[(int) offset + i], "file byte " + (offset + i));
        }
    }

    @Test
    void rdmaMapMovesDataAndUnmapClosesTheSession() throws Exception {
        Path exports = Files.createDirectories(tmp.resolve("exports"));
        WeftRuntime storage = start("st", "storage", exports, List.of(), null, Map.of());
        WeftRuntime client = start("cl", "client", null, List.of(hostPort(storage.clusterAddress())), null, Map.of());
        await("client sees st", WAIT, () -> get(client.storageNodes()).contains("st"));
        assertTrue(get(client.createVolume("st", "r.img", 1 << 20)).ok());
        Reply mapped = get(client.map(new MapSpec("r", "st", "r.img", AccessMode.RW, "rdma")));
        assertTrue(mapped.ok(), mapped.message());
        NodeState.DeviceEntry dev = client.state().device("r");
        assertEquals("rdma", dev.snapshot().transport());
        assertEquals(128 << 10, dev.device.info().maxIoSize(), "limited to the rdma session's max IO");
        verifiedIo(dev.device, 1);
        assertFileHolds(exports.resolve("r.img"), 4096, pattern(16384, 1));
        RdmaTransport served = storage.dataTransports().rdma();
        assertEquals(1, served.serverSessions().size(), "one rdma session on the storage node");

        assertTrue(get(client.unmap("r", false)).ok());
        await("rdma session closed on the storage node", WAIT, () -> served.serverSessions().isEmpty());
    }

    @Test
    void rdmaMappingsOfOneClientShareOneSessionAndUnmapLeavesTheOthers() throws Exception {
        Path exports = Files.createDirectories(tmp.resolve("exports"));
        WeftRuntime storage = start("st", "storage", exports, List.of(), null, Map.of());
        WeftRuntime client = start("cl", "client", null, List.of(hostPort(storage.clusterAddress())), null, Map.of());
        await("client sees st", WAIT, () -> get(client.storageNodes()).contains("st"));
        String[] ids = {"a", "b", "c"};
        for (String id : ids) {
            assertTrue(get(client.createVolume("st", id + ".img", 1 << 20)).ok());
            Reply mapped = get(client.map(new MapSpec(id, "st", id + ".img", AccessMode.RW, "rdma")));
            assertTrue(mapped.ok(), mapped.message());
        }
        RdmaTransport served = storage.dataTransports().rdma();
        assertEquals(1, served.serverSessions().size(), "one rdma session for the client's three mappings: "
                + served.serverSessions());
        assertEquals(3, served.serverSessions().get(0).devices().size());
        assertEquals(1, client.dataTransports().rdma().clientSessions().size(), "one session on the client");
        for (int i = 0; i < ids.length; i++) {
            verifiedIo(client.state().device(ids[i]).device, 10 + i);
            assertFileHolds(exports.resolve(ids[i] + ".img"), 4096, pattern(16384, 10 + i));
        }
        assertTrue(get(client.unmap("b", false)).ok());
        await("b closed in the session", WAIT, () -> served.serverSessions().size() == 1
                && served.serverSessions().get(0).devices().size() == 2);
        verifiedIo(client.state().device("a").device, 20);
        verifiedIo(client.state().device("c").device, 21);
        assertFileHolds(exports.resolve("c.img"), 4096, pattern(16384, 21));
        assertTrue(get(client.unmap("a", false)).ok());
        assertTrue(get(client.unmap("c", false)).ok());
        await("rdma session closed with the last device", WAIT, () -> served.serverSessions().isEmpty());
    }

    /**
     * weft.rdma.tls = on on both nodes (certificates of one cluster CA): the map runs over TLS and moves data; a
     * client node without TLS cannot map from that storage node.
     */
    @Test
    void rdmaMapOverTlsMovesDataAndAPlaintextClientIsRefused() throws Exception {
        io.weft.core.tls.CertificateAuthority ca = io.weft.core.tls.CertificateAuthority.create("test");
        Path certsSt = tmp.resolve("certs-st");
        Path certsCl = tmp.resolve("certs-cl");
        ca.writeNodeLayout(certsSt, "st", List.of());
        ca.writeNodeLayout(certsCl, "cl", List.of());
        Path exports = Files.createDirectories(tmp.resolve("exports"));
        WeftRuntime storage = start("st", "storage", exports, List.of(), null,
                Map.of("weft.rdma.tls", "on", "weft.rdma.tls-certificates", certsSt.toString()));
        WeftRuntime client = start("cl", "client", null, List.of(hostPort(storage.clusterAddress())), null,
                Map.of("weft.rdma.tls", "on", "weft.rdma.tls-certificates", certsCl.toString()));
        await("client sees st", WAIT, () -> get(client.storageNodes()).contains("st"));
        assertTrue(get(client.createVolume("st", "t.img", 1 << 20)).ok());
        Reply mapped = get(client.map(new MapSpec("t", "st", "t.img", AccessMode.RW, "rdma")));
        assertTrue(mapped.ok(), mapped.message());
        NodeState.DeviceEntry dev = client.state().device("t");
        assertEquals("rdma", dev.snapshot().transport());
        verifiedIo(dev.device, 21);
        assertFileHolds(exports.resolve("t.img"), 4096, pattern(16384, 21));
        assertTrue(get(client.unmap("t", false)).ok());

        WeftRuntime plain = start("pl", "client", null, List.of(hostPort(storage.clusterAddress())), null, Map.of());
        await("plain client sees st", WAIT, () -> get(plain.storageNodes()).contains("st"));
        Reply refused = get(plain.map(new MapSpec("p", "st", "t.img", AccessMode.RW, "rdma")));
        assertFalse(refused.ok(), "a plaintext client must not reach a TLS storage node: " + refused.message());
    }

    @Test
    void rdmaTlsSettingsNameTheirKey() throws Exception {
        com.typesafe.config.Config ref = com.typesafe.config.ConfigFactory.defaultReference();
        assertEquals(null, TransportSettings.rdmaTls(ref), "off by default");
        Path empty = Files.createDirectories(tmp.resolve("no-certs"));
        record Case(TestConfig settings, String message) {
        }
        for (Case c : List.of(
                new Case(TestConfig.of("weft.rdma.tls", "maybe"), "weft.rdma.tls: expected off or on"),
                new Case(TestConfig.of("weft.rdma.tls", "on"),
                        "weft.rdma.tls-certificates: weft.rdma.tls = on needs a certificate"),
                new Case(TestConfig.of("weft.rdma.tls", "on").with("weft.rdma.tls-certificates", empty),
                        "weft.rdma.tls-certificates: " + empty.resolve("server-cert.pem")),
                new Case(TestConfig.of("weft.rdma.tls", "on").with("weft.tls.certificates", empty),
                        "weft.tls.certificates: " + empty.resolve("server-cert.pem")))) {
            com.typesafe.config.Config conf = c.settings().overReference();
            String settings = c.settings().build().root().render(com.typesafe.config.ConfigRenderOptions.concise());
            IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(
                    IllegalArgumentException.class, () -> TransportSettings.rdmaTls(conf), settings);
            assertTrue(e.getMessage().startsWith(c.message()), settings + " -> " + e.getMessage());
        }
        Path certs = tmp.resolve("node-certs");
        io.weft.core.tls.CertificateAuthority.create("t").writeNodeLayout(certs, "n", List.of());
        com.typesafe.config.Config on = TestConfig.of("weft.rdma.tls", "on").with("weft.tls.certificates", certs)
                .overReference();
        assertTrue(TransportSettings.rdmaTls(on) != null, "the node's certificates are the default");
    }

    @Test
    void cxlMapMovesDataThroughTheSharedRegionAndUnmapFreesTheBackend() throws Exception {
        Path region = region();
        Path exports = Files.createDirectories(tmp.resolve("exports"));
        WeftRuntime storage = start("st", "storage", exports, List.of(), region, Map.of());
        WeftRuntime client = start("cl", "client", null, List.of(hostPort(storage.clusterAddress())), region,
                Map.of());
        await("client sees st", WAIT, () -> get(client.storageNodes()).contains("st"));
        assertTrue(get(client.createVolume("st", "c.img", 1 << 20)).ok());
        Reply mapped = get(client.map(new MapSpec("c", "st", "c.img", AccessMode.RW, "cxl")));
        assertTrue(mapped.ok(), mapped.message());
        NodeState.DeviceEntry dev = client.state().device("c");
        assertEquals("cxl", dev.snapshot().transport());
        assertEquals(RegionGeometry.small().slotSize(), dev.device.info().maxIoSize(), "limited to the data slot");
        verifiedIo(dev.device, 7);
        assertFileHolds(exports.resolve("c.img"), 4096 + 65536, pattern(16384, 8));
        CxlTransport cxl = storage.dataTransports().cxl();
        assertEquals(1, cxl.hosts().get(0).backends().size(), "one backend in the region");
        assertEquals(1, client.dataTransports().cxl().hosts().get(0).blkdevs().size(), "one blkdev on the client");

        assertTrue(get(client.unmap("c", false)).ok());
        await("backend closed", WAIT, () -> cxl.hosts().get(0).backends().isEmpty());
        await("blkdev closed", WAIT, () -> client.dataTransports().cxl().hosts().get(0).blkdevs().isEmpty());
    }

    /**
     * Issue 12: a map beyond the region's backend table used to retry until map-timeout with "backend table full" in
     * the storage node's log. It must fail at once, naming the region's limits and how to format a larger one.
     */
    @Test
    void cxlMapBeyondTheRegionsBackendTableIsRefusedAtOnceNamingTheLimitAndTheFormatOption() throws Exception {
        Path region = region();
        int backends = RegionGeometry.small().maxBackends();
        Path exports = Files.createDirectories(tmp.resolve("exports"));
        // A long map-timeout: a refusal that only arrives as a timeout would say "timed out after 20000 ms".
        Map<String, Object> slowTimeout = Map.of("weft.client.map-timeout", "20s");
        WeftRuntime storage = start("st", "storage", exports, List.of(), region, Map.of());
        WeftRuntime client = start("cl", "client", null, List.of(hostPort(storage.clusterAddress())), region,
                slowTimeout);
        await("client sees st", WAIT, () -> get(client.storageNodes()).contains("st"));
        for (int i = 0; i <= backends; i++) {
            assertTrue(get(client.createVolume("st", "v" + i + ".img", 1 << 20)).ok());
        }
        for (int i = 0; i < backends; i++) {
            Reply mapped = get(client.map(new MapSpec("v" + i, "st", "v" + i + ".img", AccessMode.RW, "cxl")));
            assertTrue(mapped.ok(), "map " + i + " of " + backends + ": " + mapped.message());
        }
        Reply refused = get(client.map(new MapSpec("v" + backends, "st", "v" + backends + ".img", AccessMode.RW,
                "cxl")));
        assertFalse(refused.ok(), refused.message());
        assertFalse(refused.message().contains("timed out"), "refused at once, not by map-timeout: "
                + refused.message());
        assertTrue(refused.message().contains(backends + " of " + backends + " backends"),
                "names the limit: " + refused.message());
        assertTrue(refused.message().contains("weft cxl format") && refused.message().contains("--backends"),
                "names the format command and option: " + refused.message());
        // The mappings that fit are untouched: the first one still moves data.
        verifiedIo(client.state().device("v0").device, 11);
    }

    @Test
    void cxlMapIsRefusedAtOnceWhenTheNodesShareNoRegion() throws Exception {
        Path exports = Files.createDirectories(tmp.resolve("exports"));
        Files.write(exports.resolve("n.img"), new byte[1 << 16]);
        WeftRuntime storage = start("st", "storage", exports, List.of(), region(), Map.of());
        WeftRuntime client = start("cl", "client", null, List.of(hostPort(storage.clusterAddress())), region(),
                Map.of());
        await("client sees st", WAIT, () -> get(client.storageNodes()).contains("st"));
        Reply refused = get(client.map(new MapSpec("n", "st", "n.img", AccessMode.RW, "cxl")));
        assertFalse(refused.ok());
        assertTrue(refused.message().contains("no region is shared"), refused.message());
    }

    @Test
    void autoPrefersCxlWhenTheSameRegionIsAttachedElseRdma() throws Exception {
        Path shared = region();
        TransportSettings base = TransportSettings.from(TestNodes.config("x", List.of("storage"), null, List.of(),
                Map.of("weft.rdma.provider", "software", "weft.rdma.listen", List.of("127.0.0.1:0")))
                .withFallback(com.typesafe.config.ConfigFactory.defaultReference()));
        Path file = tmp.resolve("a.img");
        Files.write(file, new byte[1 << 20]);
        try (var store = io.weft.core.store.FileBackingStore.open(file, false);
             Transports storageSide = Transports.of(List.of("auto"), with(base, "st", List.of(shared)));
             Transports sameRegion = Transports.of(List.of("auto"), with(base, "c1", List.of(shared)));
             Transports noRegion = Transports.of(List.of("auto"), with(base, "c2", List.of()))) {
            BlockDevice device = new io.weft.core.store.StoreBlockDevice(store);
            ServedChannel served = storageSide.get("auto").acceptor().serve("m1", device, GRANT, c -> { });
            Map<String, String> props = new HashMap<>(served.endpoint().properties());
            assertEquals(InProcessTransport.JVM_ID, props.get("jvm"), "same JVM is offered in-process");
            props.remove("jvm"); // as seen from another JVM
            TransportEndpoint remote = new TransportEndpoint("auto", props);
            try (MappingChannel viaCxl = sameRegion.get("auto").connector().connect(remote, c -> { });
                 MappingChannel viaRdma = noRegion.get("auto").connector().connect(remote, c -> { })) {
                assertEquals("cxl", viaCxl.transportName());
                assertEquals("rdma", viaRdma.transportName());
                verifiedIo(viaCxl.device(), 3);
                verifiedIo(viaRdma.device(), 5);
            }
            served.close();
            assertTrue(storageSide.cxl().hosts().get(0).backends().isEmpty(), "closing frees the cxl backend");
        }
    }

    @Test
    void sameRegionPathButAnotherRegionIdentityIsNotShared() throws Exception {
        Path path = region();
        TransportSettings base = TransportSettings.from(TestNodes.config("x", List.of("storage"), null, List.of(),
                Map.of("weft.rdma.provider", "software", "weft.rdma.listen", List.of("127.0.0.1:0")))
                .withFallback(com.typesafe.config.ConfigFactory.defaultReference()));
        try (Transports storageSide = Transports.of(List.of("auto"), with(base, "st", List.of(path)))) {
            // Replace the file at the same path with a freshly formatted region (another id): not the same memory.
            Files.delete(path);
            CxlRegion.format(path, RegionGeometry.small(), RegionHeader.FLAG_ENTRY_CRC).close();
            try (Transports client = Transports.of(List.of("auto"), with(base, "cl", List.of(path)))) {
                assertFalse(storageSide.cxl().regionIds().equals(client.cxl().regionIds()));
                Path file = tmp.resolve("b.img");
                Files.write(file, new byte[1 << 20]);
                try (var store = io.weft.core.store.FileBackingStore.open(file, false)) {
                    ServedChannel served = storageSide.get("auto").acceptor().serve("m2",
                            new io.weft.core.store.StoreBlockDevice(store), GRANT, c -> { });
                    Map<String, String> props = new HashMap<>(served.endpoint().properties());
                    props.remove("jvm");
                    try (MappingChannel ch = client.get("auto").connector().connect(
                            new TransportEndpoint("auto", props), c -> { })) {
                        assertEquals("rdma", ch.transportName(), "same path, different region: rdma");
                        verifiedIo(ch.device(), 9);
                    }
                    served.close();
                }
            }
        }
    }

    @Test
    void autoStillOffersRdmaWhenTheRegionHasNoFreeChannels() throws Exception {
        Path shared = region();
        TransportSettings base = TransportSettings.from(TestNodes.config("x", List.of("storage"), null, List.of(),
                Map.of("weft.rdma.provider", "software", "weft.rdma.listen", List.of("127.0.0.1:0")))
                .withFallback(com.typesafe.config.ConfigFactory.defaultReference()));
        // Every segment of the small region goes to one mapping, so the second finds none.
        TransportSettings greedy = new TransportSettings("st", base.rdmaProvider(), base.rdmaListen(),
                base.rdmaQueueDepth(), base.rdmaMaxIoSize(), base.rdmaAgents(), base.rdmaHandshakeTimeout(),
                base.rdmaMaxUnauthenticatedPerAddress(), base.rdmaMaxSessionsPerClient(), base.rdmaMaxMemoryPerClient(),
                List.of(shared),
                RegionGeometry.small().segmentCount(), base.cxlHeartbeat(), base.cxlDeadTimeout(), base.channelGrace(),
                base.ioTimeout());
        Path file = tmp.resolve("g.img");
        Files.write(file, new byte[1 << 20]);
        try (var store = io.weft.core.store.FileBackingStore.open(file, false);
             Transports storageSide = Transports.of(List.of("auto"), greedy);
             Transports client = Transports.of(List.of("auto"), with(base, "cl", List.of(shared)))) {
            BlockDevice device = new io.weft.core.store.StoreBlockDevice(store);
            ServedChannel first = storageSide.get("auto").acceptor().serve("g1", device, GRANT, c -> { });
            ServedChannel second = storageSide.get("auto").acceptor().serve("g2", device, GRANT, c -> { });
            assertTrue(first.endpoint().properties().containsKey(CxlTransport.REGIONS), "first gets cxl");
            assertFalse(second.endpoint().properties().containsKey(CxlTransport.REGIONS), "no segments left");
            Map<String, String> props = new HashMap<>(second.endpoint().properties());
            props.remove("jvm");
            try (MappingChannel ch = client.get("auto").connector().connect(new TransportEndpoint("auto", props),
                    c -> { })) {
                assertEquals("rdma", ch.transportName());
                verifiedIo(ch.device(), 13);
            }
            second.close();
            first.close();
        }
    }

    private static TransportSettings with(TransportSettings s, String node, List<Path> regions) {
        return new TransportSettings(node, s.rdmaProvider(), s.rdmaListen(), s.rdmaQueueDepth(), s.rdmaMaxIoSize(),
                s.rdmaAgents(), s.rdmaHandshakeTimeout(),
                s.rdmaMaxUnauthenticatedPerAddress(), s.rdmaMaxSessionsPerClient(), s.rdmaMaxMemoryPerClient(),
                regions, s.cxlChannels(), s.cxlHeartbeat(), s.cxlDeadTimeout(), s.channelGrace(),
                s.ioTimeout());
    }

    @Test
    void rdmaStorageRestartRecreatesTheSessionAndQueuedWritesLand() throws Exception {
        storageRestart("rdma", null);
    }

    @Test
    void cxlStorageRestartRecreatesTheBackendAndQueuedWritesLand() throws Exception {
        storageRestart("cxl", region());
    }

    private void storageRestart(String transport, Path region) throws Exception {
        Path exports = Files.createDirectories(tmp.resolve("exports"));
        Files.write(exports.resolve("w.img"), new byte[1 << 20]);
        WeftRuntime storage = start("st", "storage", exports, List.of(), region, Map.of());
        WeftRuntime client = start("cl", "client", null, List.of(hostPort(storage.clusterAddress())), region,
                Map.of("weft.client.io-timeout", "60s"));
        Reply mapped = get(client.map(new MapSpec("w", "st", "w.img", AccessMode.RW, transport)));
        assertTrue(mapped.ok(), mapped.message());
        NodeState.DeviceEntry dev = client.state().device("w");
        verifiedIo(dev.device, 11);

        storage.shutdown();
        nodes.remove(storage);
        await("device reconnecting", WAIT, () -> dev.snapshot().state() == DeviceState.RECONNECTING);
        ByteBuffer data = pattern(8192, 99);
        CompletableFuture<Integer> write = TestNodes.submit(dev.device, IoOp.WRITE, 3 * 65536, 8192, data);

        WeftRuntime again = start("st", "storage", exports, List.of(hostPort(client.clusterAddress())), region,
                Map.of());
        await("queued write completed after the remap", WAIT, write::isDone);
        assertEquals(IoStatus.OK, write.get());
        assertEquals(DeviceState.READY, dev.snapshot().state());
        assertEquals(transport, dev.snapshot().transport());
        assertFileHolds(exports.resolve("w.img"), 3 * 65536, pattern(8192, 99));
        verifiedIo(dev.device, 21);
        assertTrue(dev.snapshot().reconnects() >= 1);
        assertFalse(again.state().backends().isEmpty());
    }
}
