package io.weft.actors.storage;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import io.weft.actors.AccessMode;
import io.weft.actors.NodeState;
import io.weft.actors.Reply;
import io.weft.actors.WeftSettings;
import io.weft.actors.protocol.BackendCommand;
import io.weft.actors.protocol.Heartbeat;
import io.weft.actors.protocol.HeartbeatReply;
import io.weft.actors.protocol.LeaseRenewerCommand;
import io.weft.actors.protocol.LeaseUnknown;
import io.weft.actors.protocol.MappingAlive;
import io.weft.actors.protocol.MappingRevoked;
import io.weft.actors.protocol.OpenRefused;
import io.weft.actors.protocol.OpenReply;
import io.weft.actors.protocol.OpenStore;
import io.weft.actors.protocol.SessionCommand;
import io.weft.actors.protocol.StoreInfoChanged;
import io.weft.actors.protocol.StoreOpened;
import io.weft.actors.protocol.UnknownMapping;
import io.weft.actors.transport.Transports;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The backend's rules, driven directly: access modes, owners, leases, resize notifications. */
class BackendActorTest {
    private static ActorTestKit testKit;
    private static WeftSettings settings;

    @BeforeAll
    static void start() {
        testKit = ActorTestKit.create();
        settings = WeftSettings.from(ConfigFactory.parseMap(Map.of(
                "weft.node.name", "unit",
                "weft.storage.mapping-lease", "400ms",
                // The backend opens its store relative to an export root; the test's files live under tmpdir.
                "weft.storage.export-roots", List.of(System.getProperty("java.io.tmpdir"))))
                .withFallback(ConfigFactory.defaultReference()).resolve());
    }

    @AfterAll
    static void stop() {
        testKit.shutdownTestKit();
    }

    @TempDir
    Path tmp;

    private final Transports transports = Transports.of(List.of("inprocess", "control-only"));

    private ActorRef<BackendCommand> backend(NodeState state) throws Exception {
        Path file = Files.write(tmp.resolve("b.img"), new byte[1 << 16]);
        return testKit.spawn(BackendActor.create(file.toRealPath(), settings, state, transports));
    }

    private OpenReply open(ActorRef<BackendCommand> backend, String client, String device,
                                          AccessMode mode, TestProbe<SessionCommand> session) {
        TestProbe<OpenReply> reply = testKit.createTestProbe();
        backend.tell(new BackendActor.OpenMapping(new OpenStore(client, device, "b.img", mode,
                "control-only", session.getRef(), reply.getRef())));
        return reply.receiveMessage();
    }

    @Test
    void modesOwnersAndHeartbeats() throws Exception {
        NodeState state = new NodeState();
        ActorRef<BackendCommand> backend = backend(state);
        TestProbe<SessionCommand> s1 = testKit.createTestProbe();
        TestProbe<SessionCommand> s2 = testKit.createTestProbe();
        var first = assertInstanceOf(StoreOpened.class, open(backend, "n1", "d", AccessMode.RW, s1));
        assertEquals(1 << 16, first.info().size());
        assertFalse(first.info().readOnly());
        assertEquals("control-only", first.endpoint().transport());
        var refused = assertInstanceOf(OpenRefused.class,
                open(backend, "n2", "d", AccessMode.RW, s2));
        assertTrue(refused.permanent());
        // The same owner re-opening (client reconnect) replaces its mapping instead of being refused.
        var again = assertInstanceOf(StoreOpened.class, open(backend, "n1", "d", AccessMode.RW, s1));
        TestProbe<HeartbeatReply> hb = testKit.createTestProbe();
        backend.tell(new Heartbeat(first.mappingId(), hb.getRef()));
        assertInstanceOf(UnknownMapping.class, hb.receiveMessage());
        backend.tell(new Heartbeat(again.mappingId(), hb.getRef()));
        assertInstanceOf(MappingAlive.class, hb.receiveMessage());
        var ro = assertInstanceOf(StoreOpened.class, open(backend, "n2", "r", AccessMode.RO, s2));
        assertTrue(ro.info().readOnly());
        assertEquals(2, state.backends().get(0).snapshot().mappings().size());
    }

    @Test
    void aMappingWithoutHeartbeatsIsReleasedAndItsClientTold() throws Exception {
        NodeState state = new NodeState();
        ActorRef<BackendCommand> backend = backend(state);
        TestProbe<SessionCommand> silent = testKit.createTestProbe();
        var opened = assertInstanceOf(StoreOpened.class,
                open(backend, "n1", "d", AccessMode.RW, silent));
        // Lease is 400 ms in this test; the revocation arrives without anyone sending a heartbeat.
        var revoked = silent.expectMessageClass(MappingRevoked.class, Duration.ofSeconds(5));
        assertEquals(opened.mappingId(), revoked.mappingId());
        assertTrue(revoked.reason().contains("heartbeat"), revoked.reason());
        TestProbe<SessionCommand> next = testKit.createTestProbe();
        assertInstanceOf(StoreOpened.class, open(backend, "n2", "d", AccessMode.RW, next));
    }

    @Test
    void batchedRenewalsKeepEveryNamedMappingAliveAndOneLeftOutExpiresAlone() throws Exception {
        NodeState state = new NodeState();
        ActorRef<BackendCommand> backend = backend(state);
        TestProbe<SessionCommand> s1 = testKit.createTestProbe();
        TestProbe<SessionCommand> s2 = testKit.createTestProbe();
        TestProbe<SessionCommand> s3 = testKit.createTestProbe();
        TestProbe<LeaseRenewerCommand> renewer = testKit.createTestProbe();
        var m1 = assertInstanceOf(StoreOpened.class, open(backend, "n1", "d1", AccessMode.RO, s1));
        var m2 = assertInstanceOf(StoreOpened.class, open(backend, "n1", "d2", AccessMode.RO, s2));
        var m3 = assertInstanceOf(StoreOpened.class, open(backend, "n1", "d3", AccessMode.RO, s3));
        long size = m1.info().size();

        // Renew d1 and d2, never d3, until d3's lease (400 ms here) has run out; the renewed ones stay known.
        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (state.backends().get(0).snapshot().mappings().size() == 3 && System.nanoTime() < deadline) {
            backend.tell(new BackendActor.Renew(m1.mappingId(), size, renewer.getRef()));
            backend.tell(new BackendActor.Renew(m2.mappingId(), size, renewer.getRef()));
            renewer.expectNoMessage(Duration.ofMillis(50)); // no "unknown mapping" for a renewed one
        }
        var revoked = s3.expectMessageClass(MappingRevoked.class, Duration.ofSeconds(5));
        assertEquals(m3.mappingId(), revoked.mappingId());
        assertTrue(revoked.reason().contains("heartbeat"), revoked.reason());
        assertEquals(Set.of(m1.mappingId(), m2.mappingId()), state.backends().get(0).snapshot().mappings().stream()
                .map(NodeState.MappingStatus::mappingId).collect(Collectors.toSet()), "only d3 expired");
        s1.expectNoMessage(Duration.ZERO);
        s2.expectNoMessage(Duration.ZERO);

        // A renewal of a mapping this backend no longer has tells the client's renewer.
        backend.tell(new BackendActor.Renew(m3.mappingId(), size, renewer.getRef()));
        assertEquals(m3.mappingId(), renewer.expectMessageClass(LeaseUnknown.class).mappingId());
        // A client that knows another size (it missed a resize) gets the current geometry.
        backend.tell(new BackendActor.Renew(m1.mappingId(), size / 2, renewer.getRef()));
        assertEquals(size, s1.expectMessageClass(StoreInfoChanged.class).info().size());
    }

    @Test
    void resizeIsPushedToMappedSessionsAndReportedInHeartbeats() throws Exception {
        NodeState state = new NodeState();
        ActorRef<BackendCommand> backend = backend(state);
        TestProbe<SessionCommand> session = testKit.createTestProbe();
        var opened = assertInstanceOf(StoreOpened.class,
                open(backend, "n1", "d", AccessMode.RO, session));
        TestProbe<Reply> reply = testKit.createTestProbe();
        backend.tell(new BackendActor.Resize(1 << 17, reply.getRef()));
        assertTrue(reply.receiveMessage().ok());
        var changed = session.expectMessageClass(StoreInfoChanged.class);
        assertEquals(1 << 17, changed.info().size());
        assertTrue(changed.info().readOnly(), "an ro mapping stays read-only after a resize");
        TestProbe<HeartbeatReply> hb = testKit.createTestProbe();
        backend.tell(new Heartbeat(opened.mappingId(), hb.getRef()));
        assertEquals(1 << 17, ((MappingAlive) hb.receiveMessage()).info().size());
        assertEquals(1 << 17, state.backends().get(0).snapshot().size());
    }

    /**
     * Issue 14: shrinking a backend under a live mapping cuts the device's end off under its client (the client's
     * filesystem still addresses the lost blocks). Refused while anything is mapped; growing stays allowed.
     */
    @Test
    void shrinkingAMappedBackendIsRefusedAndNothingChanges() throws Exception {
        NodeState state = new NodeState();
        ActorRef<BackendCommand> backend = backend(state);
        TestProbe<SessionCommand> session = testKit.createTestProbe();
        assertInstanceOf(StoreOpened.class, open(backend, "n1", "d", AccessMode.RW, session));
        TestProbe<Reply> reply = testKit.createTestProbe();
        backend.tell(new BackendActor.Resize(1 << 15, reply.getRef()));
        Reply refused = reply.receiveMessage();
        assertFalse(refused.ok(), "shrinking a mapped backend must be refused: " + refused.message());
        assertTrue(refused.message().contains("mapped"), refused.message());
        assertEquals(1 << 16, Files.size(tmp.resolve("b.img")), "the file keeps its size");
        assertEquals(1 << 16, state.backends().get(0).snapshot().size());
        session.expectNoMessage(Duration.ofMillis(100));
        backend.tell(new BackendActor.Resize(1 << 17, reply.getRef()));
        assertTrue(reply.receiveMessage().ok(), "growing a mapped backend is fine");
    }

    @Test
    void aStoppedSessionReleasesItsMapping() throws Exception {
        NodeState state = new NodeState();
        ActorRef<BackendCommand> backend = backend(state);
        TestProbe<SessionCommand> session = testKit.createTestProbe();
        assertInstanceOf(StoreOpened.class, open(backend, "n1", "d", AccessMode.RW, session));
        session.stop();
        TestProbe<SessionCommand> next = testKit.createTestProbe();
        next.awaitAssert(Duration.ofSeconds(5), () -> {
            assertInstanceOf(StoreOpened.class, open(backend, "n2", "d", AccessMode.RW, next));
            return null;
        });
    }
}
