package io.weft.core.tls;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.testing.RequiredTool;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.KeyStore;
import java.security.cert.CertPathValidator;
import java.security.cert.CertificateFactory;
import java.security.cert.PKIXParameters;
import java.security.cert.TrustAnchor;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSocket;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CertificateAuthorityTest {
    @TempDir
    Path dir;

    @Test
    void nodeLayoutHoldsAChainTheJdkValidatesWithTheNamesTheNodeListensOn() throws Exception {
        CertificateAuthority ca = CertificateAuthority.create("test");
        ca.writeAuthority(dir);
        Path a = dir.resolve("a");
        ca.writeNodeLayout(a, "a", List.of("10.1.2.3", "node-a.example", "::1"));

        X509Certificate server = TlsLayout.readCertificate(a.resolve(TlsLayout.SERVER_CERT));
        X509Certificate client = TlsLayout.readCertificate(a.resolve(TlsLayout.CLIENT_CERT));
        X509Certificate caCert = TlsLayout.readCertificate(a.resolve(TlsLayout.CA_CERT));
        assertEquals(ca.certificate(), caCert);
        validate(server, caCert);
        validate(client, caCert);

        List<String> names = new ArrayList<>();
        for (List<?> san : server.getSubjectAlternativeNames()) {
            names.add(san.get(1).toString());
        }
        assertTrue(names.containsAll(List.of("127.0.0.1", "localhost", "a", "10.1.2.3", "node-a.example")), "" + names);
        assertTrue(names.stream().anyMatch(n -> n.startsWith("0:0:0:0:0:0:0:1")), "::1 as IP SAN: " + names);
        assertTrue(server.getExtendedKeyUsage().containsAll(List.of("1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2")));
        assertEquals(List.of("1.3.6.1.5.5.7.3.2"), client.getExtendedKeyUsage());
        assertEquals("CN=a,O=weft", client.getSubjectX500Principal().getName());

        for (String key : List.of(TlsLayout.SERVER_KEY, TlsLayout.CLIENT_KEY, TlsLayout.KEYSTORE,
                TlsLayout.KEYSTORE_PASSWORD)) {
            assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(a.resolve(key))),
                    key);
        }
        assertEquals("rw-------", PosixFilePermissions.toString(
                Files.getPosixFilePermissions(dir.resolve(TlsLayout.CA_KEY))));
        assertTrue(Files.readString(a.resolve(TlsLayout.SERVER_KEY)).startsWith("-----BEGIN PRIVATE KEY-----\n"));
        assertTrue(Files.notExists(a.resolve(TlsLayout.CA_KEY)), "the CA key never goes into a node directory");

        TlsLayout layout = TlsLayout.open(a);
        KeyStore keys = KeyStore.getInstance("PKCS12");
        try (InputStream in = Files.newInputStream(layout.keyStore())) {
            keys.load(in, layout.password().toCharArray());
        }
        assertEquals(server, keys.getCertificate(TlsLayout.KEY_ALIAS));
        assertEquals(2, keys.getCertificateChain(TlsLayout.KEY_ALIAS).length);
    }

    @Test
    void aLoadedAuthorityIssuesUnderTheSameCa() throws Exception {
        CertificateAuthority ca = CertificateAuthority.create("test");
        ca.writeAuthority(dir);
        CertificateAuthority again = CertificateAuthority.load(dir);
        again.writeNodeLayout(dir.resolve("b"), "b", List.of());
        validate(TlsLayout.readCertificate(dir.resolve("b").resolve(TlsLayout.SERVER_CERT)), ca.certificate());
    }

    @Test
    void aHostThatIsNeitherANameNorAnAddressIsRefused() {
        CertificateAuthority ca = CertificateAuthority.create("test");
        assertThrows(IllegalArgumentException.class, () -> ca.writeNodeLayout(dir.resolve("a"), "a",
                List.of("not a host")));
    }

    @Test
    void twoNodesOfOneCaAuthenticateEachOtherAndANodeOfAnotherCaIsRefused() throws Exception {
        CertificateAuthority ca = CertificateAuthority.create("test");
        ca.writeNodeLayout(dir.resolve("a"), "a", List.of());
        ca.writeNodeLayout(dir.resolve("b"), "b", List.of());
        CertificateAuthority other = CertificateAuthority.create("other");
        other.writeNodeLayout(dir.resolve("x"), "x", List.of());

        assertEquals("hello", handshake(TlsLayout.open(dir.resolve("a")), TlsLayout.open(dir.resolve("b"))));
        assertThrows(IOException.class, () -> handshake(TlsLayout.open(dir.resolve("a")),
                TlsLayout.open(dir.resolve("x"))), "a server must refuse a client certificate of another CA");
        assertThrows(IOException.class, () -> handshake(TlsLayout.open(dir.resolve("x")),
                TlsLayout.open(dir.resolve("a"))), "a client must refuse a server certificate of another CA");
    }

    @Test
    void gnuTlsInNbdkitAndLibnbdAcceptsTheLayoutWithMutualAuthentication() throws Exception {
        Path nbdkit = RequiredTool.require("nbdkit", "nbdkit");
        Path nbdinfo = RequiredTool.require("nbdinfo", "libnbd-bin");
        CertificateAuthority ca = CertificateAuthority.create("test");
        ca.writeNodeLayout(dir.resolve("a"), "a", List.of());
        ca.writeNodeLayout(dir.resolve("b"), "b", List.of());
        CertificateAuthority other = CertificateAuthority.create("other");
        other.writeNodeLayout(dir.resolve("x"), "x", List.of());

        Run ok = nbdkitWithClient(nbdkit, nbdinfo, dir.resolve("a"), dir.resolve("b"));
        assertEquals(0, ok.exit, ok.output);
        assertTrue(ok.output.contains("1048576"), ok.output);
        Run foreign = nbdkitWithClient(nbdkit, nbdinfo, dir.resolve("a"), dir.resolve("x"));
        assertNotEquals(0, foreign.exit, "a client of another CA must be refused: " + foreign.output);
    }

    private record Run(int exit, String output) {
    }

    /** nbdkit serving 1 MiB over TLS (client certificate required) with the server layout; nbdinfo as client. */
    private static Run nbdkitWithClient(Path nbdkit, Path nbdinfo, Path serverDir, Path clientDir) throws Exception {
        int port;
        try (ServerSocket probe = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            port = probe.getLocalPort();
        }
        String uri = "nbds://127.0.0.1:" + port + "/?tls-certificates=" + clientDir;
        Process p = new ProcessBuilder(nbdkit.toString(), "-f", "-i", "127.0.0.1", "-p", String.valueOf(port),
                "--tls=require", "--tls-certificates=" + serverDir, "--tls-verify-peer", "memory", "1M",
                "--run", nbdinfo + " --size '" + uri + "'")
                .redirectErrorStream(true).start();
        String out;
        try (InputStream in = p.getInputStream()) {
            out = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("nbdkit did not exit: " + out);
        }
        return new Run(p.exitValue(), out);
    }

    private static void validate(X509Certificate cert, X509Certificate caCert) throws Exception {
        PKIXParameters params = new PKIXParameters(Set.of(new TrustAnchor(caCert, null)));
        params.setRevocationEnabled(false);
        CertPathValidator.getInstance("PKIX").validate(
                CertificateFactory.getInstance("X.509").generateCertPath(List.of(cert)), params);
    }

    /** A TLS 1.3 exchange on loopback; the server needs a client certificate. */
    private static String handshake(TlsLayout server, TlsLayout client) throws Exception {
        try (SSLServerSocket listener = (SSLServerSocket) server.sslContext().getServerSocketFactory()
                .createServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            listener.setNeedClientAuth(true);
            CompletableFuture<Void> served = CompletableFuture.runAsync(() -> {
                try (SSLSocket s = (SSLSocket) listener.accept()) {
                    s.startHandshake();
                    s.getOutputStream().write("hello\n".getBytes(StandardCharsets.US_ASCII));
                    s.getOutputStream().flush();
                    s.getInputStream().read();
                } catch (IOException e) {
                    // the client side reports the failure
                }
            });
            try (SSLSocket s = (SSLSocket) client.sslContext().getSocketFactory()
                    .createSocket(InetAddress.getLoopbackAddress(), listener.getLocalPort())) {
                s.setSoTimeout(20_000);
                s.startHandshake();
                InputStream in = s.getInputStream();
                byte[] buf = new byte[6];
                int n = 0;
                while (n < 6) {
                    int r = in.read(buf, n, 6 - n);
                    if (r < 0) {
                        throw new IOException("closed after " + n + " bytes");
                    }
                    n += r;
                }
                OutputStream out = s.getOutputStream();
                out.write(1);
                out.flush();
                return new String(buf, 0, 5, StandardCharsets.US_ASCII);
            } finally {
                served.get(30, TimeUnit.SECONDS);
            }
        }
    }
}
