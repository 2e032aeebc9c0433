package io.weft.rdma.protocol;

import java.nio.ByteOrder;
import org.agrona.DirectBuffer;
import org.agrona.MutableDirectBuffer;

/**
 * Flyweight over the 64-byte request header the client RDMA-writes at the start of its chunk (little-endian).
 * For a WRITE the payload follows the header in the same RDMA write; for a READ the header names the client's
 * registered buffer the storage side writes the data into.
 *
 * <pre>
 *  0       1       2               4                               8
 *  +-------+-------+---------------+-------------------------------+
 *  |  op   | rsvd  |   reserved    |          IoFlags bits         |
 *  +-------+-------+---------------+-------------------------------+
 *  |                       device offset (bytes)                   |  8
 *  +-------------------------------+-------------------------------+
 *  |        length (bytes)         |    device id (session's)      |  16
 *  +-------------------------------+-------------------------------+
 *  |               READ: client buffer virtual address             |  24
 *  +-------------------------------+-------------------------------+
 *  |     READ: client buffer rkey  |  READ: client buffer length   |  32
 *  +-------------------------------+-------------------------------+
 *  |                  sequence (diagnostics only)                  |  40
 *  +---------------------------------------------------------------+
 *  |                     reserved (16 bytes)                       |  48..63
 *  +---------------------------------------------------------------+
 *  |               WRITE: payload (length bytes)                 ...  64
 * </pre>
 */
public final class RequestHeader {
    public static final int LENGTH = 64;
    private static final int OP = 0;
    private static final int FLAGS = 4;
    private static final int OFFSET = 8;
    private static final int IO_LENGTH = 16;
    private static final int DEVICE_ID = 20;
    private static final int READ_ADDRESS = 24;
    private static final int READ_RKEY = 32;
    private static final int READ_LENGTH = 36;
    private static final int SEQUENCE = 40;
    private static final ByteOrder ORDER = ByteOrder.LITTLE_ENDIAN;

    private DirectBuffer buffer;
    private MutableDirectBuffer mutable;
    private int base;

    /** Wraps for reading; the caller has checked that {@code [base, base + LENGTH)} lies in the buffer. */
    public RequestHeader wrap(DirectBuffer buffer, int base) {
        this.buffer = buffer;
        this.mutable = buffer instanceof MutableDirectBuffer ? (MutableDirectBuffer) buffer : null;
        this.base = base;
        return this;
    }

    public int op() {
        return buffer.getByte(base + OP) & 0xFF;
    }

    public int flags() {
        return buffer.getInt(base + FLAGS, ORDER);
    }

    public long offset() {
        return buffer.getLong(base + OFFSET, ORDER);
    }

    /** Signed on purpose: a hostile negative length fails the range checks instead of wrapping. */
    public int length() {
        return buffer.getInt(base + IO_LENGTH, ORDER);
    }

    /** The device (opened in this session by DEVICE_OPEN) the request is for; read once, bounded by the server. */
    public int deviceId() {
        return buffer.getInt(base + DEVICE_ID, ORDER);
    }

    public long readAddress() {
        return buffer.getLong(base + READ_ADDRESS, ORDER);
    }

    public int readRkey() {
        return buffer.getInt(base + READ_RKEY, ORDER);
    }

    public int readLength() {
        return buffer.getInt(base + READ_LENGTH, ORDER);
    }

    public long sequence() {
        return buffer.getLong(base + SEQUENCE, ORDER);
    }

    /** As the full form with device id 0, which no session ever opens (kept for the codec benchmark in bench/). */
    public void encode(int op, int flags, long offset, int length, long readAddress, int readRkey, int readLength,
                       long sequence) {
        encode(op, flags, offset, length, 0, readAddress, readRkey, readLength, sequence);
    }

    /** Writes a whole header (reserved fields zeroed). */
    public void encode(int op, int flags, long offset, int length, int deviceId, long readAddress, int readRkey,
                       int readLength, long sequence) {
        mutable.setMemory(base, LENGTH, (byte) 0);
        mutable.putByte(base + OP, (byte) op);
        mutable.putInt(base + FLAGS, flags, ORDER);
        mutable.putLong(base + OFFSET, offset, ORDER);
        mutable.putInt(base + IO_LENGTH, length, ORDER);
        mutable.putInt(base + DEVICE_ID, deviceId, ORDER);
        mutable.putLong(base + READ_ADDRESS, readAddress, ORDER);
        mutable.putInt(base + READ_RKEY, readRkey, ORDER);
        mutable.putInt(base + READ_LENGTH, readLength, ORDER);
        mutable.putLong(base + SEQUENCE, sequence, ORDER);
    }
}
