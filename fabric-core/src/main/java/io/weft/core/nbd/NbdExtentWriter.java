package io.weft.core.nbd;

import io.weft.core.io.BlockDevice;
import java.nio.ByteBuffer;

/**
 * Turns the extents a {@link BlockDevice} describes into base:allocation descriptors for one BLOCK_STATUS reply:
 * clipped to the request, cut only at minimum-block-size boundaries (the protocol requires descriptor lengths to be
 * multiples of it) and merged where the flags agree. A block that straddles a device boundary gets the AND of the
 * flags of its parts, which only ever under-reports holes and zeros (always safe). A trailing part-block the device
 * left undescribed is left out of the reply (the protocol lets a server describe less than asked).
 *
 * <p>Output: consecutive descriptors written from index 0 of the target buffer:
 * <pre>
 * +---------------------------------+---------------------------------+
 * |  extent length (32 bits, != 0)  |  status flags (HOLE=1, ZERO=2)  |   x count
 * +---------------------------------+---------------------------------+
 * </pre>
 * One instance per connection, reused for every request (no allocation).
 */
final class NbdExtentWriter implements BlockDevice.ExtentConsumer {
    private ByteBuffer out;
    private int count;
    private int maxCount;
    private long blockSize;
    private long blockMask;
    private long start;
    private long end;
    private long position;
    /** A run of whole blocks with equal flags, not yet written. */
    private boolean run;
    private long runStart;
    private long runEnd;
    private int runFlags;
    /** The block under {@link #position} when only part of it has been described. */
    private boolean partial;
    private int partialFlags;

    /** Starts a reply for {@code [offset, offset + length)}; both are multiples of {@code blockSize}. */
    void begin(ByteBuffer out, long offset, long length, int blockSize, int maxCount) {
        this.out = out;
        this.count = 0;
        this.maxCount = Math.min(maxCount, out.limit() / 8);
        this.blockSize = blockSize;
        this.blockMask = blockSize - 1L;
        this.start = offset;
        this.end = offset + length;
        this.position = offset;
        this.run = false;
        this.partial = false;
    }

    @Override
    public boolean accept(long length, int flags) {
        if (length <= 0 || count >= maxCount || position >= end) {
            return false;
        }
        int state = flags & (NbdProtocol.STATE_HOLE | NbdProtocol.STATE_ZERO);
        long segEnd = length >= end - position ? end : position + length;
        long p = position;
        while (p < segEnd && count < maxCount) {
            long blockStart = p & ~blockMask;
            long blockEnd = blockStart + blockSize;
            if (p != blockStart || segEnd < blockEnd) {
                // Part of a block: fold into its flags; the block is done once described to its end.
                partialFlags = partial ? partialFlags & state : state;
                partial = true;
                if (segEnd >= blockEnd) {
                    partial = false;
                    addBlocks(blockStart, blockEnd, partialFlags);
                    p = blockEnd;
                } else {
                    p = segEnd;
                }
            } else {
                long wholeEnd = segEnd & ~blockMask;
                addBlocks(p, wholeEnd, state);
                p = wholeEnd;
            }
        }
        position = segEnd;
        return position < end && count < maxCount;
    }

    private void addBlocks(long from, long to, int flags) {
        if (run && runFlags == flags && runEnd == from) {
            runEnd = to;
            return;
        }
        if (run) {
            emit(runStart, runEnd, runFlags);
        }
        run = count < maxCount;
        runStart = from;
        runEnd = to;
        runFlags = flags;
    }

    /** Closes the reply. @return number of descriptors written (at least one) */
    int finish() {
        if (run && count < maxCount) {
            emit(runStart, runEnd, runFlags);
        }
        if (count == 0) {
            // Nothing whole was described: "allocated, contents unknown" is always a truthful answer.
            emit(start, partial ? Math.min(end, (position & ~blockMask) + blockSize) : end, 0);
        }
        return count;
    }

    private void emit(long from, long to, int flags) {
        int index = count * 8;
        out.putInt(index, (int) (to - from));
        out.putInt(index + 4, flags);
        count++;
    }
}
