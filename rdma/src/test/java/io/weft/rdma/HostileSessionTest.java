package io.weft.rdma;

import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.IoStatus;
import io.weft.core.store.FileBackingStore;
import io.weft.core.store.StoreBlockDevice;
import io.weft.rdma.client.PathSpec;
import io.weft.rdma.client.RdmaClientConfig;
import io.weft.rdma.client.RdmaBlockDevice;
import io.weft.rdma.client.RdmaSession;
import io.weft.rdma.protocol.ConnectData;
import io.weft.rdma.protocol.ControlMessage;
import io.weft.rdma.protocol.Grant;
import io.weft.rdma.server.RdmaServer;
import io.weft.rdma.server.RdmaServerConfig;
import io.weft.rdma.server.ServedDevice;
import io.weft.rdma.verbs.soft.SoftwareProvider;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A hostile client against the storage side's session handshake (soft provider, in process): it knows every name the
 * management API prints (session names, mapping ids, path ids) and may even hold a grant of its own for another
 * device. Every attempt to attach to, fence or exhaust another client's session is refused, the victim's session
 * keeps its path, and the backing files do not change.
 */
class HostileSessionTest {
    private static final long SIZE = 8L << 20;
    /** Another client node, with a legitimate grant of its own for "vol1" only. */
    private static final Grant MALLORY = Grant.issue("mallory", "mallory#7");
    /** A second device of the victim's node (its own mapping capability), opened inside the victim's session. */
    private static final Grant VICTIM_VOL2 = Grant.issue("test-client", "test-client#1");

    @TempDir
    Path dir;
    private final List<AutoCloseable> closeLast = new ArrayList<>();
    private SoftwareProvider provider;
    private RdmaServer server;
    private InetSocketAddress address;

    @AfterEach
    void stop() throws Exception {
        for (int i = closeLast.size() - 1; i >= 0; i--) {
            closeLast.get(i).close();
        }
    }

    private void start(RdmaServerConfig config) throws Exception {
        provider = new SoftwareProvider();
        closeLast.add(provider);
        StoreBlockDevice vol0 = new StoreBlockDevice(FileBackingStore.createSparse(dir.resolve("vol0"), SIZE));
        StoreBlockDevice vol1 = new StoreBlockDevice(FileBackingStore.createSparse(dir.resolve("vol1"), SIZE));
        StoreBlockDevice vol2 = new StoreBlockDevice(FileBackingStore.createSparse(dir.resolve("vol2"), SIZE));
        closeLast.add(vol0);
        closeLast.add(vol1);
        closeLast.add(vol2);
        server = RdmaServer.start(provider, config, Map.of("vol0", new ServedDevice(vol0, TestGrants.GRANT),
                "vol1", new ServedDevice(vol1, MALLORY), "vol2", new ServedDevice(vol2, VICTIM_VOL2)),
                List.of(new InetSocketAddress("127.0.0.1", 0)));
        closeLast.add(server);
        address = server.listenAddresses().get(0);
    }

    private RdmaSession victim() throws IOException {
        RdmaSession s = RdmaSession.open(provider, "victim", "vol0", TestGrants.GRANT, List.of(PathSpec.to(address)),
                RdmaClientConfig.DEFAULTS.withQueueDepth(8));
        closeLast.add(s);
        return s;
    }

    private String disk() throws Exception {
        MessageDigest md = MessageDigest.getInstance("SHA-256");
        md.update(Files.readAllBytes(dir.resolve("vol0")));
        md.update(Files.readAllBytes(dir.resolve("vol1")));
        md.update(Files.readAllBytes(dir.resolve("vol2")));
        return HexFormat.of().formatHex(md.digest());
    }

    private static void assertRefused(ControlMessage m, String what) {
        if (m != null) {
            assertNotEquals(ControlMessage.OPEN_OK, m.type(), what + ": the stranger got the session's token "
                    + Long.toHexString(m.okToken()) + " and pool rkey " + m.okPoolRkey());
        }
    }

    private void assertVictimUntouched(RdmaSession victim, String before) throws Exception {
        assertEquals(before, disk(), "the backing files changed during the attack");
        TestIo.write(victim.device(), 0, TestIo.pattern(0, 1, 4096));
        assertArrayEquals(TestIo.pattern(0, 1, 4096), TestIo.read(victim.device(), 0, 4096));
        assertEquals(0, victim.paths().get(0).reconnects(), "the victim's path was cut: "
                + victim.paths().get(0).lastError());
        List<RdmaServer.SessionStatus> sessions = server.sessions();
        assertEquals(1, sessions.size(), "sessions on the server: " + sessions);
        assertEquals("test-client", sessions.get(0).clientNode());
        assertEquals(1, sessions.get(0).paths(), "the victim's session gained or lost a path: " + sessions);
    }

    @Test
    void attachToAnotherClientsSessionByNameIsRefused() throws Exception {
        start(RdmaServerConfig.DEFAULTS);
        RdmaSession victim = victim();
        String before = disk();
        int pathId = victim.paths().get(0).id();
        // 1. Naming the session and device under its own node name: no grant, refused before any challenge.
        try (RawAdmin a = RawAdmin.connect(address, pathId)) {
            ControlMessage m = a.open("victim", "vol0", "mallory", pathId);
            assertRefused(m, "OPEN under its own name");
            assertEquals(ControlMessage.OPEN_ERR, m.type());
            assertEquals(IoStatus.EPERM, m.errStatus());
        }
        // 2. Claiming to be the victim's node: it is challenged and cannot answer.
        try (RawAdmin a = RawAdmin.connect(address, pathId)) {
            ControlMessage challenge = a.open("victim", "vol0", "test-client", pathId);
            assertEquals(ControlMessage.CHALLENGE, challenge.type());
            ControlMessage m = a.proof(new byte[32]);
            assertRefused(m, "OPEN under the victim's node name");
            assertNull(a.read(), "the connection stays open after a failed proof");
        }
        // 3. With a real grant of its own (for vol1), joining the victim's session by name.
        try (RawAdmin a = RawAdmin.connect(address, pathId)) {
            ControlMessage m = a.openWith(MALLORY, "victim", "vol1", pathId);
            assertRefused(m, "OPEN with its own grant and the victim's session name");
            assertEquals(IoStatus.EPERM, m.errStatus());
            assertTrue(m.errReason(ControlMessage.MAX_LENGTH).contains("another client"), m.errReason(256));
        }
        assertVictimUntouched(victim, before);
    }

    @Test
    void fenceAnotherClientsPathByReusingItsPathIdIsRefused() throws Exception {
        start(RdmaServerConfig.DEFAULTS);
        RdmaSession victim = victim();
        String before = disk();
        int pathId = victim.paths().get(0).id();
        // Reopening the victim's path (which used to close and fence the victim's connections) needs its proof.
        try (RawAdmin a = RawAdmin.connect(address, pathId)) {
            assertRefused(a.openWith(MALLORY, "victim", "vol0", pathId), "reopening the victim's path");
        }
        // FENCE on an authenticated connection of its own session reaches only its own connections.
        try (RawAdmin a = RawAdmin.connect(address, pathId)) {
            ControlMessage ok = a.openWith(MALLORY, "mallory-session", "vol1", pathId);
            assertEquals(ControlMessage.OPEN_OK, ok.type());
            for (int generation = 0; generation < 4; generation++) {
                byte[] fence = new byte[ControlMessage.MAX_LENGTH];
                int len = new ControlMessage().wrap(new org.agrona.concurrent.UnsafeBuffer(fence), 0)
                        .encodeFence(ControlMessage.FENCE, pathId, generation);
                ControlMessage ack = a.sendAndRead(java.util.Arrays.copyOf(fence, len));
                assertEquals(ControlMessage.FENCE_ACK, ack.type());
            }
        }
        // FENCE before the handshake closes the connection.
        try (RawAdmin a = RawAdmin.connect(address, pathId)) {
            byte[] fence = new byte[ControlMessage.MAX_LENGTH];
            int len = new ControlMessage().wrap(new org.agrona.concurrent.UnsafeBuffer(fence), 0)
                    .encodeFence(ControlMessage.FENCE, pathId, 1);
            assertNull(a.sendAndRead(java.util.Arrays.copyOf(fence, len)), "FENCE before authentication answered");
        }
        await("mallory's session closed", RawAdmin.WAIT, () -> server.sessions().size() == 1);
        assertVictimUntouched(victim, before);
    }

    @Test
    void replayOfACapturedHandshakeIsRefused() throws Exception {
        start(RdmaServerConfig.DEFAULTS);
        RdmaSession victim = victim();
        String before = disk();
        int pathId = 5;
        byte[] capturedOpen;
        byte[] capturedProof;
        // A wiretap records one genuine handshake (made here by a raw client holding the victim's grant).
        try (RawAdmin genuine = RawAdmin.connect(address, pathId)) {
            assertEquals(ControlMessage.OPEN_OK, genuine.openWith(TestGrants.GRANT, "victim", "vol0", pathId).type());
            capturedOpen = genuine.sentOpen;
            capturedProof = genuine.sentProof;
        }
        await("the genuine extra path closed", RawAdmin.WAIT, () -> server.sessions().get(0).paths() == 1);
        for (int attempt = 0; attempt < 3; attempt++) {
            try (RawAdmin replay = RawAdmin.connect(address, pathId)) {
                ControlMessage challenge = replay.sendAndRead(capturedOpen);
                assertEquals(ControlMessage.CHALLENGE, challenge.type());
                assertRefused(replay.sendAndRead(capturedProof), "replayed PROOF");
            }
        }
        // Replaying the PROOF alone, without an OPEN, is refused as well.
        try (RawAdmin replay = RawAdmin.connect(address, pathId)) {
            assertRefused(replay.sendAndRead(capturedProof), "PROOF without OPEN");
        }
        assertVictimUntouched(victim, before);
    }

    @Test
    void guessedCapabilitiesAreRefused() throws Exception {
        long seed = Long.getLong("weft.test.seed", System.nanoTime());
        System.out.println("guessedCapabilitiesAreRefused seed=" + seed + " (replay with -Dweft.test.seed=" + seed
                + ")");
        Random random = new Random(seed);
        start(RdmaServerConfig.DEFAULTS);
        RdmaSession victim = victim();
        String before = disk();
        for (int i = 0; i < 20; i++) {
            byte[] guess = new byte[32];
            random.nextBytes(guess);
            if (i == 0) {
                java.util.Arrays.fill(guess, (byte) 0);
            }
            Grant guessed = new Grant("test-client", "test-client#1", guess);
            try (RawAdmin a = RawAdmin.connect(address, 9)) {
                ControlMessage m = a.openWith(guessed, "victim", "vol0", 9);
                assertRefused(m, "guess " + i);
                assertNotNull(m, "expected OPEN_ERR before the close");
                assertEquals(IoStatus.EPERM, m.errStatus());
            }
        }
        // IO connections need the session token revealed only in OPEN_OK: guessed tokens are rejected.
        for (int i = 0; i < 20; i++) {
            try (RawPeer p = RawPeer.connect(address)) {
                RawPeer.Frame f = RawPeer.handshake(p, ConnectData.request(ConnectData.KIND_IO, 0,
                        random.nextLong(), victim.paths().get(0).id(), i));
                assertEquals(RawPeer.REJECT, f.type(), "an IO connection with a guessed token was accepted");
                assertEquals(ConnectData.REJECT_UNKNOWN_SESSION, f.imm());
            }
        }
        // A real client holding a wrong capability refuses the storage side too: its proof does not match.
        IOException e = assertThrows(IOException.class, () -> RdmaSession.open(provider, "wrong", "vol0",
                new Grant("test-client", "test-client#1", new byte[32]), List.of(PathSpec.to(address)),
                RdmaClientConfig.DEFAULTS.withQueueDepth(8)));
        assertTrue(e.getMessage().contains("could not prove"), e.getMessage());
        // The same grant for another incarnation of the client node proves nothing either.
        Grant oldIncarnation = new Grant("test-client", "test-client#0", TestGrants.GRANT.capability());
        try (RawAdmin a = RawAdmin.connect(address, 9)) {
            assertRefused(a.openWith(oldIncarnation, "victim", "vol0", 9), "the previous incarnation's identity");
        }
        assertVictimUntouched(victim, before);
    }

    /**
     * The storage control thread parks until the next admin deadline instead of polling (issue 12): a client that
     * authenticates and then falls silent still loses its path once the heartbeat timeout passes, while a client that
     * keeps sending heartbeats keeps its path meanwhile.
     */
    @Test
    void aClientThatFallsSilentLosesItsPathAndAHeartbeatingOneKeepsIt() throws Exception {
        start(RdmaServerConfig.DEFAULTS.withHeartbeatTimeout(Duration.ofMillis(1000)));
        RdmaSession victim = victim();
        try (RawAdmin silent = RawAdmin.connect(address, 1)) {
            assertEquals(ControlMessage.OPEN_OK, silent.openWith(MALLORY, "quiet", "vol1", 1).type());
            silent.peer.awaitClose(RawAdmin.WAIT); // fails when the connection stays open that long
        }
        // The silent path was closed by its deadline, the heartbeating one (250 ms) never: its path is as it was.
        TestIo.write(victim.device(), 0, TestIo.pattern(0, 1, 4096));
        assertArrayEquals(TestIo.pattern(0, 1, 4096), TestIo.read(victim.device(), 0, 4096));
        assertEquals(0, victim.paths().get(0).reconnects(), "the victim's path was cut: "
                + victim.paths().get(0).lastError());
    }

    @Test
    void manyConnectionsAndSessionsCannotExhaustTheStorageNode() throws Exception {
        start(RdmaServerConfig.DEFAULTS.withPeerLimits(Duration.ofMillis(500), 4, 3, 16L << 20));
        String before = disk();
        // Unauthenticated admin connections from one address: the fifth is rejected at connect.
        List<RawPeer> idle = new ArrayList<>();
        try {
            for (int i = 0; i < 4; i++) {
                RawPeer p = RawPeer.connect(address);
                idle.add(p);
                assertEquals(RawPeer.ACCEPT, RawPeer.handshake(p,
                        ConnectData.request(ConnectData.KIND_ADMIN, 0, 0, i)).type());
            }
            try (RawPeer p = RawPeer.connect(address)) {
                RawPeer.Frame f = RawPeer.handshake(p, ConnectData.request(ConnectData.KIND_ADMIN, 0, 0, 9));
                assertEquals(RawPeer.REJECT, f.type(), "a fifth unauthenticated admin connection was accepted");
                assertEquals(ConnectData.REJECT_BUSY, f.imm());
            }
            // They never authenticate: the handshake deadline closes them, which frees the address's slots.
            for (RawPeer p : idle) {
                p.awaitClose(RawAdmin.WAIT);
            }
        } finally {
            for (RawPeer p : idle) {
                p.close();
            }
        }
        // Without a grant, a hundred OPENs open nothing and hold no memory.
        for (int i = 0; i < 100; i++) {
            try (RawAdmin a = RawAdmin.connect(address, 1)) {
                assertRefused(a.open("flood-" + i, "vol0", "mallory", 1), "flood " + i);
            }
        }
        assertEquals(List.of(), server.sessions());
        // With a grant, a client node gets at most max-sessions-per-client sessions and max-memory-per-client pools.
        List<RawAdmin> held = new ArrayList<>();
        try {
            for (int i = 0; i < 3; i++) {
                RawAdmin a = RawAdmin.connect(address, 1);
                held.add(a);
                assertEquals(ControlMessage.OPEN_OK, a.openWith(MALLORY, "m-" + i, "vol1", 1).type());
            }
            try (RawAdmin a = RawAdmin.connect(address, 1)) {
                ControlMessage m = a.openWith(MALLORY, "m-3", "vol1", 1);
                assertRefused(m, "a fourth session");
                assertEquals(IoStatus.ENOMEM, m.errStatus());
                assertTrue(m.errReason(256).contains("weft.rdma.max-sessions-per-client"), m.errReason(256));
            }
            assertEquals(3, server.sessions().size());
        } finally {
            for (RawAdmin a : held) {
                a.close();
            }
        }
        await("mallory's sessions closed", RawAdmin.WAIT, () -> server.sessions().isEmpty());
        // Memory: 16 MiB per client here; one pool of 8 x 64 KiB fits, a deep one does not.
        try (RawAdmin a = RawAdmin.connect(address, 1)) {
            ControlMessage m = deepOpen(a, MALLORY, "deep", "vol1");
            assertRefused(m, "a pool past the memory limit");
            assertTrue(m.errReason(256).contains("weft.rdma.max-memory-per-client"), m.errReason(256));
        }
        assertEquals(before, disk(), "the backing files changed");
    }

    /** An OPEN asking for 256 chunks of 128 KiB (32 MiB), past a 16 MiB per-client limit. */
    private static ControlMessage deepOpen(RawAdmin a, Grant grant, String session, String device) throws Exception {
        byte[] nonce = io.weft.rdma.protocol.Capability.nonce();
        byte[] b = new byte[ControlMessage.MAX_LENGTH];
        int len = new ControlMessage().wrap(new org.agrona.concurrent.UnsafeBuffer(b), 0).encodeOpen(256, 128 * 1024,
                1, session, device, grant.clientNode(), nonce);
        ControlMessage challenge = a.sendAndRead(java.util.Arrays.copyOf(b, len));
        assertEquals(ControlMessage.CHALLENGE, challenge.type());
        var t = new io.weft.rdma.protocol.Capability.Transcript(nonce, challenge.challengeServerNonce(), session, 1,
                grant.clientNode(), grant.identity(), device);
        return a.proof(io.weft.rdma.protocol.Capability.clientProof(grant, t));
    }

    @Test
    void deviceOpenedWithoutOrWithAWrongCapabilityInsideAValidSessionIsRefused() throws Exception {
        start(RdmaServerConfig.DEFAULTS);
        RdmaSession victim = victim();
        RdmaBlockDevice vol2 = victim.openDevice("vol2", VICTIM_VOL2);
        TestIo.write(vol2, 4096, TestIo.pattern(1, 1, 4096));
        String before = disk();
        int pathId = 6;
        // A connection that joins the victim's session (its owner's credentials) and then opens devices it has no
        // capability for: each is refused with DEVICE_ERR and nothing else changes.
        try (RawAdmin a = RawAdmin.connect(address, pathId)) {
            assertEquals(ControlMessage.OPEN_OK, a.openWith(TestGrants.GRANT, "victim", "vol0", pathId).type());
            Grant guessed = new Grant("test-client", "test-client#1", new byte[32]);
            ControlMessage m = a.openDevice(guessed, "victim", "vol2", 1);
            assertEquals(ControlMessage.DEVICE_ERR, m.type(), "vol2 opened with a guessed capability: id "
                    + (m.type() == ControlMessage.DEVICE_OK ? m.deviceOkId() : -1));
            assertEquals(IoStatus.EPERM, m.deviceErrStatus());
            m = a.openDevice(MALLORY, "victim", "vol1", 2);
            assertEquals(ControlMessage.DEVICE_ERR, m.type(), "another node's device opened in the victim's session");
            assertEquals(IoStatus.EPERM, m.deviceErrStatus());
            m = a.deviceProof(3, new byte[32]);
            assertEquals(ControlMessage.DEVICE_ERR, m.type(), "DEVICE_PROOF without DEVICE_OPEN");
            m = a.openDevice(VICTIM_VOL2, "victim", "vol1", 4);
            assertEquals(ControlMessage.DEVICE_ERR, m.type(), "a capability of one device opened another");
            assertEquals(List.of("vol0", "vol2"), server.sessions().get(0).devices().stream().sorted().toList());
        }
        // The session's client refuses a storage side that cannot prove the device's grant, and keeps its session.
        IOException e = assertThrows(IOException.class, () -> victim.openDevice("vol2",
                new Grant("test-client", "test-client#1", new byte[32])));
        assertTrue(e.getMessage().contains("could not prove"), e.getMessage());
        await("the extra path closed", RawAdmin.WAIT, () -> server.sessions().get(0).paths() == 1);
        assertArrayEquals(TestIo.pattern(1, 1, 4096), TestIo.read(vol2, 4096, 4096), "vol2 disturbed");
        assertVictimUntouched(victim, before);
    }

    @Test
    void peerOfAnotherProtocolVersionIsRefusedWithTheReason() throws Exception {
        start(RdmaServerConfig.DEFAULTS);
        byte[] v1 = ConnectData.request(ConnectData.KIND_ADMIN, 0, 0, 1);
        ByteBuffer.wrap(v1).order(ByteOrder.LITTLE_ENDIAN).putShort(4, (short) 1);
        try (RawPeer p = RawPeer.connect(address)) {
            RawPeer.Frame f = RawPeer.handshake(p, v1);
            assertEquals(RawPeer.REJECT, f.type());
            assertEquals(ConnectData.REJECT_VERSION, f.imm());
        }
        assertTrue(ConnectData.describeReject(ConnectData.REJECT_VERSION).contains("protocol version"));
    }

    private static void assertNull(Object o, String message) {
        org.junit.jupiter.api.Assertions.assertNull(o, message);
    }
}
