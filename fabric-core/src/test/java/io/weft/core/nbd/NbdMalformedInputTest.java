package io.weft.core.nbd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Hostile or broken clients speaking raw bytes. After each case a second, well-behaved client must still do
 * verified IO, and nothing may have been written outside the export or at a refused request's range.
 */
@Timeout(60)
class NbdMalformedInputTest {
    private static final long SIZE = 8L << 20;
    private NbdFixture fx;
    private final Random random = new Random(42);

    @BeforeEach
    void setUp() throws Exception {
        fx = new NbdFixture(SIZE);
    }

    @AfterEach
    void tearDown() throws Exception {
        assertEquals(SIZE, Files.size(fx.file), "the backing file never grows");
        fx.close();
    }

    /** A fresh client writes and reads back random data: the server is still fine. */
    private void assertServerStillServes() throws Exception {
        byte[] data = new byte[8192];
        random.nextBytes(data);
        long offset = 4096L * (1 + random.nextInt(100));
        try (RawNbdClient c = RawNbdClient.connect(fx.unixAddress())) {
            c.go("vol0", false, false);
            c.write(offset, data, 1);
            assertArrayEquals(data, c.read(offset, data.length, 2));
            c.disconnect();
            assertTrue(c.closedByServer());
        }
    }

    @Test
    void badClientFlagsCloseTheConnection() throws Exception {
        try (RawNbdClient c = RawNbdClient.connect(fx.tcp)) {
            c.readGreeting();
            c.sendClientFlags(0x80);
            assertTrue(c.closedByServer());
        }
        assertServerStillServes();
    }

    @Test
    void badOptionMagicClosesTheConnection() throws Exception {
        try (RawNbdClient c = RawNbdClient.connect(fx.tcp).start()) {
            c.writeRaw(ByteBuffer.allocate(16).putLong(0x1122334455667788L).putInt(7).putInt(0).array());
            assertTrue(c.closedByServer());
        }
        assertServerStillServes();
    }

    @Test
    void truncatedHandshakeIsHarmless() throws Exception {
        for (int cut : new int[] {0, 2, 4, 10, 20}) {
            try (RawNbdClient c = RawNbdClient.connect(fx.tcp)) {
                c.readGreeting();
                ByteBuffer b = ByteBuffer.allocate(4 + 16 + 8);
                b.putInt(3).putLong(RawNbdClient.IHAVEOPT).putInt(NbdProtocol.OPT_GO).putInt(100).putLong(0);
                c.writeRaw(java.util.Arrays.copyOf(b.array(), cut));
            }
        }
        assertServerStillServes();
    }

    @Test
    void hugeUnknownOptionIsDrainedNotBuffered() throws Exception {
        try (RawNbdClient c = RawNbdClient.connect(fx.tcp).start()) {
            byte[] junk = new byte[3 << 20];
            c.sendOption(999, junk);
            RawNbdClient.expect(c.readOptionReply(), NbdProtocol.REP_ERR_UNSUP);
            c.sendOption(NbdProtocol.OPT_INFO, new byte[NbdHandshake.MAX_OPTION_DATA + 1]);
            RawNbdClient.expect(c.readOptionReply(), NbdProtocol.REP_ERR_TOO_BIG);
            c.goAfterStart("vol0");
            assertArrayEquals(new byte[4096], c.read(0, 4096, 1));
        }
        assertServerStillServes();
    }

    @Test
    void badRequestMagicClosesOnlyThatConnection() throws Exception {
        try (RawNbdClient other = RawNbdClient.connect(fx.tcp)) {
            other.go("vol0", false, false);
            try (RawNbdClient c = RawNbdClient.connect(fx.tcp)) {
                c.go("vol0", false, false);
                ByteBuffer b = ByteBuffer.allocate(28);
                NbdRequestHeader.encode(b, 0, 0, NbdProtocol.CMD_READ, 1, 0, 512);
                b.putInt(0, 0xdeadbeef);
                c.writeRaw(b.array());
                assertTrue(c.closedByServer());
            }
            // A connection that was open all along is unaffected.
            byte[] data = new byte[512];
            random.nextBytes(data);
            other.write(1024, data, 3);
            assertArrayEquals(data, other.read(1024, 512, 4));
        }
        assertServerStillServes();
    }

    @Test
    void invalidRequestsGetErrorRepliesAndTheConnectionGoesOn() throws Exception {
        try (RawNbdClient c = RawNbdClient.connect(fx.tcp)) {
            c.go("vol0", false, false);
            // Out of range: READ → EINVAL, WRITE → ENOSPC (and the payload is consumed).
            assertError(c, 0, NbdProtocol.CMD_READ, SIZE - 512, 1024, null, NbdProtocol.EINVAL);
            assertError(c, 0, NbdProtocol.CMD_READ, SIZE, 512, null, NbdProtocol.EINVAL);
            assertError(c, 0, NbdProtocol.CMD_WRITE, SIZE - 512, 1024, pattern(1024, 7), NbdProtocol.ENOSPC);
            assertError(c, 0, NbdProtocol.CMD_WRITE, Long.MAX_VALUE - 511, 512, pattern(512, 7),
                    NbdProtocol.ENOSPC);
            assertError(c, 0, NbdProtocol.CMD_READ, -512L, 512, null, NbdProtocol.EINVAL); // 2^64 - 512
            assertError(c, 0, NbdProtocol.CMD_WRITE_ZEROES, SIZE - 4096, 8192, null, NbdProtocol.ENOSPC);
            // Unaligned offset and length.
            assertError(c, 0, NbdProtocol.CMD_READ, 1, 512, null, NbdProtocol.EINVAL);
            assertError(c, 0, NbdProtocol.CMD_WRITE, 0, 100, pattern(100, 9), NbdProtocol.EINVAL);
            // Zero length.
            assertError(c, 0, NbdProtocol.CMD_READ, 0, 0, null, NbdProtocol.EINVAL);
            // Unknown command, unknown flag, flag not valid for the command, FAST_ZERO not advertised.
            assertError(c, 0, 77, 0, 512, null, NbdProtocol.EINVAL);
            assertError(c, 1 << 9, NbdProtocol.CMD_READ, 0, 512, null, NbdProtocol.EINVAL);
            assertError(c, NbdProtocol.CMD_FLAG_NO_HOLE, NbdProtocol.CMD_WRITE, 0, 512, pattern(512, 1),
                    NbdProtocol.EINVAL);
            if (!fx.device.info().canFastZero()) {
                assertError(c, NbdProtocol.CMD_FLAG_FAST_ZERO, NbdProtocol.CMD_WRITE_ZEROES, 0, 4096, null,
                        NbdProtocol.EINVAL);
            }
            if (!fx.device.info().canDiscard()) {
                assertError(c, 0, NbdProtocol.CMD_TRIM, 0, 4096, null, NbdProtocol.EINVAL); // not advertised
            }
            // DF without structured replies, FLUSH with a range, BLOCK_STATUS without a meta context.
            assertError(c, NbdProtocol.CMD_FLAG_DF, NbdProtocol.CMD_READ, 0, 512, null, NbdProtocol.EINVAL);
            assertError(c, 0, NbdProtocol.CMD_FLUSH, 0, 512, null, NbdProtocol.EINVAL);
            assertError(c, 0, NbdProtocol.CMD_BLOCK_STATUS, 0, 512, null, NbdProtocol.EINVAL);
            // Oversized READ and WRITE (payload drained, never buffered whole).
            int tooBig = NbdServerOptions.DEFAULT_MAX_PAYLOAD + 512;
            assertError(c, 0, NbdProtocol.CMD_READ, 0, tooBig, null, NbdProtocol.EINVAL);
            assertError(c, 0, NbdProtocol.CMD_WRITE, 0, tooBig, new byte[tooBig], NbdProtocol.EINVAL);

            // After all that, the same connection still does verified IO...
            byte[] data = pattern(4096, 3);
            c.write(4096, data, 100);
            assertArrayEquals(data, c.read(4096, 4096, 101));
            // ...and no refused request wrote anything.
            assertArrayEquals(new byte[512], c.read(0, 512, 102));
            assertArrayEquals(new byte[1024], c.read(SIZE - 1024, 1024, 103));
        }
        assertServerStillServes();
    }

    @Test
    void structuredErrorsComeAsErrorChunks() throws Exception {
        try (RawNbdClient c = RawNbdClient.connect(fx.tcp)) {
            c.go("vol0", true, true);
            c.sendRequest(0, NbdProtocol.CMD_READ, 11, SIZE, 4096, null);
            RawNbdClient.Reply r = c.readReply(0);
            assertTrue(r.structured() && r.done());
            assertEquals(NbdProtocol.REPLY_TYPE_ERROR, r.type());
            assertEquals(11, r.handle());
            assertEquals(NbdProtocol.EINVAL, r.error());
            ByteBuffer p = ByteBuffer.wrap(r.payload());
            p.getInt();
            assertEquals(r.payload().length - 6, p.getShort() & 0xffff, "message length matches the chunk");
            c.sendRequest(0, NbdProtocol.CMD_BLOCK_STATUS, 12, SIZE - 512, 1024, null);
            r = c.readReply(0);
            assertEquals(NbdProtocol.EINVAL, r.error());
            assertEquals(12, r.handle());
        }
        assertServerStillServes();
    }

    @Test
    void clientVanishingMidWritePayloadWritesNothing() throws Exception {
        long offset = 1 << 20;
        try (RawNbdClient c = RawNbdClient.connect(fx.tcp)) {
            c.go("vol0", false, false);
            ByteBuffer b = ByteBuffer.allocate(28 + 3000);
            NbdRequestHeader.encode(b, 0, 0, NbdProtocol.CMD_WRITE, 1, offset, 64 * 1024);
            b.position(28);
            b.put(pattern(3000, 5));
            b.flip();
            c.write(b);
        }
        assertServerStillServes();
        // The partial payload reached neither the device nor the file.
        try (RawNbdClient c = RawNbdClient.connect(fx.unixAddress())) {
            c.go("vol0", false, false);
            assertArrayEquals(new byte[64 * 1024], c.read(offset, 64 * 1024, 1));
        }
        assertArrayEquals(new byte[64 * 1024], fx.fileBytes(offset, 64 * 1024));
    }

    @Test
    void readOnlyExportRefusesWrites() throws Exception {
        fx.server.addExport(new NbdExport("ro", "", new ReadOnlyView(fx.device)));
        try (RawNbdClient c = RawNbdClient.connect(fx.tcp)) {
            RawNbdClient.ExportInfo info = c.go("ro", false, false);
            assertTrue((info.flags() & NbdProtocol.TFLAG_READ_ONLY) != 0);
            assertEquals(0, info.flags() & (NbdProtocol.TFLAG_SEND_TRIM | NbdProtocol.TFLAG_SEND_WRITE_ZEROES
                    | NbdProtocol.TFLAG_SEND_FLUSH | NbdProtocol.TFLAG_SEND_FUA));
            assertError(c, 0, NbdProtocol.CMD_WRITE, 0, 512, pattern(512, 1), NbdProtocol.EPERM);
            assertError(c, 0, NbdProtocol.CMD_TRIM, 0, 512, null, NbdProtocol.EPERM);
            assertError(c, 0, NbdProtocol.CMD_WRITE_ZEROES, 0, 512, null, NbdProtocol.EPERM);
            assertArrayEquals(new byte[512], c.read(0, 512, 1));
        }
        assertArrayEquals(new byte[512], fx.fileBytes(0, 512));
    }

    private static void assertError(RawNbdClient c, int flags, int type, long offset, int length, byte[] payload,
                                    int expectedError) throws Exception {
        long handle = 0x5eed0000L + type;
        c.sendRequest(flags, type, handle, offset, length, payload);
        RawNbdClient.Reply r = c.readReply(0);
        assertEquals(handle, r.handle());
        assertEquals(expectedError, r.error(), "type " + type + " flags " + flags + " offset " + offset
                + " length " + length);
    }

    private static byte[] pattern(int length, int seed) {
        byte[] b = new byte[length];
        new Random(seed).nextBytes(b);
        return b;
    }
}
