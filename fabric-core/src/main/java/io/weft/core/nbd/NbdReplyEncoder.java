package io.weft.core.nbd;

import java.nio.ByteBuffer;

/**
 * Encodes transmission-phase reply headers in place into a (direct) buffer, without allocating.
 *
 * <p>Simple reply (16 bytes), followed by the data for a successful READ when structured replies are off:
 * <pre>
 *  0                   1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |              magic 0x67446698 (NBD_SIMPLE_REPLY_MAGIC)        |  0
 * +---------------------------------------------------------------+
 * |                     error (0 = success)                       |  4
 * +---------------------------------------------------------------+
 * |                   handle, as the request sent it              |  8
 * |                                                               |
 * +---------------------------------------------------------------+
 * </pre>
 *
 * <p>Structured reply chunk header (20 bytes), followed by {@code length} bytes of chunk payload:
 * <pre>
 * +---------------------------------------------------------------+
 * |             magic 0x668e33ef (NBD_STRUCTURED_REPLY_MAGIC)     |  0
 * +-------------------------------+-------------------------------+
 * |     flags (bit 0 = DONE)      |          chunk type           |  4
 * +-------------------------------+-------------------------------+
 * |                            handle                             |  8
 * |                                                               |
 * +---------------------------------------------------------------+
 * |                    payload length (unsigned)                  | 16
 * +---------------------------------------------------------------+
 * </pre>
 * Chunk payloads used here: OFFSET_DATA = 64-bit offset + data; ERROR = 32-bit error, 16-bit message length,
 * message; BLOCK_STATUS = 32-bit context id, then (32-bit extent length, 32-bit flags) descriptors.
 */
final class NbdReplyEncoder {
    private NbdReplyEncoder() {
    }

    /** @return bytes written (16) */
    static int simpleReply(ByteBuffer dst, int index, int error, long handle) {
        dst.putInt(index, NbdProtocol.SIMPLE_REPLY_MAGIC);
        dst.putInt(index + 4, error);
        dst.putLong(index + 8, handle);
        return NbdProtocol.SIMPLE_REPLY_LENGTH;
    }

    /** @return bytes written (20) */
    static int chunkHeader(ByteBuffer dst, int index, int flags, int type, long handle, int payloadLength) {
        dst.putInt(index, NbdProtocol.STRUCTURED_REPLY_MAGIC);
        dst.putShort(index + 4, (short) flags);
        dst.putShort(index + 6, (short) type);
        dst.putLong(index + 8, handle);
        dst.putInt(index + 16, payloadLength);
        return NbdProtocol.STRUCTURED_HEADER_LENGTH;
    }

    /** OFFSET_DATA chunk header plus its 8-byte offset; the data follows separately. @return bytes written (28) */
    static int offsetDataHeader(ByteBuffer dst, int index, long handle, long offset, int dataLength) {
        int n = chunkHeader(dst, index, NbdProtocol.REPLY_FLAG_DONE, NbdProtocol.REPLY_TYPE_OFFSET_DATA, handle,
                8 + dataLength);
        dst.putLong(index + n, offset);
        return n + 8;
    }

    /** A final ERROR chunk with a short human-readable message. @return bytes written */
    static int errorChunk(ByteBuffer dst, int index, long handle, int error, byte[] message) {
        int n = chunkHeader(dst, index, NbdProtocol.REPLY_FLAG_DONE, NbdProtocol.REPLY_TYPE_ERROR, handle,
                6 + message.length);
        dst.putInt(index + n, error);
        dst.putShort(index + n + 4, (short) message.length);
        dst.put(index + n + 6, message);
        return n + 6 + message.length;
    }

    /** Largest error chunk {@link #errorChunk} writes for the messages of {@link NbdErrors}. */
    static final int MAX_ERROR_CHUNK = NbdProtocol.STRUCTURED_HEADER_LENGTH + 6 + NbdErrors.MAX_MESSAGE;
}
