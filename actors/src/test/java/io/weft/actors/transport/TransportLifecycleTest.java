package io.weft.actors.transport;

import static io.weft.actors.TestNodes.io;
import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.actors.TestNodes;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.core.store.FileBackingStore;
import io.weft.core.store.StoreBlockDevice;
import io.weft.cxl.CxlRegion;
import io.weft.cxl.layout.RegionGeometry;
import io.weft.cxl.layout.RegionHeader;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The transports' own failure reporting, below the actors: a client channel whose storage side stops serving tells
 * its listener (so its ChannelActor replaces it) within the grace period, and a healthy one never does.
 */
class TransportLifecycleTest {
    private static final MappingGrant GRANT = MappingGrant.issue("client", "client@test#1");
    private static final Duration WAIT = Duration.ofSeconds(20);
    @TempDir
    Path tmp;
    private Path region;
    private FileBackingStore store;
    private StoreBlockDevice device;

    @BeforeEach
    void setUp() throws Exception {
        region = Path.of("/dev/shm", "weft-lifecycle-test-" + UUID.randomUUID());
        CxlRegion.format(region, RegionGeometry.small(), RegionHeader.FLAG_ENTRY_CRC).close();
        Path file = tmp.resolve("v.img");
        Files.write(file, new byte[1 << 20]);
        store = FileBackingStore.open(file, false);
        device = new StoreBlockDevice(store);
    }

    @AfterEach
    void tearDown() throws Exception {
        store.close();
        Files.deleteIfExists(region);
    }

    private TransportSettings settings(String node) {
        TransportSettings s = TransportSettings.from(TestNodes.config(node, List.of("storage"), null, List.of(),
                        Map.of("weft.rdma.provider", "software", "weft.rdma.listen", List.of("127.0.0.1:0"),
                                "weft.transport.channel-grace", "300ms"))
                .withFallback(com.typesafe.config.ConfigFactory.defaultReference()));
        return new TransportSettings(node, s.rdmaProvider(), s.rdmaListen(), s.rdmaQueueDepth(), s.rdmaMaxIoSize(),
                s.rdmaAgents(), s.rdmaHandshakeTimeout(),
                s.rdmaMaxUnauthenticatedPerAddress(), s.rdmaMaxSessionsPerClient(), s.rdmaMaxMemoryPerClient(),
                List.of(region), s.cxlChannels(), s.cxlHeartbeat(), s.cxlDeadTimeout(),
                s.channelGrace(), s.ioTimeout());
    }

    @Test
    void rdmaChannelReportsFailureWhenTheStorageStopsServing() throws Exception {
        reportsFailureWhenServingStops("rdma");
    }

    @Test
    void cxlChannelReportsFailureWhenItsBackendCloses() throws Exception {
        reportsFailureWhenServingStops("cxl");
    }

    private void reportsFailureWhenServingStops(String transport) throws Exception {
        try (Transports storage = Transports.of(List.of(transport), settings("st"));
             Transports client = Transports.of(List.of(transport), settings("cl"))) {
            ServedChannel served = storage.get(transport).acceptor().serve("m-" + transport, device, GRANT, c -> { });
            AtomicReference<Throwable> failed = new AtomicReference<>();
            MappingChannel channel = client.get(transport).connector().connect(served.endpoint(), failed::set);
            ByteBuffer data = ByteBuffer.allocateDirect(4096);
            data.put(0, (byte) 7);
            assertEquals(IoStatus.OK, io(channel.device(), IoOp.WRITE, 0, 4096, data));
            // Healthy for several grace periods: no report (polled; a report would be a failure).
            long until = System.nanoTime() + Duration.ofMillis(1500).toNanos();
            while (System.nanoTime() < until) {
                assertNull(failed.get(), "a healthy channel must not report failure");
                assertEquals(IoStatus.OK, io(channel.device(), IoOp.READ, 0, 4096, ByteBuffer.allocateDirect(4096)));
            }
            served.close();
            await(transport + " channel reported failed", WAIT, () -> failed.get() != null);
            int status = io(channel.device(), IoOp.READ, 0, 4096, ByteBuffer.allocateDirect(4096));
            assertTrue(status != IoStatus.OK, "no IO through a channel whose storage side is gone");
            channel.close();
        }
    }

    @Test
    void unknownTransportNamesFailStartUpWithTheKnownOnes() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Transports.of(List.of("carrier-pigeon"), settings("x")));
        assertTrue(e.getMessage().contains("cxl") && e.getMessage().contains("rdma"), e.getMessage());
    }

    @Test
    void aMissingRegionFailsStartUpNamingIt() {
        TransportSettings s = settings("x");
        Path missing = Path.of("/dev/shm", "weft-missing-" + UUID.randomUUID());
        TransportSettings bad = new TransportSettings("x", s.rdmaProvider(), s.rdmaListen(), s.rdmaQueueDepth(),
                s.rdmaMaxIoSize(), s.rdmaAgents(), s.rdmaHandshakeTimeout(),
                s.rdmaMaxUnauthenticatedPerAddress(), s.rdmaMaxSessionsPerClient(), s.rdmaMaxMemoryPerClient(),
                List.of(missing), s.cxlChannels(), s.cxlHeartbeat(),
                s.cxlDeadTimeout(), s.channelGrace(), s.ioTimeout());
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> Transports.of(List.of("cxl"), bad));
        assertTrue(e.getMessage().contains(missing.toString()), e.getMessage());
    }
}
