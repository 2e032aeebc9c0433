package io.weft.core.mirror;

import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * The mirror's activity log (in the spirit of DRBD's): a small, durable set of the extents that writes may be in
 * flight to, so that after a client crash or unclean stop exactly the regions where the legs may differ are
 * resynced, instead of none (the legs silently differing) or all (a full sync).
 *
 * <h2>What is logged when</h2>
 * The device is divided into extents of {@code extentSize} bytes (a power of two, at least one bitmap region). Before
 * a write, discard or zeroing goes to any leg, {@link #begin} makes every extent it touches <em>active</em>: an
 * extent already in the log costs an atomic increment and a volatile read (no IO); a miss adds the extent to a free
 * slot of the log and forces the slot to disk (one msync of the bitmap file's header page) before returning. The log
 * has {@code capacity} slots (LRU); when it is full, the least recently used extent that is <em>idle</em> (no write
 * to it in flight) and <em>flushed</em> (a FLUSH that started after its last write completed has succeeded on every
 * live leg) gives its slot up. If no idle extent is flushed yet, the log first flushes every live leg once (one
 * round makes every extent idle at that moment flushed, so the cost is shared by the following misses). A request
 * wider than half the log, or a miss that finds every extent busy (or a flush that fails), is recorded in the
 * write-intent bitmap instead ({@link WriteIntentBitmap#markDirty}, equally durable and equally resynced).
 *
 * <h2>After a crash</h2>
 * A log that is not empty when a device is constructed means the last owner stopped uncleanly: {@link #loggedSlots}
 * lists the extents, {@link MirrorBlockDevice} marks their regions in the bitmap and resyncs them from one in-sync
 * leg to the others before more than one leg serves reads. {@link #closeCleanly} empties the log after flushing the
 * legs when no write is in flight.
 *
 * <h2>Threads and ownership</h2>
 * {@link #begin} and {@link #end} run on the submitting and completing threads (any); the per-extent counters and
 * slot map are atomics; the miss path, eviction and the on-disk slots are guarded by {@code lock}. The LRU stamps are
 * plain racy stores (an approximate LRU is fine). No allocation after construction.
 */
public final class ActivityLog {
    /** Default number of active extents (see docs/mirror.md "Activity log"). */
    public static final int DEFAULT_EXTENTS = 256;
    /** Default extent: 4 MiB. */
    public static final int DEFAULT_EXTENT_SIZE = 4 << 20;

    /** Flushes every live leg; true when each one flushed (or was dropped, so its contents no longer count). */
    public interface LegFlusher {
        boolean flushLiveLegs();
    }

    private final WriteIntentBitmap bitmap;
    private final LegFlusher flusher;
    private final int capacity;
    private final int extentShift;
    private final int regionsPerExtent;
    private final long extentCount;
    private final long deviceSize;
    /** Per extent: writes begun and not yet ended. */
    private final AtomicIntegerArray writesInFlight;
    /** Per extent: its slot + 1, 0 when not in the log. Set only after the slot is durable. */
    private final AtomicIntegerArray slotOfExtent;
    /** Per extent: the first flush round that covers its last completed write. */
    private final AtomicLongArray flushedByRound;
    /** Per slot (guarded by lock): its extent, -1 if free. */
    private final long[] slotExtent;
    /** Per slot: LRU stamp (racy). */
    private final long[] lastUse;
    private long clock;
    private final AtomicLong flushRoundsStarted = new AtomicLong();
    private final AtomicLong flushRoundsDone = new AtomicLong();
    private final Object lock = new Object();
    private volatile long misses;
    private volatile long flushRounds;
    private volatile long overflows;

    /**
     * @param capacity   active extents kept (1..{@link WriteIntentBitmap#ACTIVITY_SLOTS})
     * @param extentSize bytes per extent (power of two; raised to the bitmap's region size if smaller)
     */
    public ActivityLog(WriteIntentBitmap bitmap, int capacity, int extentSize, LegFlusher flusher) {
        if (capacity < 1 || capacity > WriteIntentBitmap.ACTIVITY_SLOTS) {
            throw new IllegalArgumentException("activity extents must be 1.." + WriteIntentBitmap.ACTIVITY_SLOTS
                    + ": " + capacity);
        }
        if (extentSize <= 0 || Integer.bitCount(extentSize) != 1) {
            throw new IllegalArgumentException("activity extent size must be a power of two: " + extentSize);
        }
        this.bitmap = bitmap;
        this.flusher = flusher;
        this.capacity = capacity;
        int size = Math.max(extentSize, bitmap.regionSize());
        this.extentShift = Integer.numberOfTrailingZeros(size);
        this.regionsPerExtent = size / bitmap.regionSize();
        this.deviceSize = bitmap.deviceSize();
        this.extentCount = (deviceSize + size - 1) >>> extentShift;
        if (extentCount > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("too many activity extents; use a larger extent size");
        }
        this.writesInFlight = new AtomicIntegerArray((int) extentCount);
        this.slotOfExtent = new AtomicIntegerArray((int) extentCount);
        this.flushedByRound = new AtomicLongArray((int) extentCount);
        this.slotExtent = new long[capacity];
        this.lastUse = new long[capacity];
        java.util.Arrays.fill(slotExtent, -1);
    }

    public int capacity() {
        return capacity;
    }

    public int extentSize() {
        return 1 << extentShift;
    }

    /** Extents added to the log so far (each one forced a slot to disk). */
    public long misses() {
        return misses;
    }

    /** Flushes of every live leg the log issued to free a slot. */
    public long flushRounds() {
        return flushRounds;
    }

    /** Requests recorded in the bitmap instead (too wide, or the log could not free a slot). */
    public long overflows() {
        return overflows;
    }

    /** Extents in the log now. */
    public int activeExtents() {
        int n = 0;
        for (int i = 0; i < WriteIntentBitmap.ACTIVITY_SLOTS; i++) {
            if (bitmap.activitySlot(i) != 0) {
                n++;
            }
        }
        return n;
    }

    // ------------------------------------------------------------------------------------ crash recovery

    /**
     * The log as found on disk (every slot, whatever the configured capacity): non-empty means the last owner did
     * not close cleanly. Each entry is {@code firstRegion << 32 | regionCount}.
     */
    public long[] loggedSlots() {
        int n = activeExtents();
        long[] out = new long[n];
        int k = 0;
        for (int i = 0; i < WriteIntentBitmap.ACTIVITY_SLOTS && k < n; i++) {
            long v = bitmap.activitySlot(i);
            if (v != 0) {
                long first = (v & 0xFFFF_FFFFL) - 1;
                long count = v >>> 32;
                out[k++] = first << 32 | count;
            }
        }
        return out;
    }

    /** Empties the log on disk and in memory (after recovery has moved the logged extents into the bitmap). */
    public void clear() {
        synchronized (lock) {
            for (int i = 0; i < WriteIntentBitmap.ACTIVITY_SLOTS; i++) {
                bitmap.putActivitySlot(i, 0);
            }
            bitmap.forceActivityLog();
            for (int i = 0; i < capacity; i++) {
                long e = slotExtent[i];
                if (e >= 0) {
                    slotOfExtent.set((int) e, 0);
                    slotExtent[i] = -1;
                }
            }
        }
    }

    // ------------------------------------------------------------------------------------ IO path

    private boolean tooWide(long offset, int length) {
        // Extents beyond the first; a request confined to one extent always fits, even in a log of one.
        return ((offset + length - 1) >>> extentShift) - (offset >>> extentShift) >= Math.max(1, capacity / 2);
    }

    /**
     * Before a write-like request goes to any leg: makes its extents active (durably), or records the request in the
     * bitmap. Must be paired with {@link #end} with the same arguments.
     */
    public void begin(long offset, int length) {
        if (length <= 0 || offset < 0 || offset >= deviceSize) {
            return;
        }
        if (tooWide(offset, length)) {
            overflows++;
            bitmap.markDirty(offset, length);
            return;
        }
        int first = (int) (offset >>> extentShift);
        int last = (int) ((offset + length - 1) >>> extentShift);
        for (int e = first; e <= last; e++) {
            writesInFlight.incrementAndGet(e);
            // Dekker pair with tryEvict: count first, then look; an evictor clears the slot first, then counts.
            int s = slotOfExtent.get(e);
            if (s != 0) {
                lastUse[s - 1] = ++clock;
            } else if (!admit(e)) {
                overflows++;
                bitmap.markDirty((long) e << extentShift, 1L << extentShift);
            }
        }
    }

    /** The request begun with the same arguments has completed on every leg it went to. */
    public void end(long offset, int length) {
        if (length <= 0 || offset < 0 || offset >= deviceSize || tooWide(offset, length)) {
            return;
        }
        int first = (int) (offset >>> extentShift);
        int last = (int) ((offset + length - 1) >>> extentShift);
        long coveredBy = flushRoundsStarted.get() + 1;
        for (int e = first; e <= last; e++) {
            // Before the decrement: an evictor that sees the extent idle also sees it unflushed.
            flushedByRound.set(e, coveredBy);
            writesInFlight.decrementAndGet(e);
        }
    }

    /** A FLUSH of every live leg is about to be issued; pass the result to {@link #flushRoundDone} if it succeeds. */
    public long startFlushRound() {
        return flushRoundsStarted.incrementAndGet();
    }

    /** The flush round {@code round} succeeded on every leg it went to (or the legs that failed it were dropped). */
    public void flushRoundDone(long round) {
        flushRoundsDone.accumulateAndGet(round, Math::max); // rounds may finish out of order: keep the highest
    }

    private boolean flushed(int e) {
        return flushedByRound.get(e) <= flushRoundsDone.get();
    }

    /** The miss path: put extent {@code e} in the log durably. False if no slot could be freed. */
    private boolean admit(int e) {
        synchronized (lock) {
            int s = slotOfExtent.get(e);
            if (s != 0) {
                lastUse[s - 1] = ++clock;
                return true;
            }
            int free = -1;
            for (int i = 0; i < capacity; i++) {
                if (slotExtent[i] < 0) {
                    free = i;
                    break;
                }
            }
            if (free < 0) {
                free = evictLeastRecentlyUsed();
                if (free < 0) {
                    flushRounds++;
                    long round = startFlushRound();
                    if (flusher.flushLiveLegs()) {
                        flushRoundDone(round);
                        free = evictLeastRecentlyUsed();
                    }
                }
                if (free < 0) {
                    return false;
                }
            }
            long first = (long) e * regionsPerExtent;
            long count = Math.min(regionsPerExtent, bitmap.regionCount() - first);
            // One aligned 8-byte store replaces the evicted extent (flushed: losing it costs nothing) by this one.
            bitmap.putActivitySlot(free, count << 32 | (first + 1));
            bitmap.forceActivityLog();
            slotExtent[free] = e;
            lastUse[free] = ++clock;
            slotOfExtent.set(e, free + 1);
            misses++;
            return true;
        }
    }

    /** Frees the slot of the least recently used idle, flushed extent; -1 if there is none. */
    private int evictLeastRecentlyUsed() {
        while (true) {
            int victim = -1;
            long oldest = Long.MAX_VALUE;
            for (int i = 0; i < capacity; i++) {
                long e = slotExtent[i];
                if (e >= 0 && lastUse[i] < oldest && writesInFlight.get((int) e) == 0 && flushed((int) e)) {
                    oldest = lastUse[i];
                    victim = i;
                }
            }
            if (victim < 0) {
                return -1;
            }
            int e = (int) slotExtent[victim];
            slotOfExtent.set(e, 0);
            if (writesInFlight.get(e) != 0 || !flushed(e)) {
                // A write began meanwhile: it saw the slot (and counts on it) or is waiting for this lock.
                slotOfExtent.set(e, victim + 1);
                lastUse[victim] = ++clock;
                continue;
            }
            slotExtent[victim] = -1;
            return victim;
        }
    }

    /**
     * A leg is being dropped: the writes it completed since the last flush may be lost with its node, so marks the
     * regions of every extent in the log whose last completed write no successful flush covers. (Writes still in
     * flight are the caller's: they have not ended, so their extents may look flushed here.) Lock-free; the caller
     * forces the bitmap.
     */
    void markUnflushedDirty() {
        for (int i = 0; i < capacity; i++) {
            long v = bitmap.activitySlot(i);
            if (v == 0) {
                continue;
            }
            long first = (v & 0xFFFF_FFFFL) - 1;
            int e = (int) (first / regionsPerExtent);
            if (e < extentCount && !flushed(e)) {
                for (long r = first; r < first + (v >>> 32); r++) {
                    bitmap.setDirtyBit(r);
                }
            }
        }
    }

    /**
     * A clean stop: when no logged write is in flight and every live leg flushed, empties the log so the next start
     * resyncs nothing. Otherwise leaves it (the next start resyncs the logged extents).
     *
     * @return whether the log was emptied
     */
    public boolean closeCleanly() {
        synchronized (lock) {
            for (int i = 0; i < capacity; i++) {
                long e = slotExtent[i];
                if (e >= 0 && writesInFlight.get((int) e) != 0) {
                    return false;
                }
            }
            if (!flusher.flushLiveLegs()) {
                return false;
            }
        }
        clear();
        return true;
    }

    @Override
    public String toString() {
        return "ActivityLog[" + activeExtents() + "/" + capacity + " x " + extentSize() + ", misses=" + misses
                + ", flushRounds=" + flushRounds + ", overflows=" + overflows + "]";
    }
}
