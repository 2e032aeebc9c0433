package io.weft.core.tls;

import io.weft.core.testing.RequiredTool;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A throw-away CA and, signed by it, a server certificate (127.0.0.1, localhost) and a client certificate, written in
 * the PEM layout nbdkit, qemu and libnbd read. Made with the openssl command line until the shared generator
 * ({@code io.weft.core.tls.CertificateAuthority}) is on this branch.
 */
public final class TestCertificates {
    private TestCertificates() {
    }

    /** Writes {@code ca-cert.pem}, {@code server-cert.pem}, {@code server-key.pem}, {@code client-*} into dir. */
    public static Path create(Path dir) throws IOException, InterruptedException {
        return create(dir, "weft-test-ca");
    }

    /** As {@link #create(Path)}, with a CA of its own name (another CA than {@link #create(Path)}'s). */
    public static Path create(Path dir, String caName) throws IOException, InterruptedException {
        String openssl = RequiredTool.require("openssl", "openssl").toString();
        Files.createDirectories(dir);
        Path work = Files.createTempDirectory(dir, "work");
        run(work, openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", "ca-key.pem", "-out", "ca-cert.pem", "-days", "2", "-subj", "/CN=" + caName,
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign");
        for (String role : new String[] {"server", "client"}) {
            run(work, openssl, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", role + "-key.pem", "-out", role + ".csr", "-subj", "/CN=" + role + ".weft.test");
            Files.writeString(work.resolve(role + ".ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                    + "keyUsage=critical,digitalSignature,keyEncipherment\n"
                    + "extendedKeyUsage=" + role + "Auth\n", StandardCharsets.US_ASCII);
            run(work, openssl, "x509", "-req", "-in", role + ".csr", "-CA", "ca-cert.pem", "-CAkey", "ca-key.pem",
                    "-CAcreateserial", "-out", role + "-cert.pem", "-days", "2", "-extfile", role + ".ext");
        }
        for (String f : new String[] {"ca-cert.pem", "server-cert.pem", "server-key.pem", "client-cert.pem",
                "client-key.pem"}) {
            Files.copy(work.resolve(f), dir.resolve(f));
        }
        try (var paths = Files.list(work)) {
            for (Path p : (Iterable<Path>) paths::iterator) {
                Files.delete(p);
            }
        }
        Files.delete(work);
        return dir;
    }

    private static void run(Path dir, String... command) throws IOException, InterruptedException {
        ProcessBuilder pb = new ProcessBuilder(new ArrayList<>(List.of(command))).directory(dir.toFile())
                .redirectErrorStream(true);
        Process p = pb.start();
        byte[] out = p.getInputStream().readAllBytes();
        if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
            throw new IOException(String.join(" ", command) + " failed:\n" + new String(out, StandardCharsets.UTF_8));
        }
    }
}
