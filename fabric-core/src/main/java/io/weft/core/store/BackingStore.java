package io.weft.core.store;

import io.weft.core.io.BlockDevice;
import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * Synchronous positional access to a file or raw block device on a storage node. Callers have already checked every
 * request against {@link #size()} and alignment (see {@link io.weft.core.io.IoRequests}); a store still refuses
 * out-of-range requests with an {@link IOException} rather than touching bytes outside itself.
 */
public interface BackingStore extends AutoCloseable {

    /** Path this store was opened from (for logs and status tables). */
    String path();

    /** Current size in bytes. */
    long size();

    boolean readOnly();

    /** Logical block size: 512 for files, the device's for raw block devices, 4096 when O_DIRECT is on. */
    int logicalBlockSize();

    /** Whether a hole can be punched (DISCARD frees space, WRITE_ZEROES can be a metadata operation). */
    boolean canPunchHoles();

    /** True for spinning media (raw devices report it; files say false). */
    default boolean rotational() {
        return false;
    }

    /** Reads exactly {@code dst.remaining()} bytes at {@code offset} into {@code dst}. */
    void read(long offset, ByteBuffer dst) throws IOException;

    /** Writes all of {@code src.remaining()} at {@code offset}; {@code fua} makes it durable before returning. */
    void write(long offset, ByteBuffer src, boolean fua) throws IOException;

    /** Makes every completed write durable. */
    void flush() throws IOException;

    /** Frees the range where possible; never fails just because punching is unsupported. */
    void discard(long offset, long length) throws IOException;

    /**
     * Makes the range read as zeros.
     *
     * @param mayPunch   deallocating is allowed (NBD without NO_HOLE)
     * @param fastOnly   only succeed if it needs no data writes; otherwise throw {@link UnsupportedOperationException}
     */
    void writeZeroes(long offset, long length, boolean mayPunch, boolean fastOnly) throws IOException;

    /** See {@link BlockDevice#describeExtents}. */
    default long describeExtents(long offset, long length, BlockDevice.ExtentConsumer consumer) throws IOException {
        consumer.accept(length, 0);
        return length;
    }

    /** Grows or shrinks a file store; raw devices refuse. */
    void resize(long newSize) throws IOException;

    @Override
    void close() throws IOException;
}
