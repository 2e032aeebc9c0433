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
 *   tag   = "weft-rdma/2 server" (storage proves itself in CHALLENGE) or "weft-rdma/2 client" (PROOF)
 *   strings: u16 length (little-endian) + UTF-8; pathId: u32 little-endian
 * </pre>
 *
 * The two tags keep a storage proof from ever being valid as a client proof (reflection); the server's fresh nonce
 * makes a captured PROOF useless on any later connection (replay). Control path: allocation is fine here.
 */
public final class Capability {
    public static final int LENGTH = 32;
    public static final int NONCE_LENGTH = 32;
    public static final int PROOF_LENGTH = 32;
    static final String SERVER_TAG = "weft-rdma/2 server";
    static final String CLIENT_TAG = "weft-rdma/2 client";
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
        try {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(grant.capability(), "HmacSHA256"));
            mac.update(b.array(), 0, b.position());
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
