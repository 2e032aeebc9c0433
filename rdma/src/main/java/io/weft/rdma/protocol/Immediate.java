package io.weft.rdma.protocol;

/**
 * The 32-bit immediate carried by every IO message.
 *
 * <pre>
 *  31      28 27                  16 15                              0
 *  +---------+----------------------+--------------------------------+
 *  |  type   | status (responses)   |          chunk index           |
 *  +---------+----------------------+--------------------------------+
 * </pre>
 * type 1 = request (status bits must be 0), 2 = response. Status is an {@code IoStatus} code (0..4095).
 */
public final class Immediate {
    public static final int TYPE_REQUEST = 1;
    public static final int TYPE_RESPONSE = 2;
    public static final int MAX_CHUNKS = 1 << 16;
    public static final int MAX_STATUS = 0xFFF;

    private Immediate() {
    }

    public static int request(int chunk) {
        return (TYPE_REQUEST << 28) | (chunk & 0xFFFF);
    }

    public static int response(int chunk, int status) {
        int s = status < 0 || status > MAX_STATUS ? io.weft.core.io.IoStatus.EIO : status;
        return (TYPE_RESPONSE << 28) | (s << 16) | (chunk & 0xFFFF);
    }

    public static int type(int immediate) {
        return immediate >>> 28;
    }

    public static int status(int immediate) {
        return (immediate >>> 16) & MAX_STATUS;
    }

    public static int chunk(int immediate) {
        return immediate & 0xFFFF;
    }
}
