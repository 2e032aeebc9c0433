package io.weft.core.nbd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.util.Arrays;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Thousands of random requests, most of them invalid in some way (flags, types, offsets, lengths), against a shadow
 * model of the export. Every request must get exactly one well-formed reply with its handle and a protocol error
 * value; a request may only succeed if it was valid; successful reads must return the model's bytes; and at the end
 * the backing file must equal the model: nothing was written that the server did not acknowledge.
 */
@Timeout(120)
class NbdFuzzTest {
    private static final int SIZE = 4 << 20;
    private static final Set<Integer> NBD_ERRORS = Set.of(NbdProtocol.EPERM, NbdProtocol.EIO, NbdProtocol.ENOMEM,
            NbdProtocol.EINVAL, NbdProtocol.ENOSPC, NbdProtocol.EOVERFLOW, NbdProtocol.ENOTSUP,
            NbdProtocol.ESHUTDOWN);

    @Test
    void randomRequestsNeverCorruptAndAlwaysGetOneReply() throws Exception {
        for (long seed = 1; seed <= 3; seed++) {
            fuzz(seed, seed % 2 == 0);
        }
    }

    private void fuzz(long seed, boolean overTcp) throws Exception {
        Random random = new Random(seed);
        byte[] model = new byte[SIZE];
        // Sectors whose content the protocol leaves unspecified (after a TRIM) until they are written again.
        BitSet unknown = new BitSet(SIZE / 512);
        // The last seed runs over a device that advertises TRIM (and zeroes what is trimmed).
        try (NbdFixture fx = new NbdFixture(SIZE, NbdServerOptions.defaults(),
                d -> seed == 3 ? new HoleReportingDevice(d) : d)) {
            int flagsAdvertised;
            try (RawNbdClient c = overTcp ? RawNbdClient.connect(fx.tcp) : RawNbdClient.connect(fx.unixAddress())) {
                flagsAdvertised = c.go("vol0", true, true).flags();
                for (int i = 0; i < 3000; i++) {
                    int type = pickType(random);
                    int flags = random.nextInt(10) < 7 ? (random.nextBoolean() ? NbdProtocol.CMD_FLAG_FUA : 0)
                            : random.nextInt(1 << 16);
                    long offset = pickOffset(random);
                    long length = pickLength(random, type);
                    byte[] payload = null;
                    if (type == NbdProtocol.CMD_WRITE) {
                        payload = new byte[(int) length];
                        if (length <= 1 << 20) {
                            random.nextBytes(payload);
                        }
                    }
                    long handle = ((long) seed << 32) | i;
                    c.sendRequest(flags, type, handle, offset, (int) length, payload);
                    RawNbdClient.Reply r = c.readReply(0);
                    assertEquals(handle, r.handle(), "reply " + i + " belongs to its request");
                    assertTrue(r.done(), "one chunk per reply here");
                    String what = "request " + i + ": type " + type + " flags 0x" + Integer.toHexString(flags)
                            + " offset " + offset + " length " + length;
                    boolean valid = valid(type, flags, offset, length, flagsAdvertised);
                    if (r.error() != 0) {
                        assertTrue(NBD_ERRORS.contains(r.error()), what + " → unexpected error " + r.error());
                        // A valid request must succeed; only a fast zero may be refused as not fast.
                        boolean fastZeroRefused = r.error() == NbdProtocol.ENOTSUP
                                && (flags & NbdProtocol.CMD_FLAG_FAST_ZERO) != 0;
                        assertTrue(!valid || fastZeroRefused, what + " is valid but failed with " + r.error());
                        continue;
                    }
                    assertTrue(valid, what + " succeeded");
                    apply(model, unknown, type, flags, offset, (int) length, payload, r, what);
                }
                // The connection is still in sync after all that.
                byte[] head = readStructured(c, 0, 4096);
                byte[] expectedHead = Arrays.copyOfRange(model, 0, 4096);
                BitSet headUnknown = unknown.get(0, 8);
                maskUnknown(head, headUnknown);
                maskUnknown(expectedHead, headUnknown);
                assertArrayEquals(expectedHead, head);
                c.disconnect();
                assertTrue(c.closedByServer());
            }
            assertEquals(SIZE, Files.size(fx.file));
            byte[] file = fx.fileBytes(0, SIZE);
            maskUnknown(model, unknown);
            maskUnknown(file, unknown);
            assertArrayEquals(model, file, "backing file equals the acknowledged writes");
        }
    }

    /** One generated request, remembered until its reply arrives. */
    private record Sent(int type, int flags, long offset, long length, byte[] payload, String what) {
    }

    @Test
    void pipelinedRandomRequestsOnInlineAndAsynchronousDevices() throws Exception {
        pipelined(11, false);
        pipelined(12, true);
    }

    /**
     * Windows of up to 16 requests in flight at once. Requests in one window never touch the same bytes, so the
     * model stays exact whatever order the server completes them in.
     */
    private void pipelined(long seed, boolean async) throws Exception {
        Random random = new Random(seed);
        byte[] model = new byte[SIZE];
        BitSet unknown = new BitSet(SIZE / 512);
        ReorderingDevice[] holder = new ReorderingDevice[1];
        try (NbdFixture fx = new NbdFixture(SIZE, NbdServerOptions.defaults().withMaxInFlightPerConnection(8),
                d -> {
                    if (!async) {
                        return d;
                    }
                    holder[0] = new ReorderingDevice(new HoleReportingDevice(d), 1);
                    return holder[0];
                })) {
            try (RawNbdClient c = RawNbdClient.connect(fx.unixAddress())) {
                int advertised = c.go("vol0", true, true).flags();
                int sent = 0;
                while (sent < 3000) {
                    int window = 1 + random.nextInt(16);
                    java.util.Map<Long, Sent> inFlight = new java.util.HashMap<>();
                    List<long[]> ranges = new ArrayList<>();
                    ByteBuffer burst = ByteBuffer.allocate(16 * (28 + (1 << 16)));
                    for (int k = 0; k < window; k++) {
                        int type = pickType(random);
                        int flags = random.nextInt(10) < 8 ? 0 : random.nextInt(1 << 16);
                        long offset = pickOffset(random);
                        long length = Math.min(pickLength(random, type), type == NbdProtocol.CMD_WRITE ? 1 << 16
                                : Long.MAX_VALUE);
                        long from = Math.max(0, Math.min(offset, SIZE));
                        long to = Math.max(from, Math.min(SIZE, offset < 0 ? 0 : offset + length));
                        boolean overlaps = ranges.stream().anyMatch(r -> from < r[1] && r[0] < to);
                        if (overlaps || type == NbdProtocol.CMD_FLUSH && !inFlight.isEmpty()) {
                            continue;
                        }
                        ranges.add(new long[] {from, to});
                        byte[] payload = null;
                        if (type == NbdProtocol.CMD_WRITE) {
                            payload = new byte[(int) length];
                            random.nextBytes(payload);
                        }
                        long handle = ((long) seed << 32) | sent;
                        String what = "request " + sent + ": type " + type + " flags 0x" + Integer.toHexString(flags)
                                + " offset " + offset + " length " + length;
                        inFlight.put(handle, new Sent(type, flags, offset, length, payload, what));
                        int at = burst.position();
                        NbdRequestHeader.encode(burst, at, flags, type, handle, offset, (int) length);
                        burst.position(at + 28);
                        if (payload != null) {
                            burst.put(payload);
                        }
                        sent++;
                    }
                    // Send from another thread while replies are read here, as real clients do: otherwise a big
                    // burst and big replies could fill both socket buffers at once.
                    burst.flip();
                    java.util.concurrent.CompletableFuture<Void> sending =
                            java.util.concurrent.CompletableFuture.runAsync(() -> {
                                try {
                                    c.write(burst);
                                } catch (java.io.IOException e) {
                                    throw new java.io.UncheckedIOException(e);
                                }
                            });
                    while (!inFlight.isEmpty()) {
                        RawNbdClient.Reply r = c.readReply(0);
                        Sent q = inFlight.remove(r.handle());
                        assertTrue(q != null, "reply for unknown or already answered handle " + r.handle());
                        boolean valid = valid(q.type(), q.flags(), q.offset(), q.length(), advertised);
                        if (r.error() != 0) {
                            assertTrue(NBD_ERRORS.contains(r.error()), q.what() + " → " + r.error());
                            assertTrue(!valid || r.error() == NbdProtocol.ENOTSUP
                                    && (q.flags() & NbdProtocol.CMD_FLAG_FAST_ZERO) != 0,
                                    q.what() + " is valid but failed with " + r.error());
                            continue;
                        }
                        assertTrue(valid, q.what() + " succeeded");
                        apply(model, unknown, q.type(), q.flags(), q.offset(), (int) q.length(), q.payload(), r,
                                q.what());
                    }
                    sending.get();
                }
                c.disconnect();
                assertTrue(c.closedByServer());
            }
            byte[] file = fx.fileBytes(0, SIZE);
            maskUnknown(model, unknown);
            maskUnknown(file, unknown);
            assertArrayEquals(model, file, "backing file equals the acknowledged writes");
            if (async) {
                assertTrue(holder[0].submittedCount() > 0);
                holder[0].close();
            }
        }
    }

    private static int pickType(Random random) {
        int p = random.nextInt(100);
        if (p < 30) {
            return NbdProtocol.CMD_READ;
        }
        if (p < 60) {
            return NbdProtocol.CMD_WRITE;
        }
        if (p < 65) {
            return NbdProtocol.CMD_FLUSH;
        }
        if (p < 70) {
            return NbdProtocol.CMD_TRIM;
        }
        if (p < 75) {
            return NbdProtocol.CMD_CACHE;
        }
        if (p < 85) {
            return NbdProtocol.CMD_WRITE_ZEROES;
        }
        if (p < 95) {
            return NbdProtocol.CMD_BLOCK_STATUS;
        }
        return 8 + random.nextInt(1 << 15); // unknown command
    }

    private static long pickOffset(Random random) {
        int p = random.nextInt(100);
        if (p < 60) {
            return 512L * random.nextInt(SIZE / 512);
        }
        if (p < 75) {
            return random.nextInt(SIZE);
        }
        if (p < 85) {
            return SIZE - 512L * random.nextInt(8);
        }
        if (p < 90) {
            return 0;
        }
        return random.nextLong();
    }

    private static long pickLength(Random random, int type) {
        int p = random.nextInt(100);
        if (type == NbdProtocol.CMD_WRITE) {
            if (random.nextInt(400) == 0) {
                return NbdServerOptions.DEFAULT_MAX_PAYLOAD + 512; // oversized: must be drained
            }
            if (p < 80) {
                return 512L * (1 + random.nextInt(128));
            }
            if (p < 90) {
                return random.nextInt(1 << 16);
            }
            return 0;
        }
        if (p < 70) {
            return 512L * (1 + random.nextInt(256));
        }
        if (p < 80) {
            return random.nextInt(1 << 20);
        }
        if (p < 85) {
            return 0;
        }
        return random.nextInt() & 0xffffffffL;
    }

    private static boolean valid(int type, int flags, long offset, long length, int advertised) {
        boolean inRange = offset >= 0 && length > 0 && offset % 512 == 0 && length % 512 == 0 && offset <= SIZE
                && length <= SIZE - offset;
        int fua = NbdProtocol.CMD_FLAG_FUA;
        switch (type) {
            case NbdProtocol.CMD_READ:
                return inRange && (flags & ~(fua | NbdProtocol.CMD_FLAG_DF)) == 0;
            case NbdProtocol.CMD_WRITE:
            case NbdProtocol.CMD_CACHE:
                return inRange && (flags & ~fua) == 0;
            case NbdProtocol.CMD_TRIM:
                return inRange && (flags & ~fua) == 0 && (advertised & NbdProtocol.TFLAG_SEND_TRIM) != 0;
            case NbdProtocol.CMD_WRITE_ZEROES: {
                int allowed = fua | NbdProtocol.CMD_FLAG_NO_HOLE
                        | ((advertised & NbdProtocol.TFLAG_SEND_FAST_ZERO) != 0 ? NbdProtocol.CMD_FLAG_FAST_ZERO : 0);
                return inRange && (flags & ~allowed) == 0;
            }
            case NbdProtocol.CMD_BLOCK_STATUS:
                return inRange && (flags & ~(fua | NbdProtocol.CMD_FLAG_REQ_ONE)) == 0;
            case NbdProtocol.CMD_FLUSH:
                return offset == 0 && length == 0 && (flags & ~fua) == 0;
            default:
                return false;
        }
    }

    private static void maskUnknown(byte[] bytes, BitSet unknown) {
        for (int sector = unknown.nextSetBit(0); sector >= 0; sector = unknown.nextSetBit(sector + 1)) {
            Arrays.fill(bytes, sector * 512, sector * 512 + 512, (byte) 0);
        }
    }

    private static void apply(byte[] model, BitSet unknown, int type, int flags, long offset, int length,
                              byte[] payload, RawNbdClient.Reply r, String what) {
        int firstSector = (int) (offset / 512);
        int endSector = (int) ((offset + length) / 512);
        switch (type) {
            case NbdProtocol.CMD_WRITE:
                System.arraycopy(payload, 0, model, (int) offset, length);
                unknown.clear(firstSector, endSector);
                break;
            case NbdProtocol.CMD_WRITE_ZEROES:
                Arrays.fill(model, (int) offset, (int) offset + length, (byte) 0);
                unknown.clear(firstSector, endSector);
                break;
            case NbdProtocol.CMD_TRIM:
                // After TRIM the contents are unspecified until written again (a store may keep or drop them).
                unknown.set(firstSector, endSector);
                break;
            case NbdProtocol.CMD_READ: {
                assertEquals(NbdProtocol.REPLY_TYPE_OFFSET_DATA, r.type(), what);
                ByteBuffer p = ByteBuffer.wrap(r.payload());
                assertEquals(offset, p.getLong(), what);
                byte[] data = new byte[p.remaining()];
                p.get(data);
                byte[] expected = Arrays.copyOfRange(model, (int) offset, (int) offset + length);
                for (int sector = unknown.nextSetBit(firstSector); sector >= 0 && sector < endSector;
                        sector = unknown.nextSetBit(sector + 1)) {
                    int from = sector * 512 - (int) offset;
                    Arrays.fill(expected, from, from + 512, (byte) 0);
                    Arrays.fill(data, from, from + 512, (byte) 0);
                }
                assertArrayEquals(expected, data, what);
                break;
            }
            case NbdProtocol.CMD_BLOCK_STATUS: {
                assertEquals(NbdProtocol.REPLY_TYPE_BLOCK_STATUS, r.type(), what);
                ByteBuffer p = ByteBuffer.wrap(r.payload());
                p.getInt();
                int descriptors = p.remaining() / 8;
                assertTrue(descriptors >= 1 && p.remaining() % 8 == 0, what);
                if ((flags & NbdProtocol.CMD_FLAG_REQ_ONE) != 0) {
                    assertEquals(1, descriptors, what);
                }
                long sum = 0;
                while (p.hasRemaining()) {
                    long len = p.getInt() & 0xffffffffL;
                    p.getInt();
                    assertTrue(len > 0 && len % 512 == 0, what);
                    sum += len;
                }
                assertTrue(sum <= length, what);
                break;
            }
            default:
                break;
        }
    }

    private static byte[] readStructured(RawNbdClient c, long offset, int length) throws Exception {
        c.sendRequest(0, NbdProtocol.CMD_READ, 1, offset, length, null);
        RawNbdClient.Reply r = c.readReply(0);
        assertEquals(0, r.error());
        return Arrays.copyOfRange(r.payload(), 8, 8 + length);
    }
}
