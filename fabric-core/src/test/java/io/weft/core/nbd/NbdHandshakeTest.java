package io.weft.core.nbd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.store.StoreBlockDevice;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Option negotiation over raw sockets: every reply checked byte by byte. */
@Timeout(60)
class NbdHandshakeTest {
    private static final long SIZE = 16L << 20;
    private NbdFixture fx;

    @BeforeEach
    void setUp() throws Exception {
        fx = new NbdFixture(SIZE);
    }

    @AfterEach
    void tearDown() throws Exception {
        fx.close();
    }

    @Test
    void greetingAdvertisesFixedNewstyleAndNoZeroes() throws Exception {
        try (RawNbdClient c = RawNbdClient.connect(fx.tcp)) {
            assertEquals(NbdProtocol.FLAG_FIXED_NEWSTYLE | NbdProtocol.FLAG_NO_ZEROES, c.readGreeting());
        }
    }

    @Test
    void infoAndGoReportIdenticalSizeAndFlags() throws Exception {
        try (RawNbdClient c = RawNbdClient.connect(fx.unixAddress()).start()) {
            c.sendOption(NbdProtocol.OPT_STRUCTURED_REPLY, new byte[0]);
            RawNbdClient.expect(c.readOptionReply(), NbdProtocol.REP_ACK);
            byte[] req = RawNbdClient.infoRequest("vol0", NbdProtocol.INFO_NAME, NbdProtocol.INFO_DESCRIPTION,
                    NbdProtocol.INFO_BLOCK_SIZE);
            c.sendOption(NbdProtocol.OPT_INFO, req);
            List<RawNbdClient.OptionReply> info = c.readOptionReplies();
            c.sendOption(NbdProtocol.OPT_GO, req);
            List<RawNbdClient.OptionReply> go = c.readOptionReplies();

            RawNbdClient.expect(info.get(info.size() - 1), NbdProtocol.REP_ACK);
            RawNbdClient.expect(go.get(go.size() - 1), NbdProtocol.REP_ACK);
            assertEquals(info.size(), go.size());
            for (int i = 0; i < info.size(); i++) {
                assertEquals(info.get(i).type(), go.get(i).type());
                assertArrayEquals(info.get(i).data(), go.get(i).data(), "reply " + i + " differs");
            }
            RawNbdClient.ExportInfo e = RawNbdClient.exportInfo(go);
            assertNotNull(e);
            assertEquals(SIZE, e.size());
            int expected = NbdProtocol.TFLAG_HAS_FLAGS | NbdProtocol.TFLAG_SEND_FLUSH | NbdProtocol.TFLAG_SEND_FUA
                    | NbdProtocol.TFLAG_SEND_WRITE_ZEROES | NbdProtocol.TFLAG_SEND_DF
                    | NbdProtocol.TFLAG_CAN_MULTI_CONN | NbdProtocol.TFLAG_SEND_CACHE;
            if (fx.device.info().canDiscard()) {
                expected |= NbdProtocol.TFLAG_SEND_TRIM;
            }
            if (fx.device.info().canFastZero()) {
                expected |= NbdProtocol.TFLAG_SEND_FAST_ZERO;
            }
            assertEquals(expected, e.flags());
            boolean sawName = false;
            boolean sawDescription = false;
            boolean sawBlockSize = false;
            for (RawNbdClient.OptionReply r : go) {
                if (r.type() != NbdProtocol.REP_INFO) {
                    continue;
                }
                ByteBuffer b = r.buffer();
                int type = b.getShort();
                byte[] rest = new byte[b.remaining()];
                b.duplicate().get(rest);
                if (type == NbdProtocol.INFO_NAME) {
                    sawName = true;
                    assertEquals("vol0", new String(rest, StandardCharsets.UTF_8));
                } else if (type == NbdProtocol.INFO_DESCRIPTION) {
                    sawDescription = true;
                    assertEquals("test volume", new String(rest, StandardCharsets.UTF_8));
                } else if (type == NbdProtocol.INFO_BLOCK_SIZE) {
                    sawBlockSize = true;
                    assertEquals(512, b.getInt());
                    assertEquals(4096, b.getInt());
                    assertEquals(StoreBlockDevice.DEFAULT_MAX_IO, b.getInt());
                }
            }
            assertTrue(sawName && sawDescription && sawBlockSize, "NAME, DESCRIPTION and BLOCK_SIZE infos");
            // Transmission works after GO.
            byte[] data = new byte[4096];
            new Random(1).nextBytes(data);
            c.write(8192, data, 7);
            // Structured replies are on: a READ comes back as one OFFSET_DATA chunk with DONE.
            c.sendRequest(0, NbdProtocol.CMD_READ, 8, 8192, 4096, null);
            RawNbdClient.Reply r = c.readReply(0);
            assertTrue(r.structured() && r.done());
            assertEquals(NbdProtocol.REPLY_TYPE_OFFSET_DATA, r.type());
            ByteBuffer p = ByteBuffer.wrap(r.payload());
            assertEquals(8192, p.getLong());
            byte[] got = new byte[4096];
            p.get(got);
            assertArrayEquals(data, got);
        }
    }

    @Test
    void listNamesEveryExport() throws Exception {
        fx.server.addExport(new NbdExport("second", "the other one", fx.device));
        try (RawNbdClient c = RawNbdClient.connect(fx.tcp).start()) {
            c.sendOption(NbdProtocol.OPT_LIST, new byte[0]);
            List<RawNbdClient.OptionReply> replies = c.readOptionReplies();
            RawNbdClient.expect(replies.get(replies.size() - 1), NbdProtocol.REP_ACK);
            assertEquals(3, replies.size());
            assertEquals("vol0test volume", serverEntry(replies.get(0)));
            assertEquals("secondthe other one", serverEntry(replies.get(1)));
            // LIST with data is invalid, and the handshake goes on.
            c.sendOption(NbdProtocol.OPT_LIST, new byte[] {1});
            RawNbdClient.expect(c.readOptionReply(), NbdProtocol.REP_ERR_INVALID);
            assertEquals(SIZE, c.goAfterStart("second").size());
        }
    }

    private static String serverEntry(RawNbdClient.OptionReply r) {
        assertEquals(NbdProtocol.REP_SERVER, r.type());
        ByteBuffer b = r.buffer();
        int nameLength = b.getInt();
        byte[] rest = new byte[b.remaining()];
        b.get(rest);
        assertTrue(nameLength <= rest.length);
        return new String(rest, StandardCharsets.UTF_8);
    }

    @Test
    void unknownOptionsAreRefusedAndTheHandshakeContinues() throws Exception {
        try (RawNbdClient c = RawNbdClient.connect(fx.tcp).start()) {
            c.sendOption(4242, new byte[300]);
            RawNbdClient.OptionReply r = c.readOptionReply();
            assertEquals(4242, r.option());
            assertEquals(NbdProtocol.REP_ERR_UNSUP, r.type());
            c.sendOption(NbdProtocol.OPT_STARTTLS, new byte[0]);
            RawNbdClient.expect(c.readOptionReply(), NbdProtocol.REP_ERR_UNSUP);
            c.sendOption(11 /* EXTENDED_HEADERS */, new byte[0]);
            RawNbdClient.expect(c.readOptionReply(), NbdProtocol.REP_ERR_UNSUP);
            assertEquals(SIZE, c.goAfterStart("vol0").size());
            assertArrayEquals(new byte[512], c.read(0, 512, 1));
        }
    }

    @Test
    void goForAnUnknownExportFailsAndAllowsAnotherTry() throws Exception {
        try (RawNbdClient c = RawNbdClient.connect(fx.tcp).start()) {
            c.sendOption(NbdProtocol.OPT_GO, RawNbdClient.infoRequest("nope"));
            RawNbdClient.expect(c.readOptionReply(), NbdProtocol.REP_ERR_UNKNOWN);
            // Name length beyond the option data.
            ByteBuffer bad = ByteBuffer.allocate(10).putInt(100).putShort((short) 0);
            c.sendOption(NbdProtocol.OPT_GO, bad.array());
            RawNbdClient.expect(c.readOptionReply(), NbdProtocol.REP_ERR_INVALID);
            // Info request count not matching the length.
            ByteBuffer bad2 = ByteBuffer.allocate(12).putInt(4).put("vol0".getBytes(StandardCharsets.US_ASCII))
                    .putShort((short) 3);
            c.sendOption(NbdProtocol.OPT_INFO, bad2.array());
            RawNbdClient.expect(c.readOptionReply(), NbdProtocol.REP_ERR_INVALID);
            // The empty name selects the default export.
            assertEquals(SIZE, c.goAfterStart("").size());
        }
    }

    @Test
    void exportNameEntersTransmissionWithOrWithoutZeroes() throws Exception {
        for (int clientFlags : new int[] {1, 3}) {
            try (RawNbdClient c = RawNbdClient.connect(fx.tcp)) {
                c.readGreeting();
                c.sendClientFlags(clientFlags);
                c.sendOption(NbdProtocol.OPT_EXPORT_NAME, "vol0".getBytes(StandardCharsets.US_ASCII));
                ByteBuffer b = c.readFully((clientFlags & 2) != 0 ? 10 : 134);
                assertEquals(SIZE, b.getLong());
                assertTrue((b.getShort() & NbdProtocol.TFLAG_HAS_FLAGS) != 0);
                while (b.hasRemaining()) {
                    assertEquals(0, b.get());
                }
                byte[] data = "hello export name".getBytes(StandardCharsets.US_ASCII);
                byte[] block = new byte[512];
                System.arraycopy(data, 0, block, 0, data.length);
                c.write(512L * clientFlags, block, 1);
                assertArrayEquals(block, c.read(512L * clientFlags, 512, 2));
            }
        }
    }

    @Test
    void exportNameForAnUnknownExportClosesOnlyThatConnection() throws Exception {
        try (RawNbdClient c = RawNbdClient.connect(fx.tcp).start()) {
            c.sendOption(NbdProtocol.OPT_EXPORT_NAME, "missing".getBytes(StandardCharsets.US_ASCII));
            assertTrue(c.closedByServer());
        }
        try (RawNbdClient c = RawNbdClient.connect(fx.tcp)) {
            assertEquals(SIZE, c.go("vol0", false, false).size());
        }
    }

    @Test
    void structuredReplyAndMetaContexts() throws Exception {
        try (RawNbdClient c = RawNbdClient.connect(fx.tcp).start()) {
            // SET before STRUCTURED_REPLY is refused.
            c.sendOption(NbdProtocol.OPT_SET_META_CONTEXT, RawNbdClient.metaRequest("vol0", "base:allocation"));
            RawNbdClient.expect(c.readOptionReply(), NbdProtocol.REP_ERR_INVALID);
            c.sendOption(NbdProtocol.OPT_STRUCTURED_REPLY, new byte[1]);
            RawNbdClient.expect(c.readOptionReply(), NbdProtocol.REP_ERR_INVALID);
            c.sendOption(NbdProtocol.OPT_STRUCTURED_REPLY, new byte[0]);
            RawNbdClient.expect(c.readOptionReply(), NbdProtocol.REP_ACK);

            for (String[] queries : new String[][] {{}, {"base:"}, {"base:allocation", "x-other:thing"}}) {
                c.sendOption(NbdProtocol.OPT_LIST_META_CONTEXT, RawNbdClient.metaRequest("vol0", queries));
                List<RawNbdClient.OptionReply> list = c.readOptionReplies();
                assertEquals(2, list.size(), "one context then ACK for " + String.join(",", queries));
                assertEquals(NbdProtocol.REP_META_CONTEXT, list.get(0).type());
                assertEquals("base:allocation", contextName(list.get(0)));
                RawNbdClient.expect(list.get(1), NbdProtocol.REP_ACK);
            }
            c.sendOption(NbdProtocol.OPT_LIST_META_CONTEXT, RawNbdClient.metaRequest("vol0", "qemu:dirty"));
            RawNbdClient.expect(c.readOptionReply(), NbdProtocol.REP_ACK);
            c.sendOption(NbdProtocol.OPT_LIST_META_CONTEXT, RawNbdClient.metaRequest("nope"));
            RawNbdClient.expect(c.readOptionReply(), NbdProtocol.REP_ERR_UNKNOWN);
            // A query length running past the option data.
            ByteBuffer bad = ByteBuffer.allocate(16).putInt(4).put("vol0".getBytes(StandardCharsets.US_ASCII))
                    .putInt(1).putInt(99);
            c.sendOption(NbdProtocol.OPT_SET_META_CONTEXT, bad.array());
            RawNbdClient.expect(c.readOptionReply(), NbdProtocol.REP_ERR_INVALID);

            c.sendOption(NbdProtocol.OPT_SET_META_CONTEXT, RawNbdClient.metaRequest("vol0", "base:allocation"));
            List<RawNbdClient.OptionReply> set = c.readOptionReplies();
            assertEquals(2, set.size());
            assertEquals(NbdProtocol.REP_META_CONTEXT, set.get(0).type());
            int id = set.get(0).buffer().getInt();
            assertEquals("base:allocation", contextName(set.get(0)));
            c.goAfterStart("vol0");

            c.sendRequest(0, NbdProtocol.CMD_BLOCK_STATUS, 5, 0, 1 << 20, null);
            RawNbdClient.Reply r = c.readReply(0);
            assertEquals(NbdProtocol.REPLY_TYPE_BLOCK_STATUS, r.type());
            assertTrue(r.done());
            ByteBuffer p = ByteBuffer.wrap(r.payload());
            assertEquals(id, p.getInt());
            long covered = 0;
            while (p.hasRemaining()) {
                long len = p.getInt() & 0xffffffffL;
                p.getInt();
                assertTrue(len > 0 && len % 512 == 0);
                covered += len;
            }
            assertTrue(covered > 0 && covered <= 1 << 20);
        }
    }

    @Test
    void blockStatusWithoutMetaContextIsInvalid() throws Exception {
        try (RawNbdClient c = RawNbdClient.connect(fx.tcp)) {
            c.go("vol0", true, false);
            c.sendRequest(0, NbdProtocol.CMD_BLOCK_STATUS, 9, 0, 4096, null);
            RawNbdClient.Reply r = c.readReply(0);
            assertEquals(NbdProtocol.REPLY_TYPE_ERROR, r.type());
            assertEquals(NbdProtocol.EINVAL, r.error());
            assertEquals(9, r.handle());
        }
    }

    private static String contextName(RawNbdClient.OptionReply r) {
        ByteBuffer b = r.buffer();
        b.getInt();
        byte[] name = new byte[b.remaining()];
        b.get(name);
        return new String(name, StandardCharsets.UTF_8);
    }

    @Test
    void abortIsAcknowledgedAndClosed() throws Exception {
        try (RawNbdClient c = RawNbdClient.connect(fx.tcp).start()) {
            c.sendOption(NbdProtocol.OPT_ABORT, new byte[0]);
            RawNbdClient.expect(c.readOptionReply(), NbdProtocol.REP_ACK);
            assertTrue(c.closedByServer());
        }
    }
}
