package io.weft.rdma.protocol;

import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import org.agrona.MutableDirectBuffer;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * Flyweight over the messages of the admin connection (SEND/RECV, at most {@link #MAX_LENGTH} bytes,
 * little-endian). Every message starts with a 2-byte type and a 2-byte protocol version; accessors never read past
 * the received length because callers check {@link #minimumLength(int)} first.
 *
 * <pre>
 * common:      0 type u16 | 2 version u16 (= {@link #VERSION}; a message of another version closes the connection)
 * OPEN (1)     4 queue depth u32 | 8 max IO size u32 | 12 path id u32 | 16 session-name length u16
 *              | 18 device-name length u16 | 20 client-node length u16 | 22 reserved u16 | 24 client nonce (32 bytes)
 *              | 56 session name (64 bytes) | 120 device name (64 bytes) | 184 client node (64 bytes)   = 248 bytes
 * CHALLENGE (9) 4 reserved u32 | 8 server nonce (32 bytes) | 40 server proof (32 bytes)              = 72 bytes
 * PROOF (10)   4 reserved u32 | 8 client proof (32 bytes)                                          = 40 bytes
 * OPEN_OK (2)  4 chunk count u32 | 8 chunk size u32 | 12 max IO size u32 | 16 session token u64
 *              | 24 pool address u64 | 32 pool rkey u32 | 36 server epoch u32 | 40 device size u64
 *              | 48 logical block u32 | 52 preferred block u32 | 56 capability bits u32 | 60 reserved   = 64 bytes
 * OPEN_ERR (3) 4 IoStatus u32 | 8 reason length u16 | 10 reason (UTF-8, up to 180 bytes)             = 190 bytes
 * HEARTBEAT (4) / HEARTBEAT_ACK (5)  8 sequence u64 | 16 sender's clock (ns) u64                    = 24 bytes
 * CLOSE (6)    nothing more                                                                        = 4 bytes
 * FENCE (7) / FENCE_ACK (8)          4 path id u32 | 8 generation u32 | 12 reserved u32              = 16 bytes
 *
 * Session open (one per admin connection; see {@link Capability} for the proofs and docs/rdma.md):
 *   client                                          storage
 *   OPEN(session, device, path id, client node, client nonce) -->
 *                                                   refuses (OPEN_ERR) unless it granted the device to that node
 *        <-- CHALLENGE(server nonce, server proof = HMAC(capability, "server" | nonces | fields))
 *   checks the server proof (a storage node without the grant cannot make it)
 *   PROOF(client proof = HMAC(capability, "client" | nonces | fields)) -->
 *                                                   checks it in constant time; one try per connection
 *        <-- OPEN_OK(session token, pool rkey, chunks ...)   or   OPEN_ERR (and the connection closes)
 * Nothing but OPEN, PROOF and CLOSE is accepted before OPEN_OK; the session token (64 bits from SecureRandom) that
 * IO connections present in ConnectData is revealed only in OPEN_OK.
 *
 *  0               2               4                               8
 *  +---------------+---------------+-------------------------------+
 *  |  type 1       |   version 2   |          queue depth          |  OPEN
 *  +---------------+---------------+-------------------------------+
 *  |          max IO size          |            path id            |  8
 *  +---------------+---------------+---------------+---------------+
 *  | session len   | device len    | node len      |  reserved 0   |  16
 *  +---------------+---------------+---------------+---------------+
 *  |                 client nonce (32 bytes)                       |  24
 *  +---------------------------------------------------------------+
 *  |  session name (64) | device name (64) | client node (64)      |  56 / 120 / 184 .. 248
 *  +---------------------------------------------------------------+
 *
 *  0               2               4                               8
 *  +---------------+---------------+-------------------------------+
 *  |  type 9       |   version 2   |           reserved 0          |  CHALLENGE
 *  +---------------+---------------+-------------------------------+
 *  |                 server nonce (32 bytes)                       |  8
 *  +---------------------------------------------------------------+
 *  |                 server proof (32 bytes)                       |  40 .. 72
 *  +---------------------------------------------------------------+
 *
 *  0               2               4                               8
 *  +---------------+---------------+-------------------------------+
 *  |  type 10      |   version 2   |           reserved 0          |  PROOF
 *  +---------------+---------------+-------------------------------+
 *  |                 client proof (32 bytes)                       |  8 .. 40
 *  +---------------------------------------------------------------+
 *
 * FENCE (client to storage, on an authenticated admin connection of the session, i.e. after OPEN_OK): stop
 * executing anything that arrives on the IO connections of path {@code path id} of this session opened with
 * {@code generation} (ConnectData), close them, let the requests already handed to the device finish, then answer
 * FENCE_ACK with the same two fields. After the ack nothing received on those connections can reach the device or
 * the session's chunks, so the client may post their requests again, on other connections, with the same chunks.
 * A FENCE on a connection that has not finished the handshake closes it.
 *
 *  0               2               4                               8
 *  +---------------+---------------+-------------------------------+
 *  |  type 7 or 8  |   version 2   |            path id            |
 *  +---------------+---------------+-------------------------------+
 *  |          generation           |           reserved 0          |  8
 *  +-------------------------------+-------------------------------+
 * </pre>
 */
public final class ControlMessage {
    public static final int MAX_LENGTH = 256;
    /**
     * 3: one session per client and storage node, devices opened inside it (DEVICE_* messages, device id in the
     * request header). 2: capabilities (OPEN carries the client node and a nonce; CHALLENGE and PROOF).
     */
    public static final short VERSION = 3;
    public static final int OPEN = 1;
    public static final int OPEN_OK = 2;
    public static final int OPEN_ERR = 3;
    public static final int HEARTBEAT = 4;
    public static final int HEARTBEAT_ACK = 5;
    public static final int CLOSE = 6;
    public static final int FENCE = 7;
    public static final int FENCE_ACK = 8;
    public static final int CHALLENGE = 9;
    public static final int PROOF = 10;
    public static final int DEVICE_OPEN = 11;
    public static final int DEVICE_CHALLENGE = 12;
    public static final int DEVICE_PROOF = 13;
    public static final int DEVICE_OK = 14;
    public static final int DEVICE_ERR = 15;
    public static final int DEVICE_CLOSE = 16;
    public static final int DEVICE_CLOSED = 17;
    public static final int MAX_NAME = 64;
    public static final int MAX_REASON = 180;

    /* Capability bits: DeviceInfo.capabilityBits(), one definition for every wire. */

    private static final ByteOrder ORDER = ByteOrder.LITTLE_ENDIAN;
    private final UnsafeBuffer view = new UnsafeBuffer(new byte[0]);
    private MutableDirectBuffer buffer;
    private int base;

    public ControlMessage wrap(MutableDirectBuffer buffer, int base) {
        this.buffer = buffer;
        this.base = base;
        return this;
    }

    public ControlMessage wrap(java.nio.ByteBuffer buffer, int base) {
        view.wrap(buffer);
        return wrap(view, base);
    }

    /** Smallest valid length of a message of {@code type}, or -1 for an unknown type. */
    public static int minimumLength(int type) {
        switch (type) {
            case OPEN: return 248;
            case CHALLENGE: return 72;
            case PROOF: return 40;
            case OPEN_OK: return 64;
            case OPEN_ERR: return 10;
            case HEARTBEAT:
            case HEARTBEAT_ACK: return 24;
            case CLOSE: return 4;
            case FENCE:
            case FENCE_ACK: return 16;
            case DEVICE_OPEN: return 108;
            case DEVICE_CHALLENGE: return 72;
            case DEVICE_PROOF: return 40;
            case DEVICE_OK: return 40;
            case DEVICE_ERR: return 14;
            case DEVICE_CLOSE:
            case DEVICE_CLOSED: return 12;
            default: return -1;
        }
    }

    public int type() {
        return buffer.getShort(base, ORDER) & 0xFFFF;
    }

    public int version() {
        return buffer.getShort(base + 2, ORDER) & 0xFFFF;
    }

    private void header(int type) {
        buffer.setMemory(base, MAX_LENGTH, (byte) 0);
        buffer.putShort(base, (short) type, ORDER);
        buffer.putShort(base + 2, VERSION, ORDER);
    }

    // OPEN
    public int encodeOpen(int queueDepth, int maxIoSize, int pathId, String sessionName, String deviceName,
                          String clientNode, byte[] clientNonce) {
        if (clientNonce.length != Capability.NONCE_LENGTH) {
            throw new IllegalArgumentException("client nonce must be " + Capability.NONCE_LENGTH + " bytes");
        }
        header(OPEN);
        buffer.putInt(base + 4, queueDepth, ORDER);
        buffer.putInt(base + 8, maxIoSize, ORDER);
        buffer.putInt(base + 12, pathId, ORDER);
        byte[] s = name(sessionName);
        byte[] d = name(deviceName);
        byte[] n = name(clientNode);
        buffer.putShort(base + 16, (short) s.length, ORDER);
        buffer.putShort(base + 18, (short) d.length, ORDER);
        buffer.putShort(base + 20, (short) n.length, ORDER);
        buffer.putBytes(base + 24, clientNonce);
        buffer.putBytes(base + 56, s);
        buffer.putBytes(base + 120, d);
        buffer.putBytes(base + 184, n);
        return 248;
    }

    /**
     * OPEN of a session authenticated by the client node's session grant (no device named): device length 0 and the
     * SHA-256 of the client's identity at 120..152, which selects the grant (the identity itself stays off the wire).
     */
    public int encodeSessionOpen(int queueDepth, int maxIoSize, int pathId, String sessionName, String clientNode,
                                 byte[] identityDigest, byte[] clientNonce) {
        if (clientNonce.length != Capability.NONCE_LENGTH || identityDigest.length != Capability.DIGEST_LENGTH) {
            throw new IllegalArgumentException("client nonce and identity digest must be 32 bytes");
        }
        header(OPEN);
        buffer.putInt(base + 4, queueDepth, ORDER);
        buffer.putInt(base + 8, maxIoSize, ORDER);
        buffer.putInt(base + 12, pathId, ORDER);
        byte[] s = name(sessionName);
        byte[] n = name(clientNode);
        buffer.putShort(base + 16, (short) s.length, ORDER);
        buffer.putShort(base + 18, (short) 0, ORDER);
        buffer.putShort(base + 20, (short) n.length, ORDER);
        buffer.putBytes(base + 24, clientNonce);
        buffer.putBytes(base + 56, s);
        buffer.putBytes(base + 120, identityDigest);
        buffer.putBytes(base + 184, n);
        return 248;
    }

    /** @return true when the OPEN names no device: the session grant (selected by the identity digest) is proven */
    public boolean openBySessionGrant() {
        return (buffer.getShort(base + 18, ORDER) & 0xFFFF) == 0;
    }

    public byte[] openIdentityDigest() {
        return bytes(base + 120, Capability.DIGEST_LENGTH);
    }

    private static byte[] name(String name) {
        byte[] bytes = name.getBytes(StandardCharsets.UTF_8);
        if (bytes.length == 0 || bytes.length > MAX_NAME) {
            throw new IllegalArgumentException("name must be 1.." + MAX_NAME + " UTF-8 bytes: " + name);
        }
        return bytes;
    }

    public int openQueueDepth() {
        return buffer.getInt(base + 4, ORDER);
    }

    public int openMaxIoSize() {
        return buffer.getInt(base + 8, ORDER);
    }

    public int openPathId() {
        return buffer.getInt(base + 12, ORDER);
    }

    /** @return the session name, or null when its length field is out of range */
    public String openSessionName() {
        return string(base + 56, buffer.getShort(base + 16, ORDER) & 0xFFFF, MAX_NAME);
    }

    public String openDeviceName() {
        return string(base + 120, buffer.getShort(base + 18, ORDER) & 0xFFFF, MAX_NAME);
    }

    /** @return the client node's name, or null when its length field is out of range */
    public String openClientNode() {
        return string(base + 184, buffer.getShort(base + 20, ORDER) & 0xFFFF, MAX_NAME);
    }

    public byte[] openClientNonce() {
        return bytes(base + 24, Capability.NONCE_LENGTH);
    }

    // CHALLENGE
    public int encodeChallenge(byte[] serverNonce, byte[] serverProof) {
        header(CHALLENGE);
        buffer.putBytes(base + 8, serverNonce, 0, Capability.NONCE_LENGTH);
        buffer.putBytes(base + 40, serverProof, 0, Capability.PROOF_LENGTH);
        return 72;
    }

    public byte[] challengeServerNonce() {
        return bytes(base + 8, Capability.NONCE_LENGTH);
    }

    public byte[] challengeServerProof() {
        return bytes(base + 40, Capability.PROOF_LENGTH);
    }

    // PROOF
    public int encodeProof(byte[] clientProof) {
        header(PROOF);
        buffer.putBytes(base + 8, clientProof, 0, Capability.PROOF_LENGTH);
        return 40;
    }

    public byte[] proofClientProof() {
        return bytes(base + 8, Capability.PROOF_LENGTH);
    }

    private byte[] bytes(int at, int length) {
        byte[] out = new byte[length];
        buffer.getBytes(at, out);
        return out;
    }

    private String string(int at, int length, int max) {
        if (length == 0 || length > max) {
            return null;
        }
        byte[] bytes = new byte[length];
        buffer.getBytes(at, bytes);
        return new String(bytes, StandardCharsets.UTF_8);
    }

    // OPEN_OK
    public int encodeOpenOk(int chunkCount, int chunkSize, int maxIoSize, long token, long poolAddress, int poolRkey,
                            int epoch, long deviceSize, int logicalBlock, int preferredBlock, int capabilities) {
        header(OPEN_OK);
        buffer.putInt(base + 4, chunkCount, ORDER);
        buffer.putInt(base + 8, chunkSize, ORDER);
        buffer.putInt(base + 12, maxIoSize, ORDER);
        buffer.putLong(base + 16, token, ORDER);
        buffer.putLong(base + 24, poolAddress, ORDER);
        buffer.putInt(base + 32, poolRkey, ORDER);
        buffer.putInt(base + 36, epoch, ORDER);
        buffer.putLong(base + 40, deviceSize, ORDER);
        buffer.putInt(base + 48, logicalBlock, ORDER);
        buffer.putInt(base + 52, preferredBlock, ORDER);
        buffer.putInt(base + 56, capabilities, ORDER);
        return 64;
    }

    public int okChunkCount() {
        return buffer.getInt(base + 4, ORDER);
    }

    public int okChunkSize() {
        return buffer.getInt(base + 8, ORDER);
    }

    public int okMaxIoSize() {
        return buffer.getInt(base + 12, ORDER);
    }

    public long okToken() {
        return buffer.getLong(base + 16, ORDER);
    }

    public long okPoolAddress() {
        return buffer.getLong(base + 24, ORDER);
    }

    public int okPoolRkey() {
        return buffer.getInt(base + 32, ORDER);
    }

    public int okEpoch() {
        return buffer.getInt(base + 36, ORDER);
    }

    public long okDeviceSize() {
        return buffer.getLong(base + 40, ORDER);
    }

    public int okLogicalBlock() {
        return buffer.getInt(base + 48, ORDER);
    }

    public int okPreferredBlock() {
        return buffer.getInt(base + 52, ORDER);
    }

    public int okCapabilities() {
        return buffer.getInt(base + 56, ORDER);
    }

    // OPEN_ERR
    public int encodeOpenErr(int status, String reason) {
        header(OPEN_ERR);
        buffer.putInt(base + 4, status, ORDER);
        byte[] r = reason.getBytes(StandardCharsets.UTF_8);
        int n = Math.min(r.length, MAX_REASON);
        buffer.putShort(base + 8, (short) n, ORDER);
        buffer.putBytes(base + 10, r, 0, n);
        return 10 + n;
    }

    public int errStatus() {
        return buffer.getInt(base + 4, ORDER);
    }

    /** @param received the message's received length, so the reason never reads past it */
    public String errReason(int received) {
        int n = Math.min(buffer.getShort(base + 8, ORDER) & 0xFFFF, Math.min(MAX_REASON, received - 10));
        return n <= 0 ? "" : string(base + 10, n, MAX_REASON);
    }

    // HEARTBEAT / HEARTBEAT_ACK
    public int encodeHeartbeat(int type, long sequence, long clockNanos) {
        buffer.putShort(base, (short) type, ORDER);
        buffer.putShort(base + 2, VERSION, ORDER);
        buffer.putInt(base + 4, 0, ORDER);
        buffer.putLong(base + 8, sequence, ORDER);
        buffer.putLong(base + 16, clockNanos, ORDER);
        return 24;
    }

    public long heartbeatSequence() {
        return buffer.getLong(base + 8, ORDER);
    }

    public long heartbeatClock() {
        return buffer.getLong(base + 16, ORDER);
    }

    // FENCE / FENCE_ACK
    public int encodeFence(int type, int pathId, int generation) {
        header(type);
        buffer.putInt(base + 4, pathId, ORDER);
        buffer.putInt(base + 8, generation, ORDER);
        return 16;
    }

    public int fencePathId() {
        return buffer.getInt(base + 4, ORDER);
    }

    public int fenceGeneration() {
        return buffer.getInt(base + 8, ORDER);
    }

    // DEVICE_OPEN
    public int encodeDeviceOpen(int requestId, String deviceName, byte[] clientNonce) {
        if (clientNonce.length != Capability.NONCE_LENGTH) {
            throw new IllegalArgumentException("client nonce must be " + Capability.NONCE_LENGTH + " bytes");
        }
        header(DEVICE_OPEN);
        byte[] d = name(deviceName);
        buffer.putInt(base + 4, requestId, ORDER);
        buffer.putShort(base + 8, (short) d.length, ORDER);
        buffer.putBytes(base + 12, clientNonce);
        buffer.putBytes(base + 44, d);
        return 108;
    }

    /** DEVICE_* messages: the client's number for the device request (DEVICE_OPEN to DEVICE_OK/ERR). */
    public int deviceRequestId() {
        return buffer.getInt(base + 4, ORDER);
    }

    /** @return the device name, or null when its length field is out of range */
    public String deviceOpenName() {
        return string(base + 44, buffer.getShort(base + 8, ORDER) & 0xFFFF, MAX_NAME);
    }

    public byte[] deviceOpenClientNonce() {
        return bytes(base + 12, Capability.NONCE_LENGTH);
    }

    // DEVICE_CHALLENGE (same layout as CHALLENGE, request id in place of the reserved word)
    public int encodeDeviceChallenge(int requestId, byte[] serverNonce, byte[] serverProof) {
        encodeChallenge(serverNonce, serverProof);
        buffer.putShort(base, (short) DEVICE_CHALLENGE, ORDER);
        buffer.putInt(base + 4, requestId, ORDER);
        return 72;
    }

    // DEVICE_PROOF (same layout as PROOF, request id in place of the reserved word)
    public int encodeDeviceProof(int requestId, byte[] clientProof) {
        encodeProof(clientProof);
        buffer.putShort(base, (short) DEVICE_PROOF, ORDER);
        buffer.putInt(base + 4, requestId, ORDER);
        return 40;
    }

    // DEVICE_OK
    public int encodeDeviceOk(int requestId, int deviceId, int maxIoSize, long deviceSize, int logicalBlock,
                              int preferredBlock, int capabilities) {
        header(DEVICE_OK);
        buffer.putInt(base + 4, requestId, ORDER);
        buffer.putInt(base + 8, deviceId, ORDER);
        buffer.putInt(base + 12, maxIoSize, ORDER);
        buffer.putLong(base + 16, deviceSize, ORDER);
        buffer.putInt(base + 24, logicalBlock, ORDER);
        buffer.putInt(base + 28, preferredBlock, ORDER);
        buffer.putInt(base + 32, capabilities, ORDER);
        return 40;
    }

    public int deviceOkId() {
        return buffer.getInt(base + 8, ORDER);
    }

    public int deviceOkMaxIoSize() {
        return buffer.getInt(base + 12, ORDER);
    }

    public long deviceOkSize() {
        return buffer.getLong(base + 16, ORDER);
    }

    public int deviceOkLogicalBlock() {
        return buffer.getInt(base + 24, ORDER);
    }

    public int deviceOkPreferredBlock() {
        return buffer.getInt(base + 28, ORDER);
    }

    public int deviceOkCapabilities() {
        return buffer.getInt(base + 32, ORDER);
    }

    // DEVICE_ERR
    public int encodeDeviceErr(int requestId, int status, String reason) {
        header(DEVICE_ERR);
        buffer.putInt(base + 4, requestId, ORDER);
        buffer.putInt(base + 8, status, ORDER);
        byte[] r = reason.getBytes(StandardCharsets.UTF_8);
        int n = Math.min(r.length, MAX_REASON);
        buffer.putShort(base + 12, (short) n, ORDER);
        buffer.putBytes(base + 14, r, 0, n);
        return 14 + n;
    }

    public int deviceErrStatus() {
        return buffer.getInt(base + 8, ORDER);
    }

    /** @param received the message's received length, so the reason never reads past it */
    public String deviceErrReason(int received) {
        int n = Math.min(buffer.getShort(base + 12, ORDER) & 0xFFFF, Math.min(MAX_REASON, received - 14));
        return n <= 0 ? "" : string(base + 14, n, MAX_REASON);
    }

    // DEVICE_CLOSE (client: stop serving this device id in this session) / DEVICE_CLOSED (storage: it is closed,
    // in answer to DEVICE_CLOSE or because the storage node stopped serving the device)
    public int encodeDeviceClose(int type, int deviceId, int status) {
        header(type);
        buffer.putInt(base + 4, deviceId, ORDER);
        buffer.putInt(base + 8, status, ORDER);
        return 12;
    }

    public int deviceCloseId() {
        return buffer.getInt(base + 4, ORDER);
    }

    public int deviceCloseStatus() {
        return buffer.getInt(base + 8, ORDER);
    }

    public int encodeClose() {
        header(CLOSE);
        return 4;
    }
}
