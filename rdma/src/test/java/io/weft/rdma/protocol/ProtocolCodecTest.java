package io.weft.rdma.protocol;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import io.weft.core.io.IoStatus;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;

/** The flyweights write exactly the documented byte layouts and read them back. */
class ProtocolCodecTest {
    @Test
    void immediateLayout() {
        int req = Immediate.request(0x1234);
        assertEquals(0x1000_1234, req);
        assertEquals(Immediate.TYPE_REQUEST, Immediate.type(req));
        int rsp = Immediate.response(65535, IoStatus.EOVERFLOW);
        assertEquals(0x2000_0000 | (75 << 16) | 0xFFFF, rsp);
        assertEquals(IoStatus.EOVERFLOW, Immediate.status(rsp));
        assertEquals(65535, Immediate.chunk(rsp));
        assertEquals(IoStatus.EIO, Immediate.status(Immediate.response(1, 5000)), "out-of-range status becomes EIO");
    }

    @Test
    void requestHeaderLayout() {
        byte[] bytes = new byte[RequestHeader.LENGTH + 8];
        new RequestHeader().wrap(new UnsafeBuffer(bytes), 8).encode(1, 1, 0x0102030405060708L, 4096,
                0x00050003, 0x1122334455667788L, 0xCAFEBABE, 4096, 42);
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(1, b.get(8));
        assertEquals(1, b.getInt(8 + 4));
        assertEquals(0x0102030405060708L, b.getLong(8 + 8));
        assertEquals(4096, b.getInt(8 + 16));
        assertEquals(0x00050003, b.getInt(8 + 20), "device id");
        assertEquals(0x1122334455667788L, b.getLong(8 + 24));
        assertEquals(0xCAFEBABE, b.getInt(8 + 32));
        assertEquals(4096, b.getInt(8 + 36));
        assertEquals(42, b.getLong(8 + 40));
        RequestHeader h = new RequestHeader().wrap(new UnsafeBuffer(bytes), 8);
        assertEquals(0x0102030405060708L, h.offset());
        assertEquals(0xCAFEBABE, h.readRkey());
        assertEquals(0x00050003, h.deviceId());
    }

    @Test
    void controlMessagesRoundTrip() {
        byte[] bytes = new byte[ControlMessage.MAX_LENGTH];
        ControlMessage m = new ControlMessage().wrap(new UnsafeBuffer(bytes), 0);
        byte[] nonce = new byte[Capability.NONCE_LENGTH];
        java.util.Arrays.fill(nonce, (byte) 0x42);
        assertEquals(248, m.encodeOpen(64, 131072, 3, "sess", "vol0", "node-a", nonce));
        assertEquals(ControlMessage.OPEN, m.type());
        assertEquals(ControlMessage.VERSION, m.version());
        assertEquals("sess", m.openSessionName());
        assertEquals("vol0", m.openDeviceName());
        assertEquals("node-a", m.openClientNode());
        org.junit.jupiter.api.Assertions.assertArrayEquals(nonce, m.openClientNonce());
        assertEquals(3, m.openPathId());
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).putShort(16, (short) 65); // name length out of range
        assertNull(m.openSessionName());
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).putShort(20, (short) 0); // empty node name
        assertNull(m.openClientNode());

        byte[] proof = new byte[Capability.PROOF_LENGTH];
        java.util.Arrays.fill(proof, (byte) 7);
        assertEquals(72, m.encodeChallenge(nonce, proof));
        assertEquals(ControlMessage.CHALLENGE, m.type());
        org.junit.jupiter.api.Assertions.assertArrayEquals(nonce, m.challengeServerNonce());
        org.junit.jupiter.api.Assertions.assertArrayEquals(proof, m.challengeServerProof());
        assertEquals(40, m.encodeProof(proof));
        assertEquals(ControlMessage.PROOF, m.type());
        org.junit.jupiter.api.Assertions.assertArrayEquals(proof, m.proofClientProof());

        assertEquals(64, m.encodeOpenOk(64, 131136, 131072, 7L, 0x7f00_0000_1000L, 99, 5, 1L << 30, 512, 4096, 3));
        assertEquals(0x7f00_0000_1000L, m.okPoolAddress());
        assertEquals(1L << 30, m.okDeviceSize());
        assertEquals(3, m.okCapabilities());

        assertEquals(16, m.encodeFence(ControlMessage.FENCE, 7, 0xFFFFFFFE));
        assertEquals(ControlMessage.FENCE, m.type());
        assertEquals(7, m.fencePathId());
        assertEquals(0xFFFFFFFE, m.fenceGeneration());
        assertEquals(7, ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getInt(4), "path id at byte 4");
        assertEquals(0xFFFFFFFE, ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getInt(8),
                "generation at byte 8");
        assertEquals(16, ControlMessage.minimumLength(ControlMessage.FENCE_ACK));

        int n = m.encodeOpenErr(IoStatus.EINVAL, "unknown device 'x'");
        assertEquals("unknown device 'x'", m.errReason(n));
        assertEquals("unknown", m.errReason(17), "never reads past the received length");
    }

    @Test
    void deviceMessagesRoundTrip() {
        byte[] bytes = new byte[ControlMessage.MAX_LENGTH];
        ByteBuffer le = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        ControlMessage m = new ControlMessage().wrap(new UnsafeBuffer(bytes), 0);
        byte[] nonce = new byte[Capability.NONCE_LENGTH];
        java.util.Arrays.fill(nonce, (byte) 0x42);
        byte[] digest = Capability.identityDigest("node-a#1");
        assertEquals(248, m.encodeSessionOpen(64, 131072, 3, "sess", "node-a", digest, nonce));
        assertEquals(true, m.openBySessionGrant());
        assertEquals(0, le.getShort(18), "device length 0: a session grant is proven");
        org.junit.jupiter.api.Assertions.assertArrayEquals(digest, m.openIdentityDigest());
        assertEquals("node-a", m.openClientNode());

        assertEquals(108, m.encodeDeviceOpen(77, "vol9", nonce));
        assertEquals(ControlMessage.DEVICE_OPEN, m.type());
        assertEquals(77, le.getInt(4), "request id at byte 4");
        assertEquals(4, le.getShort(8), "device name length at byte 8");
        assertEquals(0x42, bytes[12], "client nonce at byte 12");
        assertEquals('v', bytes[44], "device name at byte 44");
        assertEquals("vol9", m.deviceOpenName());
        le.putShort(8, (short) 65);
        assertNull(m.deviceOpenName(), "name length out of range");

        byte[] proof = new byte[Capability.PROOF_LENGTH];
        java.util.Arrays.fill(proof, (byte) 7);
        assertEquals(72, m.encodeDeviceChallenge(77, nonce, proof));
        assertEquals(ControlMessage.DEVICE_CHALLENGE, m.type());
        assertEquals(77, m.deviceRequestId());
        org.junit.jupiter.api.Assertions.assertArrayEquals(nonce, m.challengeServerNonce());
        org.junit.jupiter.api.Assertions.assertArrayEquals(proof, m.challengeServerProof());
        assertEquals(40, m.encodeDeviceProof(77, proof));
        assertEquals(ControlMessage.DEVICE_PROOF, m.type());
        org.junit.jupiter.api.Assertions.assertArrayEquals(proof, m.proofClientProof());

        assertEquals(40, m.encodeDeviceOk(77, 0x00020005, 65536, 1L << 33, 512, 4096, 0x1F));
        assertEquals(0x00020005, le.getInt(8), "device id at byte 8");
        assertEquals(1L << 33, le.getLong(16), "device size at byte 16");
        assertEquals(0x00020005, m.deviceOkId());
        assertEquals(65536, m.deviceOkMaxIoSize());
        assertEquals(512, m.deviceOkLogicalBlock());
        assertEquals(4096, m.deviceOkPreferredBlock());
        assertEquals(0x1F, m.deviceOkCapabilities());

        int n = m.encodeDeviceErr(77, IoStatus.EPERM, "no grant for device 'vol9'");
        assertEquals(IoStatus.EPERM, m.deviceErrStatus());
        assertEquals("no grant for device 'vol9'", m.deviceErrReason(n));
        assertEquals("no grant", m.deviceErrReason(22), "never reads past the received length");

        assertEquals(12, m.encodeDeviceClose(ControlMessage.DEVICE_CLOSED, 0x00020005, IoStatus.ESHUTDOWN));
        assertEquals(0x00020005, m.deviceCloseId());
        assertEquals(IoStatus.ESHUTDOWN, m.deviceCloseStatus());
    }

    @Test
    void sessionGrantIsDerivedPerIncarnation() {
        byte[] secret = Capability.generate();
        Grant a = Capability.sessionGrant(secret, "node-a", "node-a#1");
        assertEquals(a, Capability.sessionGrant(secret, "node-a", "node-a#1"), "same incarnation, same grant");
        org.junit.jupiter.api.Assertions.assertNotEquals(a, Capability.sessionGrant(secret, "node-a", "node-a#2"));
        org.junit.jupiter.api.Assertions.assertNotEquals(a, Capability.sessionGrant(Capability.generate(), "node-a",
                "node-a#1"), "another storage node's secret");
    }

    @Test
    void connectDataRejectsForeignBytes() {
        ConnectData.Request r = ConnectData.parseRequest(ByteBuffer.wrap(ConnectData.request(2, 3, 99L, 4)));
        assertEquals(new ConnectData.Request(2, 3, 99L, 4, 0), r);
        ConnectData.Request g =
                ConnectData.parseRequest(ByteBuffer.wrap(ConnectData.request(2, 3, 99L, 4, 0x80000001)));
        assertEquals(new ConnectData.Request(2, 3, 99L, 4, 0x80000001), g, "generation at bytes 20..23");
        assertNull(ConnectData.parseRequest(ByteBuffer.wrap(new byte[24])));
        byte[] badKind = ConnectData.request(2, 0, 0, 0);
        badKind[6] = 9;
        assertNull(ConnectData.parseRequest(ByteBuffer.wrap(badKind)));
        assertEquals(0, ConnectData.parseReply(ByteBuffer.wrap(ConnectData.reply(0))));
        assertEquals(-1, ConnectData.parseReply(ByteBuffer.wrap(new byte[3])));
    }
}
