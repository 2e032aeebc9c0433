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
 *  kind: 1 = admin (control + heartbeats), 2 = IO (one per client queue)
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
    public static final short VERSION = 1;
    public static final int KIND_ADMIN = 1;
    public static final int KIND_IO = 2;
    public static final int REQUEST_LENGTH = 24;
    public static final int REPLY_LENGTH = 8;

    /** Reject reasons. */
    public static final int REJECT_MALFORMED = 1;
    public static final int REJECT_UNKNOWN_SESSION = 2;
    public static final int REJECT_SHUTTING_DOWN = 3;

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
