package io.weft.core.nbd;

import java.nio.ByteBuffer;

/**
 * Flyweight over one NBD transmission request header inside a receive buffer. Nothing is copied or allocated: the
 * accessors read the wire bytes in place (big-endian, which is {@link ByteBuffer}'s default order).
 *
 * <pre>
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                  magic 0x25609513 (NBD_REQUEST_MAGIC)         |  0
 * +-------------------------------+-------------------------------+
 * |        command flags          |         command type          |  4
 * +-------------------------------+-------------------------------+
 * |                      handle (cookie), 64 bits                 |  8
 * |                                                               |
 * +---------------------------------------------------------------+
 * |                   offset, 64 bits unsigned                    | 16
 * |                                                               |
 * +---------------------------------------------------------------+
 * |                   length, 32 bits unsigned                    | 24
 * +---------------------------------------------------------------+
 *   then, for NBD_CMD_WRITE only, length bytes of payload          28
 * </pre>
 *
 * Unsigned fields are returned widened ({@code offset} stays a long: values above {@code Long.MAX_VALUE} come back
 * negative and are rejected by the range check).
 */
final class NbdRequestHeader {
    static final int MAGIC_OFFSET = 0;
    static final int FLAGS_OFFSET = 4;
    static final int TYPE_OFFSET = 6;
    static final int HANDLE_OFFSET = 8;
    static final int OFFSET_OFFSET = 16;
    static final int LENGTH_OFFSET = 24;
    static final int LENGTH = NbdProtocol.REQUEST_HEADER_LENGTH;

    private ByteBuffer buffer;
    private int base;

    /** Points the flyweight at {@code LENGTH} bytes starting at {@code index}; the caller checked they are there. */
    NbdRequestHeader wrap(ByteBuffer buffer, int index) {
        this.buffer = buffer;
        this.base = index;
        return this;
    }

    int magic() {
        return buffer.getInt(base + MAGIC_OFFSET);
    }

    int flags() {
        return buffer.getShort(base + FLAGS_OFFSET) & 0xffff;
    }

    int type() {
        return buffer.getShort(base + TYPE_OFFSET) & 0xffff;
    }

    long handle() {
        return buffer.getLong(base + HANDLE_OFFSET);
    }

    long offset() {
        return buffer.getLong(base + OFFSET_OFFSET);
    }

    /** Length as an unsigned 32-bit value. */
    long length() {
        return buffer.getInt(base + LENGTH_OFFSET) & 0xffffffffL;
    }

    /** Writes a header (used by tests and tools that speak the client side). */
    static void encode(ByteBuffer dst, int index, int flags, int type, long handle, long offset, int length) {
        dst.putInt(index + MAGIC_OFFSET, NbdProtocol.REQUEST_MAGIC);
        dst.putShort(index + FLAGS_OFFSET, (short) flags);
        dst.putShort(index + TYPE_OFFSET, (short) type);
        dst.putLong(index + HANDLE_OFFSET, handle);
        dst.putLong(index + OFFSET_OFFSET, offset);
        dst.putInt(index + LENGTH_OFFSET, length);
    }
}
