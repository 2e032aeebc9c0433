package io.weft.node.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.testing.RequiredTool;
import io.weft.core.tls.TlsLayout;
import java.io.InputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

class CertsCommandTest {
    @TempDir
    Path dir;
    private final StringWriter out = new StringWriter();
    private final StringWriter err = new StringWriter();

    private int run(String... args) {
        CommandLine cli = WeftMain.commandLine();
        cli.setOut(new PrintWriter(out, true));
        cli.setErr(new PrintWriter(err, true));
        return cli.execute(args);
    }

    @Test
    void initWritesACaAndOneLayoutPerNodeThatGnuTlsAndTheJdkRead() throws Exception {
        Path certs = dir.resolve("certs");
        assertEquals(0, run("certs", "init", certs.toString(), "--nodes", "a,b,c", "--hosts", "10.9.8.7",
                "--hosts", "storage.example"), err.toString());
        Path certtool = RequiredTool.require("certtool", "gnutls-bin");
        X509Certificate ca = TlsLayout.readCertificate(certs.resolve(TlsLayout.CA_CERT));
        for (String node : List.of("a", "b", "c")) {
            Path nodeDir = certs.resolve(node);
            TlsLayout layout = TlsLayout.open(nodeDir);
            assertEquals(ca, TlsLayout.readCertificate(nodeDir.resolve(TlsLayout.CA_CERT)));
            X509Certificate server = TlsLayout.readCertificate(nodeDir.resolve(TlsLayout.SERVER_CERT));
            server.verify(ca.getPublicKey());
            List<String> names = new ArrayList<>();
            for (List<?> san : server.getSubjectAlternativeNames()) {
                names.add(san.get(1).toString());
            }
            assertTrue(names.containsAll(List.of("127.0.0.1", "localhost", node, "10.9.8.7", "storage.example")),
                    node + ": " + names);
            assertEquals("rw-------", mode(nodeDir.resolve(TlsLayout.SERVER_KEY)));
            assertEquals("rw-------", mode(nodeDir.resolve(TlsLayout.CLIENT_KEY)));
            assertEquals("rw-------", mode(nodeDir.resolve(TlsLayout.KEYSTORE_PASSWORD)));
            assertEquals("rwx------", mode(nodeDir));
            layout.sslContext();
            // GnuTLS (the library nbdkit, qemu and libnbd use) verifies the chains against the CA.
            for (String cert : List.of(TlsLayout.SERVER_CERT, TlsLayout.CLIENT_CERT)) {
                String verified = exec(certtool.toString(), "--verify", "--load-ca-certificate",
                        certs.resolve(TlsLayout.CA_CERT).toString(), "--infile", nodeDir.resolve(cert).toString());
                assertTrue(verified.contains("Verified"), cert + ": " + verified);
            }
        }
        assertEquals("rw-------", mode(certs.resolve(TlsLayout.CA_KEY)));
        assertTrue(Files.notExists(certs.resolve(TlsLayout.SERVER_CERT)), "several nodes: DIR holds only the CA");
    }

    @Test
    void oneNodeAlsoGetsItsLayoutInDirAndASecondInitAddsANodeUnderTheSameCa() throws Exception {
        Path certs = dir.resolve("one");
        assertEquals(0, run("certs", "init", certs.toString(), "--nodes", "solo"), err.toString());
        TlsLayout.open(certs);
        assertEquals("rw-------", mode(certs.resolve(TlsLayout.SERVER_KEY)));
        assertEquals(Files.readString(certs.resolve("solo").resolve(TlsLayout.SERVER_CERT)),
                Files.readString(certs.resolve(TlsLayout.SERVER_CERT)));

        assertEquals(0, run("certs", "init", certs.toString(), "--nodes", "later"), err.toString());
        X509Certificate ca = TlsLayout.readCertificate(certs.resolve(TlsLayout.CA_CERT));
        TlsLayout.readCertificate(certs.resolve("later").resolve(TlsLayout.SERVER_CERT)).verify(ca.getPublicKey());

        assertEquals(WeftMain.EXIT_FAILURE, run("certs", "init", certs.toString(), "--nodes", "later"));
        assertTrue(err.toString().contains("exists already"), err.toString());
    }

    @Test
    void aHostThatIsNoNameIsAUsageError() {
        assertEquals(WeftMain.EXIT_USAGE, run("certs", "init", dir.resolve("x").toString(), "--nodes", "a",
                "--hosts", "no such host!"));
        assertTrue(err.toString().contains("not a host name or IP address"), err.toString());
    }

    private static String mode(Path p) throws Exception {
        return PosixFilePermissions.toString(Files.getPosixFilePermissions(p));
    }

    private static String exec(String... command) throws Exception {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String text;
        try (InputStream in = p.getInputStream()) {
            text = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        assertTrue(p.waitFor(30, TimeUnit.SECONDS), "certtool did not exit");
        return "exit " + p.exitValue() + ": " + text;
    }
}
