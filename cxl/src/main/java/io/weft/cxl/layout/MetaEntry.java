package io.weft.cxl.layout;

import org.agrona.MutableDirectBuffer;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * Flyweight over one 1 KiB metadata table entry (host, backend, blkdev or segment). The record body is stored twice
 * with a sequence number and a CRC32C; a writer always overwrites the older copy, so a writer that dies mid-update
 * leaves the previous copy intact and readers take the newest copy whose checksum holds.
 *
 * <pre>
 *  0                         8                         16                       64
 *  +-------------------------+-------------------------+------------------------+
 *  | claim token (8, CAS)    | heartbeat counter (8)   | reserved               |
 *  +-------------------------+-------------------------+------------------------+
 *  64: copy 0 (480)   544: copy 1 (480)      (1024 bytes per entry)
 *  copy: | sequence (8) | body (468) | CRC32C over [0, 476) (4) |
 * </pre>
 * The claim word is 0 while the entry is free and holds the owning process's random token otherwise; it is taken and
 * released with compare-and-set, the only multi-writer field. The heartbeat is a separate aligned 8-byte counter so
 * the owner bumps it with one atomic store, without rewriting the checksummed record.
 */
public final class MetaEntry {
    public static final int SIZE = 1024;
    public static final int BODY_SIZE = 468;
    /**
     * Claim value of an entry (or a channel's client claim) that a janitor is clearing: its dead owner's token was
     * replaced by this, so the owner's claim checks fail at once, while nobody can take the entry (only 0 is free)
     * until the janitor's grace period has passed and it sets 0. Never a token.
     */
    public static final long CLAIM_REVOKED = Long.MIN_VALUE;
    static final int CLAIM_OFFSET = 0;
    static final int HEARTBEAT_OFFSET = 8;
    static final int COPY_BASE = 64;
    static final int COPY_SIZE = 480;
    static final int SEQ_OFFSET = 0;
    static final int BODY_OFFSET = 8;
    static final int CRC_OFFSET = BODY_OFFSET + BODY_SIZE;

    private final UnsafeBuffer buffer = new UnsafeBuffer(0, 0);

    /** Points the flyweight at the entry starting at {@code offset} of {@code region}. */
    public MetaEntry wrap(UnsafeBuffer region, long offset) {
        buffer.wrap(region.addressOffset() + offset, SIZE);
        return this;
    }

    /** Where the entry is mapped: two flyweights over the same entry have the same address. */
    public long address() {
        return buffer.addressOffset();
    }

    public long claim() {
        return buffer.getLongVolatile(CLAIM_OFFSET);
    }

    public boolean casClaim(long expected, long update) {
        return buffer.compareAndSetLong(CLAIM_OFFSET, expected, update);
    }

    public long heartbeat() {
        return buffer.getLongVolatile(HEARTBEAT_OFFSET);
    }

    /** Owner only. */
    public void beat() {
        buffer.putLongRelease(HEARTBEAT_OFFSET, buffer.getLong(HEARTBEAT_OFFSET) + 1);
    }

    private int copyOffset(int copy) {
        return COPY_BASE + copy * COPY_SIZE;
    }

    /** @return the copy's sequence if its checksum holds, else -1 */
    long validSequence(int copy) {
        int base = copyOffset(copy);
        long seq = buffer.getLongVolatile(base + SEQ_OFFSET);
        if (seq <= 0) {
            return -1;
        }
        int crc = Checksums.crc32c(buffer, base, CRC_OFFSET);
        return crc == buffer.getIntVolatile(base + CRC_OFFSET) ? seq : -1;
    }

    /**
     * Copies the newest valid body into {@code dst} (at least {@link #BODY_SIZE} bytes).
     *
     * @return the sequence number of the copy read, or -1 when neither copy is valid (never written, or torn twice)
     */
    public long read(MutableDirectBuffer dst) {
        for (int attempt = 0; attempt < 4; attempt++) {
            long s0 = validSequence(0);
            long s1 = validSequence(1);
            if (s0 < 0 && s1 < 0) {
                return -1;
            }
            int copy = s1 > s0 ? 1 : 0;
            long seq = Math.max(s0, s1);
            int base = copyOffset(copy);
            dst.putBytes(0, buffer, base + BODY_OFFSET, BODY_SIZE);
            // The copy may have been rewritten while we copied it: re-check it still holds the same sequence and CRC.
            if (validSequence(copy) == seq
                    && Checksums.crc32c(buffer, base, CRC_OFFSET) == buffer.getIntVolatile(base + CRC_OFFSET)) {
                return seq;
            }
        }
        return -1;
    }

    /** Newest valid sequence, or -1. */
    public long sequence() {
        return Math.max(validSequence(0), validSequence(1));
    }

    /** Writes {@code body} (first {@link #BODY_SIZE} bytes) over the older copy with the next sequence number. */
    public long write(UnsafeBuffer body) {
        long s0 = validSequence(0);
        long s1 = validSequence(1);
        int target = s0 <= s1 ? 0 : 1;
        long seq = Math.max(Math.max(s0, s1), 0) + 1;
        int base = copyOffset(target);
        // Invalidate first so a reader never pairs the old checksum with a half-new body.
        buffer.putLongVolatile(base + SEQ_OFFSET, 0);
        buffer.putBytes(base + BODY_OFFSET, body, 0, BODY_SIZE);
        buffer.putLong(base + SEQ_OFFSET, seq);
        buffer.putIntRelease(base + CRC_OFFSET, Checksums.crc32c(buffer, base, CRC_OFFSET));
        return seq;
    }

    /** Test hook: flips one byte of a copy's body, as a torn or corrupted write would. */
    public void corruptCopy(int copy, int bodyByte) {
        int at = copyOffset(copy) + BODY_OFFSET + bodyByte;
        buffer.putByte(at, (byte) ~buffer.getByte(at));
    }

    /** Zeroes the whole entry (format, or clearing a dead owner's entry before releasing its claim). */
    public void wipeRecords() {
        buffer.setMemory(HEARTBEAT_OFFSET, SIZE - HEARTBEAT_OFFSET, (byte) 0);
    }
}
