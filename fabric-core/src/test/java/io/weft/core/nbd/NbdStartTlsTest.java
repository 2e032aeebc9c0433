package io.weft.core.nbd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.tls.PemTlsMaterial;
import io.weft.core.tls.TlsLayout;
import io.weft.core.tls.CertificateAuthority;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import javax.net.ssl.SSLContext;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** NBD_OPT_STARTTLS with a JDK TLS client on the raw protocol client: negotiation rules and data over TLS. */
@Timeout(60)
class NbdStartTlsTest {
    private static final long SIZE = 16L << 20;

    @TempDir
    static Path certs;
    private static Path serverDir;
    private static Path otherCaDir;
    private static SSLContext client;
    private NbdFixture fx;

    @BeforeAll
    static void makeCertificates() throws Exception {
        serverDir = certs.resolve("cluster");
        CertificateAuthority.create("weft-test").writeNodeLayout(serverDir, "node", List.of());
        otherCaDir = certs.resolve("other");
        CertificateAuthority.create("some-other").writeNodeLayout(otherCaDir, "node", List.of());
        client = PemTlsMaterial.clientContext(serverDir);
    }

    @AfterEach
    void tearDown() throws Exception {
        if (fx != null) {
            fx.close();
        }
    }

    private NbdFixture serve(NbdTls.Mode mode, boolean verifyPeer) throws IOException {
        fx = new NbdFixture(SIZE, NbdServerOptions.defaults(), d -> d,
                NbdTls.fromDirectory(mode, serverDir, verifyPeer));
        return fx;
    }

    @Test
    void dataWrittenOverTlsReadsBackOverTlsAndLiesPlainInTheBackingStore() throws Exception {
        long seed = Long.getLong("weft.test.seed", System.nanoTime());
        System.out.println("seed " + seed + " (replay with -Dweft.test.seed=" + seed + ")");
        Random random = new Random(seed);
        serve(NbdTls.Mode.ON, false);
        try (RawNbdClient c = RawNbdClient.connect(fx.tcp).start()) {
            RawNbdClient.expect(c.startTls(client), NbdProtocol.REP_ACK);
            c.goAfterStart(NbdFixture.EXPORT);
            // Sizes around the 16 KiB TLS record: smaller than one, a few, and many (the 4 MiB one).
            int[] lengths = {512, 4096, 16384, 16896, 100352, 1 << 20, 4 << 20};
            long offset = 0;
            long handle = 1;
            for (int length : lengths) {
                byte[] data = new byte[length];
                random.nextBytes(data);
                c.write(offset, data, handle++);
                assertArrayEquals(data, c.read(offset, length, handle++), "read back " + length + " bytes");
                assertArrayEquals(data, fx.fileBytes(offset, length), "backing store, " + length + " bytes");
                offset += length;
            }
            // Pipelined: several requests in flight, replies come back through the same TLS session.
            byte[] a = new byte[65536];
            byte[] b = new byte[65536];
            random.nextBytes(a);
            random.nextBytes(b);
            c.sendRequest(0, NbdProtocol.CMD_WRITE, 100, 0, a.length, a);
            c.sendRequest(0, NbdProtocol.CMD_WRITE, 101, a.length, b.length, b);
            c.sendRequest(0, NbdProtocol.CMD_FLUSH, 102, 0, 0, null);
            for (int i = 0; i < 3; i++) {
                assertEquals(0, c.readReply(0).error());
            }
            assertArrayEquals(a, fx.fileBytes(0, a.length));
            assertArrayEquals(b, fx.fileBytes(a.length, b.length));
            c.disconnect();
            assertTrue(c.closedByServer(), "the server ends the session after DISC");
        }
    }

    @Test
    void optionsNegotiatedBeforeStartTlsAreForgotten() throws Exception {
        serve(NbdTls.Mode.ON, false);
        try (RawNbdClient c = RawNbdClient.connect(fx.tcp).start()) {
            c.sendOption(NbdProtocol.OPT_STRUCTURED_REPLY, new byte[0]);
            RawNbdClient.expect(c.readOptionReply(), NbdProtocol.REP_ACK);
            RawNbdClient.expect(c.startTls(client), NbdProtocol.REP_ACK);
            RawNbdClient.ExportInfo info = c.goAfterStart(NbdFixture.EXPORT);
            assertEquals(0, info.flags() & NbdProtocol.TFLAG_SEND_DF, "structured replies were reset by STARTTLS");
            c.sendRequest(0, NbdProtocol.CMD_READ, 7, 0, 4096, null);
            assertFalse(c.readReply(4096).structured(), "a simple reply: structured replies were forgotten");
        }
    }

    @Test
    void startTlsTwiceOrWithDataIsInvalid() throws Exception {
        serve(NbdTls.Mode.ON, false);
        try (RawNbdClient c = RawNbdClient.connect(fx.tcp).start()) {
            c.sendOption(NbdProtocol.OPT_STARTTLS, new byte[] {1, 2, 3});
            RawNbdClient.expect(c.readOptionReply(), NbdProtocol.REP_ERR_INVALID);
            RawNbdClient.expect(c.startTls(client), NbdProtocol.REP_ACK);
            c.sendOption(NbdProtocol.OPT_STARTTLS, new byte[0]);
            RawNbdClient.expect(c.readOptionReply(), NbdProtocol.REP_ERR_INVALID);
            c.goAfterStart(NbdFixture.EXPORT); // the session is still usable
        }
    }

    @Test
    void startTlsIsRefusedWhenTlsIsOff() throws Exception {
        serve(NbdTls.Mode.OFF, false);
        try (RawNbdClient c = RawNbdClient.connect(fx.tcp).start()) {
            RawNbdClient.expect(c.startTls(client), NbdProtocol.REP_ERR_UNSUP);
            c.goAfterStart(NbdFixture.EXPORT); // plaintext goes on
        }
    }

    @Test
    void plaintextClientsAreServedWhenTlsIsOn() throws Exception {
        serve(NbdTls.Mode.ON, false);
        try (RawNbdClient c = RawNbdClient.connect(fx.unixAddress())) {
            c.go(NbdFixture.EXPORT, false, false);
            byte[] data = new byte[8192];
            new Random(1).nextBytes(data);
            c.write(8192, data, 1);
            assertArrayEquals(data, c.read(8192, data.length, 2));
        }
    }

    @Test
    void verifyPeerAcceptsOnlyClientsWithACertificateFromTheCa() throws Exception {
        serve(NbdTls.Mode.REQUIRE, true);
        Path caOnly = Files.createDirectories(certs.resolve("ca-only"));
        Files.copy(serverDir.resolve(TlsLayout.CA_CERT), caOnly.resolve(TlsLayout.CA_CERT),
                java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        // The other CA's client certificate, but trusting our server's CA (so only the server can object).
        Path foreign = Files.createDirectories(certs.resolve("foreign-client"));
        for (String f : new String[] {TlsLayout.CLIENT_CERT, TlsLayout.CLIENT_KEY}) {
            Files.copy(otherCaDir.resolve(f), foreign.resolve(f), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        }
        Files.copy(serverDir.resolve(TlsLayout.CA_CERT), foreign.resolve(TlsLayout.CA_CERT),
                java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        for (Path dir : new Path[] {caOnly, foreign}) {
            try (RawNbdClient c = RawNbdClient.connect(fx.tcp).start()) {
                SSLContext ctx = PemTlsMaterial.clientContext(dir);
                // TLS 1.3: the client may finish its side before the server rejects its certificate, so the
                // refusal shows at the handshake or at the first exchange after it.
                assertThrows(IOException.class, () -> {
                    c.startTls(ctx);
                    c.goAfterStart(NbdFixture.EXPORT);
                }, "client of " + dir.getFileName() + " must be refused");
            }
        }
        try (RawNbdClient c = RawNbdClient.connect(fx.tcp).start()) {
            RawNbdClient.expect(c.startTls(client), NbdProtocol.REP_ACK);
            c.goAfterStart(NbdFixture.EXPORT);
            byte[] data = new byte[4096];
            new Random(2).nextBytes(data);
            c.write(0, data, 1);
            assertArrayEquals(data, fx.fileBytes(0, data.length));
        }
    }
}
