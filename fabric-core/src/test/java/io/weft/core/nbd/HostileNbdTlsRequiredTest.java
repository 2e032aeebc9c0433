package io.weft.core.nbd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.tls.PemTlsMaterial;
import io.weft.core.tls.CertificateAuthority;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * A plaintext client against {@code weft.nbd.tls = require}: every option but STARTTLS and ABORT is refused with
 * NBD_REP_ERR_TLS_REQD, EXPORT_NAME ends the connection, and nothing reaches the device.
 */
@Timeout(60)
class HostileNbdTlsRequiredTest {
    private static final long SIZE = 16L << 20;
    @TempDir
    Path certs;
    private NbdFixture fx;

    @BeforeEach
    void setUp() throws Exception {
        CertificateAuthority.create("weft-test").writeNodeLayout(certs, "node", List.of());
        fx = new NbdFixture(SIZE, NbdServerOptions.defaults(), d -> d,
                NbdTls.fromDirectory(NbdTls.Mode.REQUIRE, certs, false));
    }

    @AfterEach
    void tearDown() throws Exception {
        fx.close();
    }

    @Test
    void everyOptionButStartTlsAndAbortIsRefusedWithoutTls() throws Exception {
        byte[] before = fx.fileBytes(0, 1 << 20);
        try (RawNbdClient c = RawNbdClient.connect(fx.tcp).start()) {
            int[] options = {NbdProtocol.OPT_LIST, NbdProtocol.OPT_STRUCTURED_REPLY, NbdProtocol.OPT_INFO,
                NbdProtocol.OPT_GO, NbdProtocol.OPT_LIST_META_CONTEXT, NbdProtocol.OPT_SET_META_CONTEXT, 12, 999};
            for (int option : options) {
                byte[] data = switch (option) {
                    case NbdProtocol.OPT_INFO, NbdProtocol.OPT_GO ->
                            RawNbdClient.infoRequest(NbdFixture.EXPORT, NbdProtocol.INFO_BLOCK_SIZE);
                    case NbdProtocol.OPT_LIST_META_CONTEXT, NbdProtocol.OPT_SET_META_CONTEXT ->
                            RawNbdClient.metaRequest(NbdFixture.EXPORT, NbdProtocol.BASE_ALLOCATION);
                    default -> new byte[0];
                };
                c.sendOption(option, data);
                RawNbdClient.OptionReply r = c.readOptionReply();
                assertEquals(option, r.option());
                assertEquals(NbdProtocol.REP_ERR_TLS_REQD, r.type(), () -> "option " + option + " answered "
                        + Integer.toHexString(r.type()) + ": " + new String(r.data(), StandardCharsets.UTF_8));
                assertTrue(new String(r.data(), StandardCharsets.UTF_8).contains("weft.nbd.tls"),
                        "the refusal names the setting");
            }
            // The old EXPORT_NAME cannot carry an error: the server hangs up.
            assertThrows(IOException.class, () -> {
                c.sendOption(NbdProtocol.OPT_EXPORT_NAME, NbdFixture.EXPORT.getBytes(StandardCharsets.UTF_8));
                c.readFully(10);
            });
        }
        try (RawNbdClient c = RawNbdClient.connect(fx.tcp).start()) {
            c.sendOption(NbdProtocol.OPT_ABORT, new byte[0]);
            RawNbdClient.expect(c.readOptionReply(), NbdProtocol.REP_ACK);
        }
        assertArrayEquals(before, fx.fileBytes(0, 1 << 20), "nothing reached the device");
        // STARTTLS is what opens the door.
        try (RawNbdClient c = RawNbdClient.connect(fx.tcp).start()) {
            RawNbdClient.expect(c.startTls(PemTlsMaterial.clientContext(certs)), NbdProtocol.REP_ACK);
            c.goAfterStart(NbdFixture.EXPORT);
        }
    }
}
