package io.weft.core.io;

/** Per-request flag bits. Plain ints so a request never allocates; the same bits travel on Weft's wires. */
public final class IoFlags {
    /** Force unit access: the write (or zeroing) is durable before it completes. */
    public static final int FUA = 1;
    /** For {@link IoOp#WRITE_ZEROES}: keep the range allocated (do not punch a hole). */
    public static final int NO_HOLE = 1 << 1;
    /** For {@link IoOp#WRITE_ZEROES}: fail with {@link IoStatus#ENOTSUP} rather than zero slowly. */
    public static final int FAST_ZERO = 1 << 2;

    /** Every bit defined above; anything else received from a peer is rejected. */
    public static final int ALL = FUA | NO_HOLE | FAST_ZERO;

    private IoFlags() {
    }

    public static boolean has(int flags, int bit) {
        return (flags & bit) != 0;
    }
}
