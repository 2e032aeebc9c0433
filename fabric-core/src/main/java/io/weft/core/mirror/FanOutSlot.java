package io.weft.core.mirror;

import static io.weft.core.mirror.MirrorBlockDevice.MAX_LEGS;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicLong;

/**
 * One preallocated request slot of {@link MirrorFanOut}: the caller's request, its per-leg parts and the state
 * word (layout in {@link MirrorFanOut}'s class comment). The fields other than {@link #word} are written by the
 * thread that claimed the slot (its CAS on the word) before the parts are issued, and read by the completing
 * threads after; the slot is free again once the word's low half is 0.
 */
final class FanOutSlot {
    final int index;
    final AtomicLong word = new AtomicLong();
    long callerTag;
    IoCompletion callerCompletion;
    IoOp op;
    long offset;
    int length;
    int flags;
    ByteBuffer buffer;
    int position;
    int limit;
    volatile long issuedAt;
    int lastError;
    int skippedMask;
    /** The leg's resync epoch when this request was issued to it (which incarnation to blame). */
    final long[] legEpoch = new long[MAX_LEGS];
    /** The device each leg's part was issued to: where a cancel goes, and whether it was removed since. */
    final BlockDevice[] legDevice = new BlockDevice[MAX_LEGS];
    int firstRegion;
    int lastRegion;
    /** FLUSH only: the activity log's flush round this flush completes. */
    long flushRound;
    private final ByteBuffer[] viewSource = new ByteBuffer[MAX_LEGS];
    private final ByteBuffer[] views = new ByteBuffer[MAX_LEGS];

    FanOutSlot(int index) {
        this.index = index;
    }

    /** No leg view of another buffer: a write of {@code buffer} here allocates no view (see MirrorFanOut.claim). */
    boolean viewsFitFor(ByteBuffer buffer) {
        for (ByteBuffer source : viewSource) {
            if (source != null && source != buffer) {
                return false;
            }
        }
        return true;
    }

    /** The caller's buffer as seen by leg {@code leg}: own position and limit, same bytes. */
    ByteBuffer view(int leg, ByteBuffer buffer) {
        ByteBuffer v = views[leg];
        if (viewSource[leg] != buffer) {
            v = buffer.duplicate();
            views[leg] = v;
            viewSource[leg] = buffer;
        }
        v.limit(limit).position(position);
        return v;
    }
}
