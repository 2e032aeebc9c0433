package io.weft.rdma;

import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.core.store.FileBackingStore;
import io.weft.core.store.StoreBlockDevice;
import io.weft.rdma.client.PathSpec;
import io.weft.rdma.client.RdmaClientConfig;
import io.weft.rdma.client.RdmaSession;
import io.weft.rdma.protocol.Capability;
import io.weft.rdma.protocol.ConnectData;
import io.weft.rdma.protocol.ControlMessage;
import io.weft.rdma.protocol.Immediate;
import io.weft.rdma.protocol.RequestHeader;
import io.weft.rdma.server.RdmaServer;
import io.weft.rdma.server.RdmaServerConfig;
import io.weft.rdma.verbs.WcStatus;
import io.weft.rdma.verbs.soft.SoftwareProvider;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Hostile and broken peers against the storage side: each gets its connection closed (or an error status), nothing
 * lands outside the device or the session's chunks, and a well-behaved session keeps doing verified IO throughout.
 */
class BadInputTest {
    private static final long SIZE = 16L << 20;
    private static final long WATCHED = 12L << 20; // a block only the attacker ever aims at
    private static final Duration WAIT = Duration.ofSeconds(10);

    @TempDir
    Path dir;
    private SoftwareProvider provider;
    private StoreBlockDevice store;
    private RdmaServer server;
    private InetSocketAddress address;
    private RdmaSession good;
    private VerifyingLoad load;

    @BeforeEach
    void start() throws Exception {
        provider = new SoftwareProvider();
        store = new StoreBlockDevice(FileBackingStore.createSparse(dir.resolve("vol"), SIZE));
        server = RdmaServer.start(provider, RdmaServerConfig.DEFAULTS, TestGrants.served("vol0", store),
                List.of(new InetSocketAddress("127.0.0.1", 0)));
        address = server.listenAddresses().get(0);
        good = RdmaSession.open(provider, "good", "vol0", TestGrants.GRANT, List.of(PathSpec.to(address)),
                RdmaClientConfig.DEFAULTS.withQueueDepth(16));
        load = new VerifyingLoad(good.device(), 8, 256);
        load.start();
    }

    @AfterEach
    void stop() throws Exception {
        long before = load.completed();
        await("good session still doing IO", WAIT, () -> load.completed() > before + 200);
        load.stop();
        load.verifyAll();
        assertTrue(load.failures().isEmpty(), () -> "good session saw failures: " + load.failures());
        byte[] watched = TestIo.read(good.device(), WATCHED, 4096);
        assertArrayEquals(new byte[4096], watched, "the attacker changed a block it had no right to write");
        assertEquals(SIZE, Files.size(dir.resolve("vol")), "the device file grew: something was written past its end");
        good.close();
        server.close();
        store.close();
        provider.close();
    }

    // ---------------------------------------------------------------- helpers

    /** An attacker's own session: admin handshake + OPEN, then one IO connection. */
    private final class Attacker implements AutoCloseable {
        final RawPeer admin;
        RawPeer io;
        long poolAddress;
        int poolRkey;
        int chunkSize;
        int chunks;
        long token;
        /** The id the storage side gave {@link #device} in this session (DEVICE_OK). */
        int deviceId;
        final String session;
        final String device;

        Attacker(String session, String device) throws Exception {
            this.session = session;
            this.device = device;
            admin = RawPeer.connect(address);
            RawPeer.Frame accept = RawPeer.handshake(admin, ConnectData.request(ConnectData.KIND_ADMIN, 0, 0, 1));
            assertEquals(RawPeer.ACCEPT, accept.type());
            // A client that holds the grant (proves the capability) and then misbehaves.
            byte[] nonce = Capability.nonce();
            byte[] open = new byte[ControlMessage.MAX_LENGTH];
            int len = new ControlMessage().wrap(new UnsafeBuffer(open), 0).encodeOpen(8, 64 * 1024, 1, session,
                    device, TestGrants.GRANT.clientNode(), nonce);
            admin.send(RawPeer.SEND, 0, 0, 0, Arrays.copyOf(open, len));
            ControlMessage challenge = reply();
            if (challenge.type() == ControlMessage.CHALLENGE) {
                Capability.Transcript t = new Capability.Transcript(nonce, challenge.challengeServerNonce(), session,
                        1, TestGrants.GRANT.clientNode(), TestGrants.GRANT.identity(), device);
                byte[] proof = new byte[ControlMessage.MAX_LENGTH];
                len = new ControlMessage().wrap(new UnsafeBuffer(proof), 0)
                        .encodeProof(Capability.clientProof(TestGrants.GRANT, t));
                admin.send(RawPeer.SEND, 0, 0, 0, Arrays.copyOf(proof, len));
            } else {
                pendingReply = challenge;
            }
        }

        private ControlMessage pendingReply;

        ControlMessage reply() throws Exception {
            if (pendingReply != null) {
                ControlMessage m = pendingReply;
                pendingReply = null;
                return m;
            }
            RawPeer.Frame f = admin.read(WAIT);
            assertNotNull(f, "admin connection closed instead of answering OPEN");
            assertEquals(RawPeer.SEND, f.type());
            byte[] copy = Arrays.copyOf(f.payload(), ControlMessage.MAX_LENGTH);
            return new ControlMessage().wrap(new UnsafeBuffer(copy), 0);
        }

        Attacker opened() throws Exception {
            ControlMessage ok = reply();
            assertEquals(ControlMessage.OPEN_OK, ok.type());
            poolAddress = ok.okPoolAddress();
            poolRkey = ok.okPoolRkey();
            chunkSize = ok.okChunkSize();
            chunks = ok.okChunkCount();
            token = ok.okToken();
            // Then it opens the device inside its session, proving the device's grant, as a client does.
            byte[] nonce = Capability.nonce();
            byte[] open = new byte[ControlMessage.MAX_LENGTH];
            int len = new ControlMessage().wrap(new UnsafeBuffer(open), 0).encodeDeviceOpen(1, device, nonce);
            admin.send(RawPeer.SEND, 0, 0, 0, Arrays.copyOf(open, len));
            ControlMessage challenge = reply();
            assertEquals(ControlMessage.DEVICE_CHALLENGE, challenge.type());
            Capability.Transcript t = new Capability.Transcript(nonce, challenge.challengeServerNonce(), session, 1,
                    TestGrants.GRANT.clientNode(), TestGrants.GRANT.identity(), device);
            byte[] proof = new byte[ControlMessage.MAX_LENGTH];
            len = new ControlMessage().wrap(new UnsafeBuffer(proof), 0)
                    .encodeDeviceProof(1, Capability.deviceClientProof(TestGrants.GRANT, t));
            admin.send(RawPeer.SEND, 0, 0, 0, Arrays.copyOf(proof, len));
            ControlMessage deviceOk = reply();
            assertEquals(ControlMessage.DEVICE_OK, deviceOk.type());
            deviceId = deviceOk.deviceOkId();
            io = RawPeer.connect(address);
            RawPeer.Frame accept = RawPeer.handshake(io, ConnectData.request(ConnectData.KIND_IO, 0, token, 1));
            assertEquals(RawPeer.ACCEPT, accept.type());
            return this;
        }

        /** Sends header (+ payload) into chunk {@code chunk} with the request immediate, as a client would. */
        void request(int chunk, int op, long offset, int length, byte[] payload, int immediate) throws Exception {
            byte[] bytes = new byte[RequestHeader.LENGTH + payload.length];
            new RequestHeader().wrap(new UnsafeBuffer(bytes), 0).encode(op, 0, offset, length, deviceId, 0, 0, 0, 1);
            System.arraycopy(payload, 0, bytes, RequestHeader.LENGTH, payload.length);
            io.send(RawPeer.WRITE_IMM, poolAddress + (long) chunk * chunkSize, poolRkey, immediate, bytes);
        }

        int status() throws Exception {
            RawPeer.Frame f = io.read(WAIT);
            assertNotNull(f, "IO connection closed instead of answering");
            assertEquals(RawPeer.WRITE_IMM, f.type());
            assertEquals(Immediate.TYPE_RESPONSE, Immediate.type(f.imm()));
            return Immediate.status(f.imm());
        }

        @Override
        public void close() throws java.io.IOException {
            admin.close();
            if (io != null) {
                io.close();
            }
        }
    }

    // ---------------------------------------------------------------- connection level

    @Test
    void garbageInsteadOfAConnectRequestIsClosed() throws Exception {
        try (RawPeer p = RawPeer.connect(address)) {
            byte[] junk = new byte[100];
            Arrays.fill(junk, (byte) 0x5A);
            p.raw(junk);
            p.awaitClose(WAIT);
        }
    }

    @Test
    void connectRequestWithBadMagicOrOversizedPrivateDataIsClosed() throws Exception {
        try (RawPeer p = RawPeer.connect(address)) {
            p.send(RawPeer.HELLO, 0, 0, 0, new byte[] {1, 2, 3, 4, 1, 0, 0, 0});
            p.awaitClose(WAIT);
        }
        try (RawPeer p = RawPeer.connect(address)) {
            p.send(RawPeer.HELLO, 0, 0, 0, new byte[8 + 4000]);
            p.awaitClose(WAIT);
        }
    }

    @Test
    void malformedConnectDataIsRejected() throws Exception {
        try (RawPeer p = RawPeer.connect(address)) {
            RawPeer.Frame f = RawPeer.handshake(p, new byte[] {9, 9, 9});
            assertEquals(RawPeer.REJECT, f.type());
            assertEquals(ConnectData.REJECT_MALFORMED, f.imm());
        }
    }

    @Test
    void ioConnectionWithUnknownSessionTokenIsRejected() throws Exception {
        try (RawPeer p = RawPeer.connect(address)) {
            RawPeer.Frame f = RawPeer.handshake(p, ConnectData.request(ConnectData.KIND_IO, 0, 12345L, 1));
            assertEquals(RawPeer.REJECT, f.type());
            assertEquals(ConnectData.REJECT_UNKNOWN_SESSION, f.imm());
        }
    }

    @Test
    void peersStoppingMidHandshakeDelayNobody() throws Exception {
        List<RawPeer> silent = new java.util.ArrayList<>();
        try {
            for (int i = 0; i < 20; i++) {
                RawPeer p = RawPeer.connect(address);
                p.raw(i % 2 == 0 ? new byte[] {1, 0, 0} : new byte[] {1}); // part of a HELLO header, then nothing
                silent.add(p);
            }
            // Far more silent peers than any handshake pool would have threads: new sessions still get in, well
            // before the silent ones time out (5 s).
            for (int i = 0; i < 3; i++) {
                try (Attacker a = new Attacker("late" + i, "vol0")) {
                    assertEquals(ControlMessage.OPEN_OK, a.reply().type());
                }
            }
            // The silent ones are dropped once their handshake deadline passes.
            silent.get(0).awaitClose(WAIT);
        } finally {
            for (RawPeer p : silent) {
                p.close();
            }
        }
    }

    // ---------------------------------------------------------------- control protocol

    @Test
    void openForAnUnknownDeviceGetsAnError() throws Exception {
        try (Attacker a = new Attacker("nodev", "no-such-device")) {
            ControlMessage m = a.reply();
            assertEquals(ControlMessage.OPEN_ERR, m.type());
            // The same answer as for a device granted to someone else: a stranger cannot probe what is served.
            assertEquals(IoStatus.EPERM, m.errStatus());
        }
    }

    @Test
    void malformedControlMessageClosesTheAdminConnection() throws Exception {
        try (RawPeer p = RawPeer.connect(address)) {
            RawPeer.handshake(p, ConnectData.request(ConnectData.KIND_ADMIN, 0, 0, 1));
            p.send(RawPeer.SEND, 0, 0, 0, new byte[] {99, 0, 1, 0, 0, 0});
            p.awaitClose(WAIT);
        }
        try (RawPeer p = RawPeer.connect(address)) {
            RawPeer.handshake(p, ConnectData.request(ConnectData.KIND_ADMIN, 0, 0, 1));
            p.send(RawPeer.SEND, 0, 0, 0, new byte[] {1, 0, 1, 0}); // OPEN cut short
            p.awaitClose(WAIT);
        }
    }

    @Test
    void fenceBeforeOpenClosesTheAdminConnection() throws Exception {
        try (RawPeer p = RawPeer.connect(address)) {
            RawPeer.handshake(p, ConnectData.request(ConnectData.KIND_ADMIN, 0, 0, 1));
            byte[] fence = new byte[ControlMessage.MAX_LENGTH];
            int len = new ControlMessage().wrap(new UnsafeBuffer(fence), 0).encodeFence(ControlMessage.FENCE, 1, 1);
            p.send(RawPeer.SEND, 0, 0, 0, Arrays.copyOf(fence, len));
            p.awaitClose(WAIT);
        }
    }

    @Test
    void fenceReachesOnlyTheSessionThatAsksForIt() throws Exception {
        int goodPath = good.paths().get(0).id();
        try (Attacker a = new Attacker("evil", "vol0").opened()) {
            for (int generation = 0; generation < 8; generation++) {
                byte[] fence = new byte[ControlMessage.MAX_LENGTH];
                int len = new ControlMessage().wrap(new UnsafeBuffer(fence), 0)
                        .encodeFence(ControlMessage.FENCE, goodPath, generation);
                a.admin.send(RawPeer.SEND, 0, 0, 0, Arrays.copyOf(fence, len));
                ControlMessage ack = a.reply();
                assertEquals(ControlMessage.FENCE_ACK, ack.type());
                assertEquals(goodPath, ack.fencePathId());
                assertEquals(generation, ack.fenceGeneration());
            }
        }
        long before = load.completed();
        await("good session keeps doing IO", WAIT, () -> load.completed() > before + 200);
        assertEquals(0, good.paths().get(0).reconnects(), "another session's FENCE cut the good session's path");
    }

    @Test
    void sendLongerThanTheControlReceiveBufferIsRefused() throws Exception {
        try (RawPeer p = RawPeer.connect(address)) {
            RawPeer.handshake(p, ConnectData.request(ConnectData.KIND_ADMIN, 0, 0, 1));
            p.send(RawPeer.SEND, 0, 0, 0, new byte[ControlMessage.MAX_LENGTH + 1]);
            RawPeer.Frame error = p.awaitClose(WAIT);
            assertNotNull(error, "expected an ERROR frame before the close");
        }
    }

    // ---------------------------------------------------------------- IO protocol

    @Test
    void wrongRkeyClosesTheConnection() throws Exception {
        try (Attacker a = new Attacker("wrongkey", "vol0").opened()) {
            a.io.send(RawPeer.WRITE_IMM, a.poolAddress, a.poolRkey + 1, Immediate.request(0),
                    new byte[RequestHeader.LENGTH]);
            RawPeer.Frame error = a.io.awaitClose(WAIT);
            assertNotNull(error);
            assertEquals(WcStatus.REMOTE_ACCESS_ERROR, error.imm());
        }
    }

    @Test
    void requestNamingADeviceIdNotOpenInTheSessionIsAnsweredAndTouchesNoDevice() throws Exception {
        try (Attacker a = new Attacker("devids", "vol0").opened()) {
            byte[] data = new byte[4096];
            Arrays.fill(data, (byte) 0x66);
            int write = IoOp.WRITE.ordinal();
            int[] strangers = {a.deviceId + 1, a.deviceId ^ 0x10000, 0xFFFF, -1, Integer.MAX_VALUE, 0x7FFF0000};
            int open = a.deviceId;
            for (int i = 0; i < strangers.length; i++) {
                a.deviceId = strangers[i];
                a.request(i % a.chunks, write, WATCHED, 4096, data, Immediate.request(i % a.chunks));
                assertEquals(IoStatus.ESHUTDOWN, a.status(), "a WRITE naming device id 0x"
                        + Integer.toHexString(strangers[i]) + ", which this session never opened");
            }
            // Closed inside the session (DEVICE_CLOSE): its id is refused from then on; the connection stays.
            a.deviceId = open;
            a.request(0, IoOp.FLUSH.ordinal(), 0, 0, new byte[0], Immediate.request(0));
            assertEquals(IoStatus.OK, a.status());
            byte[] close = new byte[ControlMessage.MAX_LENGTH];
            int len = new ControlMessage().wrap(new UnsafeBuffer(close), 0)
                    .encodeDeviceClose(ControlMessage.DEVICE_CLOSE, open, 0);
            a.admin.send(RawPeer.SEND, 0, 0, 0, Arrays.copyOf(close, len));
            ControlMessage closed = a.reply();
            assertEquals(ControlMessage.DEVICE_CLOSED, closed.type());
            assertEquals(IoStatus.OK, closed.deviceCloseStatus());
            a.request(1, write, WATCHED, 4096, data, Immediate.request(1));
            assertEquals(IoStatus.ESHUTDOWN, a.status(), "a WRITE naming a device closed in this session");
            assertEquals(server.sessions().stream().filter(s -> s.name().equals("devids")).findFirst().orElseThrow()
                    .rejected(), strangers.length + 1, "every refused request counted");
        }
    }

    @Test
    void writePastTheEndOfTheChunkPoolClosesTheConnection() throws Exception {
        try (Attacker a = new Attacker("pastpool", "vol0").opened()) {
            long end = a.poolAddress + (long) a.chunks * a.chunkSize;
            a.io.send(RawPeer.WRITE_IMM, end - 10, a.poolRkey, Immediate.request(a.chunks - 1),
                    new byte[RequestHeader.LENGTH]);
            RawPeer.Frame error = a.io.awaitClose(WAIT);
            assertNotNull(error);
            assertEquals(WcStatus.REMOTE_ACCESS_ERROR, error.imm());
        }
    }

    @Test
    void unknownChunkInTheImmediateClosesTheConnection() throws Exception {
        try (Attacker a = new Attacker("badchunk", "vol0").opened()) {
            a.request(0, IoOp.READ.ordinal(), 0, 4096, new byte[0], Immediate.request(a.chunks + 5));
            a.io.awaitClose(WAIT);
        }
        try (Attacker a = new Attacker("badtype", "vol0").opened()) {
            a.request(0, IoOp.READ.ordinal(), 0, 4096, new byte[0], Immediate.response(0, 0));
            a.io.awaitClose(WAIT);
        }
    }

    @Test
    void requestShorterThanItsHeaderClosesTheConnection() throws Exception {
        try (Attacker a = new Attacker("short", "vol0").opened()) {
            a.io.send(RawPeer.WRITE_IMM, a.poolAddress, a.poolRkey, Immediate.request(0), new byte[10]);
            a.io.awaitClose(WAIT);
        }
    }

    @Test
    void outOfRangeAndMalformedRequestsGetErrorStatusesAndTouchNothing() throws Exception {
        try (Attacker a = new Attacker("ranges", "vol0").opened()) {
            byte[] data = new byte[4096];
            Arrays.fill(data, (byte) 0x77);
            int write = IoOp.WRITE.ordinal();
            a.request(0, write, SIZE, 4096, data, Immediate.request(0));
            assertEquals(IoStatus.EOVERFLOW, a.status(), "write at the device end");
            a.request(1, write, SIZE - 2048, 4096, data, Immediate.request(1));
            assertEquals(IoStatus.EOVERFLOW, a.status(), "write crossing the device end");
            a.request(2, write, -4096, 4096, data, Immediate.request(2));
            assertEquals(IoStatus.EINVAL, a.status(), "negative offset");
            a.request(3, write, WATCHED, -4096, data, Immediate.request(3));
            assertEquals(IoStatus.EINVAL, a.status(), "negative length");
            a.request(4, write, WATCHED, 4096, Arrays.copyOf(data, 100), Immediate.request(4));
            assertEquals(IoStatus.EINVAL, a.status(), "declared length larger than the data sent");
            a.request(5, 77, WATCHED, 4096, data, Immediate.request(5));
            assertEquals(IoStatus.EINVAL, a.status(), "unknown operation");
            a.request(6, write, Long.MAX_VALUE - 100, 4096, data, Immediate.request(6));
            assertEquals(IoStatus.EOVERFLOW, a.status(), "offset + length overflowing a long");
            a.request(7, IoOp.READ.ordinal(), 0, 1 << 20, new byte[0], Immediate.request(7));
            assertEquals(IoStatus.EOVERFLOW, a.status(), "read larger than the session's chunks");
            // The connection survived all of that and still serves a valid request.
            a.request(0, IoOp.FLUSH.ordinal(), 0, 0, new byte[0], Immediate.request(0));
            assertEquals(IoStatus.OK, a.status());
        }
    }

    @Test
    void readDataGoesOnlyToTheBufferTheRequestNamed() throws Exception {
        try (Attacker a = new Attacker("readkey", "vol0").opened()) {
            byte[] bytes = new byte[RequestHeader.LENGTH];
            new RequestHeader().wrap(new UnsafeBuffer(bytes), 0).encode(IoOp.READ.ordinal(), 0, 0, 4096,
                    a.deviceId, 0xdead0000L, 0x1234, 4096, 1);
            a.io.send(RawPeer.WRITE_IMM, a.poolAddress, a.poolRkey, Immediate.request(0), bytes);
            // The storage side RDMA-writes the data to exactly the descriptor the request named; the requester's own
            // adapter (or software provider) is what refuses a bogus key, so a lying client only hurts itself.
            RawPeer.Frame f = a.io.read(WAIT);
            assertNotNull(f);
            assertEquals(0xdead0000L, f.address());
            assertEquals(0x1234, f.rkey());
            assertEquals(4096, f.length());
        }
    }

    @Test
    void oversizedFrameLengthClosesTheConnection() throws Exception {
        try (Attacker a = new Attacker("bigframe", "vol0").opened()) {
            a.io.raw(RawPeer.frame(RawPeer.WRITE_IMM, Integer.MAX_VALUE, a.poolAddress, a.poolRkey, 0, new byte[0]));
            RawPeer.Frame error = a.io.awaitClose(WAIT);
            assertNotNull(error);
            assertEquals(WcStatus.PROTOCOL_ERROR, error.imm());
        }
    }

    @Test
    void unknownFrameTypeAndSendOnAnIoConnectionAreClosed() throws Exception {
        try (Attacker a = new Attacker("badframe", "vol0").opened()) {
            a.io.send(42, 0, 0, 0, new byte[8]);
            a.io.awaitClose(WAIT);
        }
        try (Attacker a = new Attacker("sendio", "vol0").opened()) {
            a.io.send(RawPeer.SEND, 0, 0, 0, new byte[0]);
            a.io.awaitClose(WAIT);
        }
    }

    @Test
    void peerStoppingMidFrameIsClosedOrIgnoredWithoutHarm() throws Exception {
        try (Attacker a = new Attacker("midframe", "vol0").opened()) {
            byte[] header = new byte[RequestHeader.LENGTH];
            new RequestHeader().wrap(new UnsafeBuffer(header), 0).encode(IoOp.WRITE.ordinal(), 0, WATCHED, 4096,
                    a.deviceId, 0, 0, 0, 1);
            byte[] whole = RawPeer.frame(RawPeer.WRITE_IMM, RequestHeader.LENGTH + 4096, a.poolAddress, a.poolRkey,
                    Immediate.request(0), concat(header, new byte[4096]));
            a.io.raw(Arrays.copyOf(whole, 24 + RequestHeader.LENGTH + 1000)); // stops inside the payload
            // silent peer: the good session keeps going (checked after each test); then it goes away mid-frame
        }
        try (Attacker a = new Attacker("midheader", "vol0").opened()) {
            a.io.raw(new byte[] {5, 0, 0, 0, 64}); // five bytes of a frame header, then close
        }
        await("attacker sessions cleaned up", WAIT, () -> server.sessions().stream()
                .noneMatch(s -> s.name().startsWith("mid")));
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
