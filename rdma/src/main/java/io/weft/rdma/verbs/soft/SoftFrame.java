package io.weft.rdma.verbs.soft;

/**
 * Frame layout of the software provider's TCP stream (little-endian). Every verb becomes one frame; the receiver
 * does what an RNIC's responder would do, including refusing writes outside registered memory.
 *
 * <pre>
 *  0       1       2               4                               8
 *  +-------+-------+---------------+-------------------------------+
 *  | type  | rsvd  |   reserved    |        payload length         |
 *  +-------+-------+---------------+-------------------------------+
 *  |                  remote address (RDMA write)                  |  8
 *  +-------------------------------+-------------------------------+
 *  |        rkey (RDMA write)      |  immediate / status / reason  |  16
 *  +-------------------------------+-------------------------------+
 *  |                       payload (length bytes)                ...  24
 * </pre>
 *
 * <ul>
 *   <li>{@link #HELLO}: connect request; payload = magic u32, version u16, private-data length u16, private data.</li>
 *   <li>{@link #ACCEPT}: payload = the acceptor's private data. {@link #REJECT}: immediate = reason.</li>
 *   <li>{@link #WRITE} / {@link #WRITE_IMM}: payload lands at remote address, which with {@code length} must lie
 *   in a region of the receiving connection's protection domain whose rkey matches.</li>
 *   <li>{@link #SEND}: payload goes into the next posted receive.</li>
 *   <li>{@link #ERROR}: the sender hit a fatal error on this connection; immediate = {@code WcStatus} code,
 *   payload = UTF-8 reason. The connection is closed after it.</li>
 * </ul>
 */
final class SoftFrame {
    static final int HEADER_LENGTH = 24;
    static final int TYPE_OFFSET = 0;
    static final int LENGTH_OFFSET = 4;
    static final int ADDRESS_OFFSET = 8;
    static final int RKEY_OFFSET = 16;
    static final int IMMEDIATE_OFFSET = 20;

    static final byte HELLO = 1;
    static final byte ACCEPT = 2;
    static final byte REJECT = 3;
    static final byte WRITE = 4;
    static final byte WRITE_IMM = 5;
    static final byte SEND = 6;
    static final byte ERROR = 7;

    /** "WSVB": Weft software verbs. */
    static final int HELLO_MAGIC = 0x42565357;
    static final short VERSION = 1;
    static final int HELLO_FIXED_LENGTH = 8;
    /** Longest error reason carried in an ERROR frame. */
    static final int MAX_REASON = 200;

    private SoftFrame() {
    }
}
