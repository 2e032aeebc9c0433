package io.weft.core.io;

/**
 * The block operations every Weft device understands. The ordinal is stable and is what travels on Weft's own wires
 * (CXL rings, RDMA frames): append new operations at the end, never reorder.
 */
public enum IoOp {
    /** Read {@code length} bytes at {@code offset} into the caller's buffer. */
    READ,
    /** Write {@code length} bytes from the caller's buffer at {@code offset}. */
    WRITE,
    /** Make every write completed before this request durable. */
    FLUSH,
    /** The range's contents may be dropped; later reads return zeros or the old data (NBD TRIM). */
    DISCARD,
    /** The range must read back as zeros afterwards; may deallocate unless {@link IoFlags#NO_HOLE}. */
    WRITE_ZEROES;

    private static final IoOp[] VALUES = values();

    /** Decodes a wire ordinal; returns {@code null} for an unknown one so callers can reject it without throwing. */
    public static IoOp fromCode(int code) {
        return code >= 0 && code < VALUES.length ? VALUES[code] : null;
    }

    /** True when the operation carries a data payload from the client to the device. */
    public boolean carriesPayload() {
        return this == WRITE;
    }

    /** True when the operation returns a data payload from the device to the client. */
    public boolean returnsPayload() {
        return this == READ;
    }
}
