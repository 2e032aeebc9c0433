package io.weft.cxl.layout;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.weft.cxl.map.SharedMapping;
import java.nio.ByteBuffer;
import org.agrona.concurrent.UnsafeBuffer;
import org.junit.jupiter.api.Test;

/** Double-buffered records: the newest copy whose checksum holds wins; a torn newest copy falls back. */
class MetaEntryTest {
    private final ByteBuffer memory = ByteBuffer.allocateDirect(2 * MetaEntry.SIZE);
    private final UnsafeBuffer region = new UnsafeBuffer(memory);
    private final MetaEntry entry = new MetaEntry().wrap(region, MetaEntry.SIZE);
    private final UnsafeBuffer body = new UnsafeBuffer(new byte[MetaEntry.BODY_SIZE]);
    private final UnsafeBuffer out = new UnsafeBuffer(new byte[MetaEntry.BODY_SIZE]);

    private long write(long value) {
        body.putLong(0, value);
        body.putLong(MetaEntry.BODY_SIZE - 8, ~value);
        return entry.write(body);
    }

    private long readValue() {
        long seq = entry.read(out);
        return seq < 0 ? -1 : out.getLong(0);
    }

    @Test
    void emptyEntryHasNoValidCopy() {
        assertEquals(-1, entry.read(out));
        assertEquals(-1, entry.sequence());
    }

    @Test
    void newestValidCopyWinsAndWritesAlternateCopies() {
        assertEquals(1, write(10));
        assertEquals(10, readValue());
        assertEquals(2, write(20));
        assertEquals(20, readValue());
        assertEquals(3, write(30));
        assertEquals(30, readValue());
        assertEquals(~30L, out.getLong(MetaEntry.BODY_SIZE - 8));
        assertEquals(3, entry.sequence());
    }

    @Test
    void tornNewestCopyFallsBackToThePreviousRecord() {
        write(10); // copy 0, seq 1
        write(20); // copy 1, seq 2
        entry.corruptCopy(1, 5);
        assertEquals(10, readValue());
        assertEquals(1, entry.sequence());
        // The next write goes over the invalid copy and becomes newest again.
        assertEquals(2, write(30));
        assertEquals(30, readValue());
        entry.corruptCopy(0, 0);
        entry.corruptCopy(1, 0);
        assertEquals(-1, readValue());
    }

    @Test
    void claimAndHeartbeatAreIndependentOfTheRecords() {
        assertEquals(0, entry.claim());
        assertEquals(true, entry.casClaim(0, 42));
        assertEquals(false, entry.casClaim(0, 43));
        entry.beat();
        entry.beat();
        assertEquals(2, entry.heartbeat());
        write(5);
        assertEquals(42, entry.claim());
        assertEquals(5, readValue());
        entry.wipeRecords();
        assertEquals(-1, readValue());
        assertEquals(42, entry.claim());
        // Neighbouring entries are untouched.
        assertEquals(0, region.getLong(0));
        assertEquals(0, SharedMapping.wrapAddress(region.addressOffset(), 8).getLong(0));
    }
}
