package io.weft.rdma.protocol;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * The secrets and proofs of the session handshake (see {@link ControlMessage} and docs/rdma.md). A capability is 32
 * bytes from {@link SecureRandom}; a proof is HMAC-SHA256 keyed with it over a domain tag and every field that says
 * what is being opened, by whom, under which two nonces:
 *
 * <pre>
 *   proof = HMAC-SHA256(capability,
 *                       tag | clientNonce | serverNonce | session | pathId | clientNode | identity | device)
 *   tag   = "weft-rdma/3 server" (storage proves itself in CHALLENGE) or "weft-rdma/3 client" (PROOF);
 *           "weft-rdma/3 device server" (DEVICE_CHALLENGE) or "weft-rdma/3 device client" (DEVICE_PROOF), where
 *           pathId is the DEVICE_OPEN's request id and the nonces are that device handshake's own
 *   strings: u16 length (little-endian) + UTF-8; pathId: u32 little-endian
 *
 *   session grant = HMAC-SHA256(storage node's session secret, "weft-rdma/3 session grant" | clientNode | identity)
 * </pre>
 *
 * The tags keep a storage proof from ever being valid as a client proof (reflection) and a session proof from
 * passing as a device proof; the server's fresh nonce makes a captured PROOF useless on any later connection
 * (replay). The session grant is derived, not stored: every mapping the storage node grants one client incarnation
 * carries the same one, and a new incarnation (new identity) gets another. Control path: allocation is fine here.
 */
public final class Capability {
    public static final int LENGTH = 32;
    public static final int NONCE_LENGTH = 32;
    public static final int PROOF_LENGTH = 32;
    public static final int DIGEST_LENGTH = 32;
    static final String SERVER_TAG = "weft-rdma/3 server";
    static final String CLIENT_TAG = "weft-rdma/3 client";
    static final String DEVICE_SERVER_TAG = "weft-rdma/3 device server";
    static final String DEVICE_CLIENT_TAG = "weft-rdma/3 device client";
    static final String SESSION_GRANT_TAG = "weft-rdma/3 session grant";
    private static final SecureRandom RANDOM = new SecureRandom();

    private Capability() {
    }

    public static byte[] generate() {
        byte[] b = new byte[LENGTH];
        RANDOM.nextBytes(b);
        return b;
    }

    public static byte[] nonce() {
        byte[] b = new byte[NONCE_LENGTH];
        RANDOM.nextBytes(b);
        return b;
    }

    /** A session token: 64 random bits from SecureRandom, never 0 (0 means "none" on the wire). */
    public static long sessionToken() {
        long t;
        do {
            t = RANDOM.nextLong();
        } while (t == 0);
        return t;
    }

    /** What the fields of one handshake are; both sides build the same one. */
    public record Transcript(byte[] clientNonce, byte[] serverNonce, String session, int pathId, String clientNode,
                             String identity, String device) {
    }

    public static byte[] serverProof(Grant grant, Transcript t) {
        return proof(grant, SERVER_TAG, t);
    }

    public static byte[] clientProof(Grant grant, Transcript t) {
        return proof(grant, CLIENT_TAG, t);
    }

    /** The storage side's proof in DEVICE_CHALLENGE, keyed with the device's mapping capability. */
    public static byte[] deviceServerProof(Grant mapping, Transcript t) {
        return proof(mapping, DEVICE_SERVER_TAG, t);
    }

    /** The client's proof in DEVICE_PROOF, keyed with the device's mapping capability. */
    public static byte[] deviceClientProof(Grant mapping, Transcript t) {
        return proof(mapping, DEVICE_CLIENT_TAG, t);
    }

    /**
     * The session grant of one client incarnation: derived from the storage node's secret, so the storage node keeps
     * no state per client and every map reply to that incarnation carries the same grant.
     */
    public static Grant sessionGrant(byte[] storageSecret, String clientNode, String identity) {
        ByteBuffer b = ByteBuffer.allocate(6 + utf8(SESSION_GRANT_TAG).length + utf8(clientNode).length
                + utf8(identity).length).order(ByteOrder.LITTLE_ENDIAN);
        put(b, SESSION_GRANT_TAG);
        put(b, clientNode);
        put(b, identity);
        return new Grant(clientNode, identity, hmac(storageSecret, b.array(), b.position()));
    }

    /** SHA-256 of the identity: OPEN names the session grant by it without putting the identity on the wire. */
    public static byte[] identityDigest(String identity) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(identity.getBytes(StandardCharsets.UTF_8));
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("SHA-256 unavailable", e);
        }
    }

    /** Constant-time comparison, so the time to refuse does not say how many bytes were right. */
    public static boolean matches(byte[] expected, byte[] presented) {
        return expected != null && presented != null && MessageDigest.isEqual(expected, presented);
    }

    private static byte[] proof(Grant grant, String tag, Transcript t) {
        int size = 4 + t.clientNonce().length + t.serverNonce().length + 5 * 2 + utf8(tag).length
                + utf8(t.session()).length + utf8(t.clientNode()).length + utf8(t.identity()).length
                + utf8(t.device()).length;
        ByteBuffer b = ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
        put(b, tag);
        b.put(t.clientNonce()).put(t.serverNonce());
        put(b, t.session());
        b.putInt(t.pathId());
        put(b, t.clientNode());
        put(b, t.identity());
        put(b, t.device());
        return hmac(grant.capability(), b.array(), b.position());
    }

    private static byte[] hmac(byte[] key, byte[] data, int length) {
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(key, "HmacSHA256"));
            mac.update(data, 0, length);
            return mac.doFinal();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("HmacSHA256 unavailable", e);
        }
    }

    private static void put(ByteBuffer b, String s) {
        byte[] bytes = utf8(s);
        b.putShort((short) bytes.length).put(bytes);
    }

    private static byte[] utf8(String s) {
        byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
        if (bytes.length > 0xFFFF) {
            throw new IllegalArgumentException("handshake field longer than 65535 bytes");
        }
        return bytes;
    }
}
