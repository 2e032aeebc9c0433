package io.weft.core.nbd;

import io.weft.core.io.BlockDevice;
import java.nio.ByteBuffer;

/**
 * Turns the extents a {@link BlockDevice} describes into base:allocation descriptors for one BLOCK_STATUS reply:
 * clipped to the request, merged where the flags agree, and cut only at minimum-block-size boundaries (the protocol
 * requires descriptor lengths to be multiples of it). Where a device boundary is not aligned, the two sides are
 * merged with the AND of their flags, which only ever under-reports holes and zeros (always safe).
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
    private long blockMask;
    private long blockSize;
    private long start;
    private long end;
    private long devicePosition;
    private boolean pending;
    private long pendingStart;
    private long pendingEnd;
    private int pendingFlags;

    /** Starts a reply for {@code [offset, offset + length)}; {@code blockSize} is a power of two. */
    void begin(ByteBuffer out, long offset, long length, int blockSize, int maxCount) {
        this.out = out;
        this.count = 0;
        this.maxCount = maxCount;
        this.blockSize = blockSize;
        this.blockMask = blockSize - 1L;
        this.start = offset;
        this.end = offset + length;
        this.devicePosition = offset;
        this.pending = false;
    }

    @Override
    public boolean accept(long length, int flags) {
        if (length <= 0 || count >= maxCount || devicePosition >= end) {
            return false;
        }
        long segStart = devicePosition;
        long segEnd = length >= end - segStart ? end : segStart + length;
        devicePosition = segEnd;
        int state = flags & (NbdProtocol.STATE_HOLE | NbdProtocol.STATE_ZERO);
        if (!pending) {
            pending = true;
            pendingStart = segStart;
            pendingFlags = state;
        } else if (state != pendingFlags) {
            if ((segStart & blockMask) == 0) {
                emit(pendingStart, segStart, pendingFlags);
                if (count >= maxCount) {
                    pending = false;
                    return false;
                }
                pendingStart = segStart;
                pendingFlags = state;
            } else {
                pendingFlags &= state;
            }
        }
        pendingEnd = segEnd;
        return devicePosition < end;
    }

    /** Closes the reply. @return number of descriptors written (at least one) */
    int finish() {
        if (count >= maxCount) {
            return count;
        }
        if (!pending) {
            // The device described nothing: "allocated, contents unknown" is always a truthful answer.
            emit(start, end, 0);
            return count;
        }
        long stop = pendingEnd;
        if (stop != end && (stop & blockMask) != 0) {
            stop &= ~blockMask;
            if (stop <= pendingStart) {
                stop = Math.min(pendingStart + blockSize, end);
                pendingFlags = 0;
            }
        }
        emit(pendingStart, stop, pendingFlags);
        return count;
    }

    private void emit(long from, long to, int flags) {
        int index = count * 8;
        out.putInt(index, (int) (to - from));
        out.putInt(index + 4, flags);
        count++;
    }
}
