package io.weft.rdma.protocol;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Private data of a connect request (client to storage) and of its accept reply. Little-endian, fits the 56 bytes
 * RDMA CM allows.
 *
 * <pre>
 * request (24 bytes):
 *  0               4       6       7       8
 *  +---------------+-------+-------+-------+-------------------------------+
 *  | magic "WFTR"  |version| kind  | queue |   session token (IO only)     |
 *  +---------------+-------+-------+-------+-------------------------------+
 *  16              20              24
 *  | path id       | generation    |
 *  +---------------+---------------+
 *  version: {@link #VERSION} (u16); a request of another version is rejected with {@link #REJECT_VERSION}
 *  kind: 1 = admin (control + heartbeats), 2 = IO (one per client queue)
 *  session token (IO only): 64 bits from SecureRandom that the storage side reveals only in OPEN_OK, after the
 *  session's capability was proven on an admin connection (ControlMessage); an unknown token is rejected
 *  generation (IO only): the client's number for this set of IO connections of the path (u32, never reused within a
 *  client session); a FENCE names it (see ControlMessage)
 *
 * accept reply (8 bytes):
 *  0               4               6               8
 *  +---------------+---------------+---------------+
 *  | magic "WFTR"  |version (u16)  | status (u16)  |
 *  +---------------+---------------+---------------+
 * </pre>
 */
public final class ConnectData {
    public static final int MAGIC = 0x52544657; // "WFTR"
    /** 3: sessions per client and storage node with devices inside (ControlMessage version 3); 2: capabilities. */
    public static final short VERSION = 3;
    public static final int KIND_ADMIN = 1;
    public static final int KIND_IO = 2;
    public static final int REQUEST_LENGTH = 24;
    public static final int REPLY_LENGTH = 8;

    /** Reject reasons. */
    public static final int REJECT_MALFORMED = 1;
    public static final int REJECT_UNKNOWN_SESSION = 2;
    public static final int REJECT_SHUTTING_DOWN = 3;
    /** The request's protocol version is not this node's. */
    public static final int REJECT_VERSION = 4;
    /** Too many admin connections from the peer's address have not authenticated yet. */
    public static final int REJECT_BUSY = 5;

    /** Why a connect request was rejected, for the client's error message. */
    public static String describeReject(int reason) {
        switch (reason) {
            case REJECT_MALFORMED: return "malformed connect data (a storage node of another Weft version?)";
            case REJECT_UNKNOWN_SESSION: return "unknown session token";
            case REJECT_SHUTTING_DOWN: return "storage node shutting down";
            case REJECT_VERSION: return "the storage node speaks another RDMA protocol version (this node speaks "
                    + VERSION + "); run the same Weft version on both nodes";
            case REJECT_BUSY: return "too many unauthenticated admin connections from this address"
                    + " (weft.rdma.max-unauthenticated-per-address on the storage node)";
            default: return "reason " + reason;
        }
    }

    /**
     * @return the version of a request that carries the Weft magic, or -1 when it does not (for telling a peer of
     * another version from garbage)
     */
    public static int requestVersion(ByteBuffer data) {
        ByteBuffer b = data.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        if (b.remaining() < 6 || b.getInt(b.position()) != MAGIC) {
            return -1;
        }
        return b.getShort(b.position() + 4) & 0xFFFF;
    }

    private ConnectData() {
    }

    public static byte[] request(int kind, int queue, long token, int pathId) {
        return request(kind, queue, token, pathId, 0);
    }

    public static byte[] request(int kind, int queue, long token, int pathId, int generation) {
        ByteBuffer b = ByteBuffer.allocate(REQUEST_LENGTH).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(0, MAGIC).putShort(4, VERSION).put(6, (byte) kind).put(7, (byte) queue).putLong(8, token)
                .putInt(16, pathId).putInt(20, generation);
        return b.array();
    }

    public static byte[] reply(int status) {
        ByteBuffer b = ByteBuffer.allocate(REPLY_LENGTH).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(0, MAGIC).putShort(4, VERSION).putShort(6, (short) status);
        return b.array();
    }

    /** Decoded request; {@code null} from {@link #parseRequest} when malformed. */
    public record Request(int kind, int queue, long token, int pathId, int generation) {
    }

    public static Request parseRequest(ByteBuffer data) {
        ByteBuffer b = data.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        if (b.remaining() < REQUEST_LENGTH) {
            return null;
        }
        int p = b.position();
        if (b.getInt(p) != MAGIC || b.getShort(p + 4) != VERSION) {
            return null;
        }
        int kind = b.get(p + 6);
        if (kind != KIND_ADMIN && kind != KIND_IO) {
            return null;
        }
        return new Request(kind, b.get(p + 7) & 0xFF, b.getLong(p + 8), b.getInt(p + 16), b.getInt(p + 20));
    }

    /** @return the reply status, or -1 when the reply is not a Weft reply */
    public static int parseReply(ByteBuffer data) {
        ByteBuffer b = data.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        if (b.remaining() < REPLY_LENGTH) {
            return -1;
        }
        int p = b.position();
        if (b.getInt(p) != MAGIC || b.getShort(p + 4) != VERSION) {
            return -1;
        }
        return b.getShort(p + 6) & 0xFFFF;
    }
}
