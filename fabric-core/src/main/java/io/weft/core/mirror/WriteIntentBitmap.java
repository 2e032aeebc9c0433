package io.weft.core.mirror;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.zip.CRC32C;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * One bit per region of a mirrored device: "this region may differ between legs". Persisted in a small memory-mapped
 * file so a client restart in the middle of a degraded period still knows what to copy when a leg returns.
 *
 * <pre>
 * 0        8        12       16               24       28       32               40       44       48
 * +--------+--------+--------+----------------+--------+--------+----------------+--------+--------+
 * | magic  |version |hdr len | device size    |region  | legs   | generation     |in-sync | full-  |
 * | u64    | u32 =1 |u32=4096| u64 bytes      |size u32| u32    | u64            |mask u32|sync u32|
 * +--------+--------+--------+----------------+--------+--------+----------------+--------+--------+
 * 48               56       60                                                              4096
 * | bits length u64| crc32c | reserved (zero)  ...                                                |
 * |  bytes         | of 0..56                                                                       |
 * +----------------+--------+--------------------------------------------------------------------+
 * 512: activity log, {@value #ACTIVITY_SLOTS} slots of one u64 each (see {@link ActivityLog}):
 * +------------------------------+------------------------------+
 * | first region + 1 (u32, 0 =   | regions in the extent (u32)  |   one slot, replaced by one aligned 8-byte store
 * | empty slot)                  |                              |
 * +------------------------------+------------------------------+
 * 4096: bits, little-endian u64 words; bit (r % 64) of word (r / 64) = region r is dirty
 * </pre>
 * The activity slots are outside the CRC: each is written by one aligned 8-byte store, which never spans a 512-byte
 * sector, so a torn page leaves every slot either old or new (an old slot names an extent that was flushed before
 * it was replaced: one extra copy after a crash, never a missed one). Files written before the activity log have
 * zeros there (an empty log).
 * All fields little-endian (the bits and CAS-updated words use the platform order; Weft runs on x86-64 and
 * aarch64, both little-endian). The header fits in the first 512-byte sector (written atomically by the media we
 * target);
 * a header that fails its CRC makes {@link #open} throw, and the caller must then full-sync every out-of-sync leg.
 * The bits are not covered by the CRC (each set would need a rewrite of it); a torn bits page only ever sets bits we
 * were setting, and extra dirty bits cost a copy, never data.
 *
 * <p>Durability ordering: {@link #markDirty} sets the bits with a CAS on the mapped word and then forces (msync) the
 * page before returning, so a caller that issues a write after {@code markDirty} returns has the intent on disk
 * first. A second caller that finds a bit already set while another thread has not finished forcing it forces too.
 * Clearing is lazy (forced with the next header update): a stale set bit costs one region copy, nothing more.
 */
public final class WriteIntentBitmap implements AutoCloseable {
    public static final long MAGIC = 0x3142_4957_5446_4557L; // "WEFTWIB1" little-endian
    public static final int VERSION = 1;
    public static final int HEADER_LENGTH = 4096;
    /** Default region: 1 MiB. See docs/mirror.md for why. */
    public static final int DEFAULT_REGION_SIZE = 1 << 20;
    public static final int MIN_REGION_SIZE = 4096;

    static final int OFF_MAGIC = 0;
    static final int OFF_VERSION = 8;
    static final int OFF_HEADER_LENGTH = 12;
    static final int OFF_DEVICE_SIZE = 16;
    static final int OFF_REGION_SIZE = 24;
    static final int OFF_LEGS = 28;
    static final int OFF_GENERATION = 32;
    static final int OFF_IN_SYNC_MASK = 40;
    static final int OFF_FULL_SYNC_MASK = 44;
    static final int OFF_BITS_LENGTH = 48;
    static final int OFF_CRC = 56;
    /** Start of the activity log's slots (the second 512-byte sector of the header page). */
    static final int OFF_ACTIVITY = 512;
    /** Activity log slots the header holds: the most extents {@link ActivityLog} can keep active. */
    public static final int ACTIVITY_SLOTS = (HEADER_LENGTH - OFF_ACTIVITY) / 8;

    private final Path path;
    private final FileChannel channel;
    private final MappedByteBuffer mapped;
    private final UnsafeBuffer buffer;
    private final long deviceSize;
    private final int regionSize;
    private final int regionShift;
    private final long regionCount;
    private final int legs;
    private final java.util.concurrent.atomic.AtomicInteger forcesInFlight =
            new java.util.concurrent.atomic.AtomicInteger();
    private final Object headerLock = new Object();
    private volatile boolean closed;

    private WriteIntentBitmap(Path path, FileChannel channel, MappedByteBuffer mapped, ByteBuffer memory,
                              long deviceSize, int regionSize, int legs) {
        this.path = path;
        this.channel = channel;
        this.mapped = mapped;
        this.buffer = new UnsafeBuffer(memory);
        this.deviceSize = deviceSize;
        this.regionSize = regionSize;
        this.regionShift = Integer.numberOfTrailingZeros(regionSize);
        this.regionCount = (deviceSize + regionSize - 1) >>> regionShift;
        this.legs = legs;
    }

    private static long bitsLength(long deviceSize, int regionSize) {
        long regions = (deviceSize + regionSize - 1) / regionSize;
        return Math.max(8, (regions + 63) / 64 * 8);
    }

    private static void checkGeometry(long deviceSize, int regionSize, int legs) {
        // legs is the number of leg positions the masks describe (always MirrorBlockDevice.MAX_LEGS today)
        if (deviceSize <= 0) {
            throw new IllegalArgumentException("device size must be > 0: " + deviceSize);
        }
        if (regionSize < MIN_REGION_SIZE || Integer.bitCount(regionSize) != 1) {
            throw new IllegalArgumentException("region size must be a power of two >= 4096: " + regionSize);
        }
        if (legs < 1 || legs > MirrorBlockDevice.MAX_LEGS) {
            throw new IllegalArgumentException("legs must be 1.." + MirrorBlockDevice.MAX_LEGS + ": " + legs);
        }
        long total = HEADER_LENGTH + bitsLength(deviceSize, regionSize);
        if (total > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("bitmap would be " + total + " bytes; use a larger region size");
        }
    }

    /** A bitmap that lives only in memory (tests, or devices whose owner accepts full syncs after a restart). */
    public static WriteIntentBitmap inMemory(long deviceSize, int regionSize) {
        int legs = MirrorBlockDevice.MAX_LEGS;
        checkGeometry(deviceSize, regionSize, legs);
        ByteBuffer mem = ByteBuffer.allocateDirect((int) (HEADER_LENGTH + bitsLength(deviceSize, regionSize)))
                .order(ByteOrder.LITTLE_ENDIAN);
        WriteIntentBitmap b = new WriteIntentBitmap(null, null, null, mem, deviceSize, regionSize, legs);
        b.initHeader();
        return b;
    }

    /**
     * Creates (or truncates) a bitmap file for a new mirror whose legs all start with identical contents (e.g. all
     * zero): every region clean, every leg position in sync, generation 1.
     */
    public static WriteIntentBitmap create(Path path, long deviceSize, int regionSize) throws IOException {
        int legs = MirrorBlockDevice.MAX_LEGS;
        checkGeometry(deviceSize, regionSize, legs);
        long total = HEADER_LENGTH + bitsLength(deviceSize, regionSize);
        FileChannel ch = FileChannel.open(path, StandardOpenOption.CREATE, StandardOpenOption.READ,
                StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING);
        try {
            MappedByteBuffer map = ch.map(FileChannel.MapMode.READ_WRITE, 0, total);
            WriteIntentBitmap b = new WriteIntentBitmap(path, ch, map, map, deviceSize, regionSize, legs);
            b.initHeader();
            return b;
        } catch (IOException | RuntimeException e) {
            ch.close();
            throw e;
        }
    }

    /** Opens an existing bitmap file; throws if the header is missing, foreign, a different version or corrupt. */
    public static WriteIntentBitmap open(Path path) throws IOException {
        FileChannel ch = FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE);
        try {
            long fileSize = ch.size();
            if (fileSize < HEADER_LENGTH + 8) {
                throw new IOException(path + ": too short for a write-intent bitmap (" + fileSize + " bytes)");
            }
            ByteBuffer head = ByteBuffer.allocate(64).order(ByteOrder.LITTLE_ENDIAN);
            while (head.hasRemaining() && ch.read(head, head.position()) > 0) {
                // read the fixed header
            }
            head.flip();
            if (head.remaining() < 64 || head.getLong(OFF_MAGIC) != MAGIC) {
                throw new IOException(path + ": not a write-intent bitmap (bad magic)");
            }
            CRC32C crc = new CRC32C();
            crc.update(head.array(), 0, OFF_CRC);
            if ((int) crc.getValue() != head.getInt(OFF_CRC)) {
                throw new IOException(path + ": write-intent bitmap header CRC mismatch (full sync needed)");
            }
            int version = head.getInt(OFF_VERSION);
            if (version != VERSION || head.getInt(OFF_HEADER_LENGTH) != HEADER_LENGTH) {
                throw new IOException(path + ": unsupported bitmap version " + version);
            }
            long deviceSize = head.getLong(OFF_DEVICE_SIZE);
            int regionSize = head.getInt(OFF_REGION_SIZE);
            int legs = head.getInt(OFF_LEGS);
            try {
                checkGeometry(deviceSize, regionSize, legs);
            } catch (IllegalArgumentException e) {
                throw new IOException(path + ": bad bitmap geometry: " + e.getMessage());
            }
            long bitsLength = head.getLong(OFF_BITS_LENGTH);
            if (bitsLength != bitsLength(deviceSize, regionSize) || fileSize < HEADER_LENGTH + bitsLength) {
                throw new IOException(path + ": bitmap length " + bitsLength + " does not match its geometry");
            }
            MappedByteBuffer map = ch.map(FileChannel.MapMode.READ_WRITE, 0, HEADER_LENGTH + bitsLength);
            return new WriteIntentBitmap(path, ch, map, map, deviceSize, regionSize, legs);
        } catch (IOException | RuntimeException e) {
            ch.close();
            throw e;
        }
    }

    private void initHeader() {
        buffer.setMemory(0, HEADER_LENGTH, (byte) 0);
        buffer.putLong(OFF_MAGIC, MAGIC);
        buffer.putInt(OFF_VERSION, VERSION);
        buffer.putInt(OFF_HEADER_LENGTH, HEADER_LENGTH);
        buffer.putLong(OFF_DEVICE_SIZE, deviceSize);
        buffer.putInt(OFF_REGION_SIZE, regionSize);
        buffer.putInt(OFF_LEGS, legs);
        buffer.putLong(OFF_BITS_LENGTH, bitsLength(deviceSize, regionSize));
        writeHeader(1, (1 << legs) - 1, 0);
        force(0, buffer.capacity());
    }

    public Path path() {
        return path;
    }

    public long deviceSize() {
        return deviceSize;
    }

    public int regionSize() {
        return regionSize;
    }

    public long regionCount() {
        return regionCount;
    }

    public int legs() {
        return legs;
    }

    public long generation() {
        return buffer.getLongVolatile(OFF_GENERATION);
    }

    /** Legs whose contents matched the others when the header was last written (bit i = leg i). */
    public int inSyncMask() {
        return buffer.getIntVolatile(OFF_IN_SYNC_MASK);
    }

    /** Legs that need a full copy (newly added) rather than just the dirty regions. */
    public int fullSyncMask() {
        return buffer.getIntVolatile(OFF_FULL_SYNC_MASK);
    }

    public int regionOf(long offset) {
        return (int) (offset >>> regionShift);
    }

    /** Rewrites the leg masks, bumps the generation, recomputes the CRC and forces the whole map (bits included). */
    public void updateLegs(int inSyncMask, int fullSyncMask) {
        synchronized (headerLock) {
            writeHeader(generation() + 1, inSyncMask, fullSyncMask);
            force(0, buffer.capacity());
        }
    }

    private void writeHeader(long generation, int inSyncMask, int fullSyncMask) {
        buffer.putLong(OFF_GENERATION, generation);
        buffer.putInt(OFF_IN_SYNC_MASK, inSyncMask);
        buffer.putInt(OFF_FULL_SYNC_MASK, fullSyncMask);
        byte[] head = new byte[OFF_CRC];
        buffer.getBytes(0, head);
        CRC32C crc = new CRC32C();
        crc.update(head, 0, head.length);
        buffer.putIntVolatile(OFF_CRC, (int) crc.getValue());
    }

    /**
     * Marks every region touched by {@code [offset, offset + length)} dirty and returns once the bits are durable.
     * The common case (bits already set, nobody forcing) is two volatile reads per word and no syscall.
     */
    public void markDirty(long offset, long length) {
        if (length <= 0 || offset < 0 || offset >= deviceSize) {
            return;
        }
        long first = offset >>> regionShift;
        long last = (Math.min(deviceSize, offset + length) - 1) >>> regionShift;
        boolean changed = false;
        forcesInFlight.incrementAndGet();
        try {
            for (long r = first; r <= last; r++) {
                int word = HEADER_LENGTH + (int) (r >>> 6) * 8;
                long bit = 1L << (r & 63);
                while (true) {
                    long w = buffer.getLongVolatile(word);
                    if ((w & bit) != 0) {
                        break;
                    }
                    if (buffer.compareAndSetLong(word, w, w | bit)) {
                        changed = true;
                        break;
                    }
                }
            }
            // Someone else may have set our bits and still be forcing them: force too rather than trust it.
            if (changed || forcesInFlight.get() > 1) {
                int from = HEADER_LENGTH + (int) (first >>> 6) * 8;
                int to = HEADER_LENGTH + (int) (last >>> 6) * 8 + 8;
                force(from, to - from);
            }
        } finally {
            forcesInFlight.decrementAndGet();
        }
    }

    /** Sets one region's bit without forcing it (the caller forces, e.g. with {@link #updateLegs}). */
    void setDirtyBit(long region) {
        if (region < 0 || region >= regionCount) {
            return;
        }
        int word = HEADER_LENGTH + (int) (region >>> 6) * 8;
        long bit = 1L << (region & 63);
        while (true) {
            long w = buffer.getLongVolatile(word);
            if ((w & bit) != 0 || buffer.compareAndSetLong(word, w, w | bit)) {
                return;
            }
        }
    }

    public boolean isDirty(long region) {
        if (region < 0 || region >= regionCount) {
            return false;
        }
        long w = buffer.getLongVolatile(HEADER_LENGTH + (int) (region >>> 6) * 8);
        return (w & (1L << (region & 63))) != 0;
    }

    /** Clears one region's bit (lazily durable: see the class comment). */
    public void clear(long region) {
        if (region < 0 || region >= regionCount) {
            return;
        }
        int word = HEADER_LENGTH + (int) (region >>> 6) * 8;
        long bit = 1L << (region & 63);
        while (true) {
            long w = buffer.getLongVolatile(word);
            if ((w & bit) == 0 || buffer.compareAndSetLong(word, w, w & ~bit)) {
                return;
            }
        }
    }

    /** Number of dirty regions (a scan; control path). */
    public long dirtyCount() {
        long n = 0;
        int words = (int) ((regionCount + 63) >>> 6);
        for (int i = 0; i < words; i++) {
            n += Long.bitCount(buffer.getLongVolatile(HEADER_LENGTH + i * 8));
        }
        return n;
    }

    /** The next dirty region at or after {@code from}, or -1. */
    public long nextDirty(long from) {
        if (from < 0) {
            from = 0;
        }
        int words = (int) ((regionCount + 63) >>> 6);
        for (int i = (int) (from >>> 6); i < words; i++) {
            long w = buffer.getLongVolatile(HEADER_LENGTH + i * 8);
            if (i == (int) (from >>> 6)) {
                w &= -1L << (from & 63);
            }
            if (w != 0) {
                long r = ((long) i << 6) + Long.numberOfTrailingZeros(w);
                return r < regionCount ? r : -1;
            }
        }
        return -1;
    }

    /** Activity log slot {@code slot} as last stored (0 = empty); see the layout in the class comment. */
    long activitySlot(int slot) {
        return buffer.getLongVolatile(OFF_ACTIVITY + checkSlot(slot) * 8);
    }

    /** Stores activity log slot {@code slot}; durable after the next {@link #forceActivityLog}. */
    void putActivitySlot(int slot, long value) {
        buffer.putLongVolatile(OFF_ACTIVITY + checkSlot(slot) * 8, value);
    }

    /** Forces the activity log's sector range (one msync of the header page). */
    void forceActivityLog() {
        force(OFF_ACTIVITY, HEADER_LENGTH - OFF_ACTIVITY);
    }

    private static int checkSlot(int slot) {
        if (slot < 0 || slot >= ACTIVITY_SLOTS) {
            throw new IndexOutOfBoundsException("activity slot " + slot);
        }
        return slot;
    }

    /** Forces the whole map (used after a batch of clears). */
    public void sync() {
        force(0, buffer.capacity());
    }

    private void force(int index, int length) {
        if (mapped != null && !closed) {
            mapped.force(index, length);
        }
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        force(0, buffer.capacity());
        closed = true;
        if (channel != null) {
            try {
                channel.close();
            } catch (IOException e) {
                // The map stays valid until unmapped by GC; nothing else to release.
            }
        }
    }

    @Override
    public String toString() {
        return "WriteIntentBitmap[" + (path == null ? "memory" : path) + ", regions=" + regionCount + " x "
                + regionSize + ", dirty=" + dirtyCount() + "]";
    }
}
