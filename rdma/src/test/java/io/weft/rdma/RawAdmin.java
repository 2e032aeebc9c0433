package io.weft.rdma;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.weft.rdma.protocol.Capability;
import io.weft.rdma.protocol.ConnectData;
import io.weft.rdma.protocol.ControlMessage;
import io.weft.rdma.protocol.Grant;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.Arrays;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * A hand-rolled admin connection ({@link RawPeer}) that speaks the session handshake message by message, so tests can
 * send what a real client never would: another node's name, a wrong proof, a captured proof again.
 */
final class RawAdmin implements AutoCloseable {
    static final Duration WAIT = Duration.ofSeconds(10);

    final RawPeer peer;
    /** The bytes of the last OPEN and PROOF sent (what a wiretap would have captured). */
    byte[] sentOpen;
    byte[] sentProof;
    byte[] clientNonce;

    private RawAdmin(RawPeer peer) {
        this.peer = peer;
    }

    /** Connects an admin connection; the storage side must accept it. */
    static RawAdmin connect(InetSocketAddress address, int pathId) throws IOException {
        RawPeer p = RawPeer.connect(address);
        RawPeer.Frame accept = RawPeer.handshake(p, ConnectData.request(ConnectData.KIND_ADMIN, 0, 0, pathId));
        assertEquals(RawPeer.ACCEPT, accept.type(), "admin connection rejected");
        return new RawAdmin(p);
    }

    ControlMessage open(String session, String device, String clientNode, int pathId) throws IOException {
        clientNonce = Capability.nonce();
        byte[] b = new byte[ControlMessage.MAX_LENGTH];
        int len = new ControlMessage().wrap(new UnsafeBuffer(b), 0).encodeOpen(8, 64 * 1024, pathId, session, device,
                clientNode, clientNonce);
        sentOpen = Arrays.copyOf(b, len);
        return sendAndRead(sentOpen);
    }

    ControlMessage proof(byte[] proof) throws IOException {
        byte[] b = new byte[ControlMessage.MAX_LENGTH];
        int len = new ControlMessage().wrap(new UnsafeBuffer(b), 0).encodeProof(proof);
        sentProof = Arrays.copyOf(b, len);
        return sendAndRead(sentProof);
    }

    /** The whole handshake as a client holding {@code grant} does it. @return OPEN_OK, OPEN_ERR or null (closed) */
    ControlMessage openWith(Grant grant, String session, String device, int pathId) throws IOException {
        ControlMessage challenge = open(session, device, grant.clientNode(), pathId);
        if (challenge == null || challenge.type() != ControlMessage.CHALLENGE) {
            return challenge;
        }
        Capability.Transcript t = new Capability.Transcript(clientNonce, challenge.challengeServerNonce(), session,
                pathId, grant.clientNode(), grant.identity(), device);
        return proof(Capability.clientProof(grant, t));
    }

    /**
     * DEVICE_OPEN and, if challenged, DEVICE_PROOF with {@code grant}'s capability, on an authenticated connection.
     *
     * @return DEVICE_OK, DEVICE_ERR or null (closed)
     */
    ControlMessage openDevice(Grant grant, String session, String device, int requestId) throws IOException {
        byte[] nonce = Capability.nonce();
        byte[] b = new byte[ControlMessage.MAX_LENGTH];
        int len = new ControlMessage().wrap(new UnsafeBuffer(b), 0).encodeDeviceOpen(requestId, device, nonce);
        ControlMessage challenge = sendAndRead(Arrays.copyOf(b, len));
        if (challenge == null || challenge.type() != ControlMessage.DEVICE_CHALLENGE) {
            return challenge;
        }
        Capability.Transcript t = new Capability.Transcript(nonce, challenge.challengeServerNonce(), session,
                requestId, grant.clientNode(), grant.identity(), device);
        return deviceProof(requestId, Capability.deviceClientProof(grant, t));
    }

    ControlMessage deviceProof(int requestId, byte[] proof) throws IOException {
        byte[] b = new byte[ControlMessage.MAX_LENGTH];
        int len = new ControlMessage().wrap(new UnsafeBuffer(b), 0).encodeDeviceProof(requestId, proof);
        return sendAndRead(Arrays.copyOf(b, len));
    }

    /** Sends raw message bytes (a replay) and reads the answer. */
    ControlMessage sendAndRead(byte[] message) throws IOException {
        peer.send(RawPeer.SEND, 0, 0, 0, message);
        return read();
    }

    /** @return the next control message, or null when the storage side closed the connection */
    ControlMessage read() throws IOException {
        RawPeer.Frame f = peer.read(WAIT);
        if (f == null || f.type() != RawPeer.SEND) {
            return null;
        }
        return new ControlMessage().wrap(new UnsafeBuffer(Arrays.copyOf(f.payload(), ControlMessage.MAX_LENGTH)), 0);
    }

    @Override
    public void close() throws IOException {
        peer.close();
    }
}
