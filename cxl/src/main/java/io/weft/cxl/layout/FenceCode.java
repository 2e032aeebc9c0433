package io.weft.cxl.layout;

/** Why a channel was fenced; the code is stored in the control area next to a human-readable reason. */
public enum FenceCode {
    NONE,
    /** A ring index moved backwards or further than the ring allows. */
    WILD_INDEX,
    /** A submission's data offset/length leaves the data area or its slot. */
    DATA_OUT_OF_BOUNDS,
    /** A request leaves the device (offset/length/alignment) or is malformed (op, flags). */
    BAD_REQUEST,
    /** A ring entry's CRC32C does not match. */
    ENTRY_CHECKSUM,
    /** A payload's CRC32C does not match. */
    DATA_CHECKSUM,
    /** A request id is not the one the ring position implies. */
    REQUEST_SEQUENCE,
    /** The channel's geometry in the control area disagrees with the region header. */
    GEOMETRY;

    private static final FenceCode[] VALUES = values();

    public static FenceCode of(int code) {
        return code >= 0 && code < VALUES.length ? VALUES[code] : BAD_REQUEST;
    }
}
