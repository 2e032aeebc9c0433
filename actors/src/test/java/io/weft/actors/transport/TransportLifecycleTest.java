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
import io.weft.cxl.CxlBackend;
import io.weft.cxl.CxlRegion;
import io.weft.cxl.layout.RegionGeometry;
import io.weft.cxl.layout.RegionHeader;
import java.lang.reflect.Method;
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
 * its listener (so its ChannelActor replaces it) within the grace period, or at once when the transport's verdict is
 * definite (a CXL backend's heartbeat still past the dead timeout), and a healthy one never does.
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
        return settings(node, "300ms");
    }

    private TransportSettings settings(String node, String channelGrace) {
        TransportSettings s = TransportSettings.from(TestNodes.config(node, List.of("storage"), null, List.of(),
                        Map.of("weft.rdma.provider", "software", "weft.rdma.listen", List.of("127.0.0.1:0"),
                                "weft.transport.channel-grace", channelGrace))
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

    /** {@code CxlBackend.freezeForTest}: its handlers stop, so its heartbeat stands still, as if its process died. */
    private static void freeze(CxlBackend backend, boolean frozen) throws Exception {
        Method hook = CxlBackend.class.getDeclaredMethod("freezeForTest", boolean.class);
        hook.setAccessible(true); // a test hook of the cxl package
        hook.invoke(backend, frozen);
    }

    /**
     * A backend whose heartbeat stands still past weft.cxl.dead-timeout is the region's own, debounced death verdict:
     * the client channel reports it at the watcher's next poll, not a channel-grace (here 60 s, never waited out)
     * later (issue 17: a killed storage process detected within 1 s).
     */
    @Test
    void cxlChannelReportsABackendWhoseHeartbeatStoodStillWithoutWaitingOutTheGrace() throws Exception {
        try (Transports storage = Transports.of(List.of("cxl"), settings("st", "60s"));
             Transports client = Transports.of(List.of("cxl"), settings("cl", "60s"))) {
            CxlTransport.Served served = storage.cxl().serveBackends("m-frozen", device, GRANT);
            AtomicReference<Throwable> failed = new AtomicReference<>();
            MappingChannel channel = client.cxl().connect(new TransportEndpoint("cxl", served.properties()),
                    failed::set);
            ByteBuffer data = ByteBuffer.allocateDirect(4096);
            assertEquals(IoStatus.OK, io(channel.device(), IoOp.WRITE, 0, 4096, data));
            CxlBackend backend = served.backends().get(0);
            freeze(backend, true);
            try {
                await("cxl channel reported failed with its backend's heartbeat still", WAIT,
                        () -> failed.get() != null);
                assertTrue(failed.get().getMessage().contains("heartbeat still"), failed.get().getMessage());
            } finally {
                freeze(backend, false);
                channel.close();
                served.close();
            }
        }
    }

    /**
     * A storage node whose RDMA server is gone (here closed; a killed process the same: its port refuses) cannot come
     * back on this session: once every path's reconnect is refused the channel reports failed at the watcher's next
     * poll, not a channel-grace (60 s, never waited out) later (issue 17).
     */
    @Test
    void rdmaChannelReportsAStorageNodeThatRefusesEveryReconnectWithoutWaitingOutTheGrace() throws Exception {
        try (Transports client = Transports.of(List.of("rdma"), settings("cl", "60s"))) {
            AtomicReference<Throwable> failed = new AtomicReference<>();
            MappingChannel channel;
            try (Transports storage = Transports.of(List.of("rdma"), settings("st", "60s"))) {
                ServedChannel served = storage.get("rdma").acceptor().serve("m-gone", device, GRANT, c -> { });
                channel = client.get("rdma").connector().connect(served.endpoint(), failed::set);
                ByteBuffer data = ByteBuffer.allocateDirect(4096);
                assertEquals(IoStatus.OK, io(channel.device(), IoOp.WRITE, 0, 4096, data));
            } // the storage node's RDMA server closes: its listen port refuses from now on
            try {
                await("rdma channel reported failed with every reconnect refused", WAIT, () -> failed.get() != null);
                assertTrue(failed.get().getMessage().contains("every path refused"), failed.get().getMessage());
            } finally {
                channel.close();
            }
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
