package io.weft.actors.drill.harness;

import io.weft.core.mirror.MirrorBlockDevice;

/**
 * The drill's own count, from its writes and flushes only and independent of the mirror's bitmap, of what the resync
 * of the fault leg should copy: the bitmap regions written while the leg was out, and the regions of the
 * activity-log extents the drill had not flushed when the leg was dropped (its node may lose what it had not flushed,
 * so the mirror marks those too). Inert on a plain device.
 *
 * <p>Threads: the workload thread records every completed write and flush (no allocation, no lock); the control
 * thread reads the counts after the workload thread has been joined.
 */
final class ResyncAccounting {
    private static final int BLOCK = DrillOptions.BLOCK;
    private static final int FLUSH_HISTORY = 16;

    private final MirrorBlockDevice mirror;
    private final DrillTimeline timeline;
    private final int regionSize;
    private final boolean[] regionWritten;
    /**
     * The mirror's activity-log extent (at least one region), as a shift: when a leg is dropped the mirror marks the
     * regions of every extent the log holds unflushed (its node may lose what it had not flushed), so its resync
     * copies those too. 0 on a plain device.
     */
    private final int extentShift;
    /** Per extent of the working set: the latest end of a drill write to it before the fault leg's drop. */
    private final long[] extentLastWriteEnd;
    /** The last successful FLUSHes that completed before the fault (submitted, completed): a ring. */
    private final long[] okFlushStart = new long[FLUSH_HISTORY];
    private final long[] okFlushEnd = new long[FLUSH_HISTORY];
    private int okFlushes;

    ResyncAccounting(MirrorBlockDevice mirror, long workingSetBytes, DrillTimeline timeline) {
        this.mirror = mirror;
        this.timeline = timeline;
        this.regionSize = mirror == null ? 0 : mirror.bitmap().regionSize();
        this.regionWritten = mirror == null ? new boolean[0]
                : new boolean[(int) ((workingSetBytes + regionSize - 1) / regionSize)];
        this.extentShift = mirror == null ? 0
                : Integer.numberOfTrailingZeros(Math.max(mirror.activityLog().extentSize(), regionSize));
        this.extentLastWriteEnd = mirror == null ? new long[0]
                : new long[(int) ((workingSetBytes + (1L << extentShift) - 1) >>> extentShift)];
    }

    /** A write completed, either way (a failed one may have landed). Workload thread. */
    void writeEnded(long firstBlock, int blocks, long startNanos, long endNanos) {
        countWhileOut(firstBlock, blocks, startNanos, endNanos);
        noteWriteEnd(firstBlock, blocks, endNanos);
    }

    /** A prefill write completed (before the fault: only its extent's last write time matters). Workload thread. */
    void prefillWriteEnded(long firstBlock, int blocks, long endNanos) {
        noteWriteEnd(firstBlock, blocks, endNanos);
    }

    /** Marks the bitmap regions of a write that completed (either way) while a fault leg was out. */
    private void countWhileOut(long firstBlock, int blocks, long startNanos, long endNanos) {
        if (mirror == null) {
            return;
        }
        long since = timeline.outSinceNanos();
        if (since == 0 || endNanos < since) {
            return;
        }
        long until = timeline.outUntilNanos();
        if (until != 0 && startNanos >= until) {
            return;
        }
        long first = firstBlock * BLOCK / regionSize;
        long last = ((firstBlock + blocks) * BLOCK - 1) / regionSize;
        for (long g = first; g <= last; g++) {
            regionWritten[(int) g] = true;
        }
    }

    /**
     * Remembers when a write (either outcome: a failed one may have landed) to each extent last ended before the
     * drop. One that ended later but is seen before the drop event only makes the bound larger, never smaller.
     */
    private void noteWriteEnd(long firstBlock, int blocks, long endNanos) {
        long since = timeline.outSinceNanos();
        if (extentLastWriteEnd.length == 0 || (since != 0 && endNanos >= since)) {
            return;
        }
        long first = firstBlock * BLOCK >>> extentShift;
        long last = ((firstBlock + blocks) * BLOCK - 1) >>> extentShift;
        for (long e = first; e <= last; e++) {
            extentLastWriteEnd[(int) e] = Math.max(extentLastWriteEnd[(int) e], endNanos);
        }
    }

    /** A successful FLUSH that ended before the fault (seen before it or not: filtered again by its end). */
    void flushSucceeded(long startNanos, long endNanos) {
        long fault = timeline.faultNanos();
        if (fault != 0 && endNanos >= fault) {
            return;
        }
        int i = okFlushes++ % FLUSH_HISTORY;
        okFlushStart[i] = startNanos;
        okFlushEnd[i] = endNanos;
    }

    /** Distinct bitmap regions written while the fault leg was out; -1 for a plain device. */
    long regionsWrittenWhileOut() {
        if (mirror == null) {
            return -1;
        }
        long written = 0;
        for (boolean w : regionWritten) {
            written += w ? 1 : 0;
        }
        return written;
    }

    /**
     * The drill's own upper bound, from its writes and flushes only (not the mirror's log), of the regions the mirror
     * marked for the fault leg at its drop besides those written while it was out: every region of each activity-log
     * extent that a drill write ended in after the submission of the last successful FLUSH completed before the fault
     * (the mirror counts a write flushed only by a flush round started after it ended; the fault, not the drop event:
     * the mirror marks the extents a moment before it stamps the drop). Writes before this drill (another drill, a
     * user) are not seen: their unflushed extents are not counted. -1 on a plain device or when no fault leg was
     * dropped.
     */
    long regionsUnflushedAtDrop() {
        long fault = timeline.faultNanos();
        if (mirror == null || timeline.outSinceNanos() == 0) {
            return -1;
        }
        long lastFlushStart = 0;
        for (int i = 0; i < Math.min(okFlushes, FLUSH_HISTORY); i++) {
            if (okFlushEnd[i] < fault) {
                lastFlushStart = Math.max(lastFlushStart, okFlushStart[i]);
            }
        }
        long deviceRegions = mirror.bitmap().regionCount();
        long regionsPerExtent = (1L << extentShift) / regionSize;
        long count = 0;
        for (int e = 0; e < extentLastWriteEnd.length; e++) {
            long end = extentLastWriteEnd[e];
            if (end == 0 || end < lastFlushStart) {
                continue;
            }
            for (long r = e * regionsPerExtent; r < Math.min((e + 1) * regionsPerExtent, deviceRegions); r++) {
                if (r >= regionWritten.length || !regionWritten[(int) r]) {
                    count++;
                }
            }
        }
        return count;
    }
}
