package io.weft.actors.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.weft.core.nbd.NbdServerOptions;
import io.weft.core.nbd.NbdTls;
import io.weft.core.tls.CertificateAuthority;
import io.weft.testkit.TestConfig;
import java.nio.file.Path;
import java.util.List;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** weft.nbd.* → NbdServerOptions: the documented defaults, every key applied, and errors that name the key. */
class NbdServerExporterTest {

    private static Config config(String hocon) {
        return ConfigFactory.parseString(hocon).withFallback(ConfigFactory.defaultReference()).resolve();
    }

    @Test
    void defaultsAreTheDocumentedOnes() {
        NbdServerOptions o = NbdServerExporter.serverOptions(config(""));
        assertEquals(32 << 20, o.maxPayload());
        assertEquals(Duration.ofSeconds(10), o.handshakeTimeout());
        assertEquals(Duration.ZERO, o.idleTimeout(), "idle connections are kept by default");
        assertEquals(Duration.ofSeconds(30), o.readStallTimeout());
        assertEquals(Duration.ofSeconds(30), o.writeStallTimeout());
        assertEquals(256L << 20, o.bufferBudget());
    }

    @Test
    void everyKeyIsApplied() {
        NbdServerOptions o = NbdServerExporter.serverOptions(config("weft.nbd { max-request-size = 1MiB, "
                + "handshake-timeout = 2s, idle-timeout = 1h, read-stall-timeout = 3s, write-stall-timeout = 4s, "
                + "buffer-budget = 8MiB }"));
        assertEquals(1 << 20, o.maxPayload());
        assertEquals(Duration.ofSeconds(2), o.handshakeTimeout());
        assertEquals(Duration.ofHours(1), o.idleTimeout());
        assertEquals(Duration.ofSeconds(3), o.readStallTimeout());
        assertEquals(Duration.ofSeconds(4), o.writeStallTimeout());
        assertEquals(8L << 20, o.bufferBudget());
    }

    @Test
    void errorsNameTheKey() {
        for (String[] c : new String[][] {
                {"weft.nbd.handshake-timeout = soon", "weft.nbd.handshake-timeout: "},
                {"weft.nbd.write-stall-timeout = -1s", "weft.nbd.write-stall-timeout: must not be negative"},
                {"weft.nbd.buffer-budget = lots", "weft.nbd.buffer-budget: "},
                {"weft.nbd.buffer-budget = 48MiB", "weft.nbd.buffer-budget: must be at least twice "
                        + "weft.nbd.max-request-size"},
        }) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> NbdServerExporter.serverOptions(config(c[0])), c[0]);
            assertTrue(e.getMessage().startsWith(c[1]), c[0] + " → " + e.getMessage());
        }
    }

    @Test
    void tlsIsOffByDefault() {
        NbdTls tls = NbdServerExporter.serverTls(config(""));
        assertEquals(NbdTls.Mode.OFF, tls.mode());
    }

    @Test
    void tlsCertificatesDefaultToTheNodesCertificates(@TempDir Path certs) throws Exception {
        CertificateAuthority.create("weft-test").writeNodeLayout(certs, "node", List.of());
        NbdTls own = NbdServerExporter.serverTls(TestConfig.of("weft.nbd.tls", "require")
                .with("weft.nbd.tls-certificates", certs).with("weft.nbd.tls-verify-peer", "on").overReference());
        assertEquals(NbdTls.Mode.REQUIRE, own.mode());
        assertTrue(own.verifyPeer());
        NbdTls node = NbdServerExporter.serverTls(TestConfig.of("weft.nbd.tls", "on")
                .with("weft.tls.certificates", certs).overReference());
        assertEquals(NbdTls.Mode.ON, node.mode());
        assertTrue(node.context() != null);
    }

    @Test
    void tlsErrorsNameTheKey(@TempDir Path empty) {
        for (String[] c : new String[][] {
                {"weft.nbd.tls = maybe", "weft.nbd.tls: expected off, on or require"},
                {"weft.nbd.tls = require", "weft.nbd.tls-certificates: weft.nbd.tls = require needs a certificate"},
                {"weft.nbd.tls = on\nweft.nbd.tls-certificates = \"" + empty + "\"",
                        "weft.nbd.tls-certificates: " + empty.resolve("server-cert.pem") + ": no such file"},
                {"weft.nbd.tls = on\nweft.tls.certificates = \"" + empty + "\"",
                        "weft.tls.certificates: " + empty.resolve("server-cert.pem") + ": no such file"},
                {"weft.nbd.tls-verify-peer = perhaps", "weft.nbd.tls-verify-peer: "},
        }) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> NbdServerExporter.serverTls(config(c[0])), c[0]);
            assertTrue(e.getMessage().startsWith(c[1]), c[0] + " → " + e.getMessage());
        }
    }
}
