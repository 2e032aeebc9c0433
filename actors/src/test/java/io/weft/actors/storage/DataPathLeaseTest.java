package io.weft.actors.storage;

import static io.weft.actors.TestNodes.io;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.weft.actors.AccessMode;
import io.weft.actors.NodeState;
import io.weft.actors.TestNodes;
import io.weft.actors.WeftSettings;
import io.weft.actors.protocol.BackendCommand;
import io.weft.actors.protocol.LeaseRenewerCommand;
import io.weft.actors.protocol.MappingRevoked;
import io.weft.actors.protocol.OpenRefused;
import io.weft.actors.protocol.OpenReply;
import io.weft.actors.protocol.OpenStore;
import io.weft.actors.protocol.SessionCommand;
import io.weft.actors.protocol.StoreInfoChanged;
import io.weft.actors.protocol.StoreOpened;
import io.weft.actors.transport.MappingChannel;
import io.weft.actors.transport.TransportSettings;
import io.weft.actors.transport.Transports;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
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
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Leases carried by the data path (issue 12), over the real rdma (software provider, loopback) and cxl (a region in
 * /dev/shm) transports: a backend whose client sends no renewal message at all keeps the mapping while the client's
 * data path heartbeats, and releases it one lease after that data path went silent, granting the rw slot to another
 * client. The client side is a bare transport channel (no renewer), so only the data path can renew.
 */
class DataPathLeaseTest {
    /** Long enough for the client to attach on a loaded machine (until then nothing renews the mapping here). */
    private static final Duration LEASE = Duration.ofSeconds(2);
    @TempDir
    Path tmp;
    private Path region;
    private ActorTestKit testKit;
    private Transports storage;
    private Transports client;
    private WeftSettings settings;

    @BeforeEach
    void setUp() throws Exception {
        region = Path.of("/dev/shm", "weft-lease-test-" + UUID.randomUUID());
        CxlRegion.format(region, RegionGeometry.small(), RegionHeader.FLAG_ENTRY_CRC).close();
        Config st = config("st");
        settings = WeftSettings.from(st);
        storage = Transports.of(List.of("rdma", "cxl"), TransportSettings.from(st));
        client = Transports.of(List.of("rdma", "cxl"), TransportSettings.from(config("cl")));
        testKit = ActorTestKit.create();
    }

    @AfterEach
    void tearDown() throws Exception {
        testKit.shutdownTestKit();
        client.close();
        storage.close();
        Files.deleteIfExists(region);
    }

    private Config config(String node) {
        return TestNodes.config(node, List.of("storage"), tmp, List.of(), Map.of(
                        "weft.rdma.provider", "software",
                        "weft.rdma.listen", List.of("127.0.0.1:0"),
                        "weft.cxl.regions", List.of(region.toString()),
                        "weft.storage.mapping-lease", LEASE.toMillis() + "ms"))
                .withFallback(ConfigFactory.defaultReference()).resolve();
    }

    private static OpenReply open(ActorRef<BackendCommand> backend, String client, String transport,
                                  TestProbe<SessionCommand> session, ActorTestKit kit) {
        TestProbe<OpenReply> reply = kit.createTestProbe();
        backend.tell(new BackendActor.OpenMapping(new OpenStore(client, "d", "v.img", AccessMode.RW, transport,
                session.getRef(), reply.getRef())));
        return reply.receiveMessage(Duration.ofSeconds(10));
    }

    @Test
    void rdmaHeartbeatsKeepTheLeaseAndItsSilenceReleasesTheRwSlot() throws Exception {
        dataPathCarriesTheLease("rdma");
    }

    @Test
    void cxlHeartbeatsKeepTheLeaseAndItsSilenceReleasesTheRwSlot() throws Exception {
        dataPathCarriesTheLease("cxl");
    }

    private void dataPathCarriesTheLease(String transport) throws Exception {
        Path file = Files.write(tmp.resolve("v.img"), new byte[1 << 20]);
        NodeState state = new NodeState();
        ActorRef<BackendCommand> backend = testKit.spawn(BackendActor.create(file.toRealPath(), settings, state,
                storage));
        TestProbe<SessionCommand> first = testKit.createTestProbe();
        var opened = assertInstanceOf(StoreOpened.class, open(backend, "n1", transport, first, testKit));
        assertTrue(opened.leaseByDataPath(), "the open reply tells the client its data path carries the lease");
        MappingChannel channel = client.get(transport).connector().connect(opened.endpoint(), failure -> { });

        // No renewal message is ever sent: three leases long, only the data path's heartbeats renew the mapping.
        first.expectNoMessage(LEASE.multipliedBy(3));
        assertEquals(List.of(opened.mappingId()), state.backends().get(0).snapshot().mappings().stream()
                .map(NodeState.MappingStatus::mappingId).toList(), "the mapping is kept by the data path");
        assertEquals(IoStatus.OK, io(channel.device(), IoOp.WRITE, 0, 4096, ByteBuffer.allocateDirect(4096)));
        TestProbe<SessionCommand> second = testKit.createTestProbe();
        assertInstanceOf(OpenRefused.class, open(backend, "n2", transport, second, testKit),
                "the rw slot stays with the live client");
        // The client's audit (a renewal message) still carries what a renewal does: a size the client missed.
        TestProbe<LeaseRenewerCommand> renewer = testKit.createTestProbe();
        backend.tell(new BackendActor.Renew(opened.mappingId(), opened.info().size() / 2, renewer.getRef()));
        assertEquals(opened.info().size(), first.expectMessageClass(StoreInfoChanged.class).info().size());

        // The data path goes silent: one lease later the mapping is released and its client told.
        channel.close();
        var revoked = first.expectMessageClass(MappingRevoked.class, LEASE.multipliedBy(10));
        assertEquals(opened.mappingId(), revoked.mappingId());
        assertTrue(revoked.reason().contains("heartbeat"), revoked.reason());
        assertInstanceOf(StoreOpened.class, open(backend, "n2", transport, second, testKit),
                "the rw slot goes to another client");
    }
}
