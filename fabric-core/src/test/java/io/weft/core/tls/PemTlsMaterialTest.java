package io.weft.core.tls;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.testing.RequiredTool;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.Signature;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Keys in the formats other tools write (openssl's traditional PKCS#1 RSA and SEC1 EC, PKCS#8) load, and each one
 * signs what its certificate's public key verifies; encrypted keys and missing files are refused with the file named.
 */
class PemTlsMaterialTest {
    @TempDir
    Path dir;

    private void openssl(String... args) throws Exception {
        List<String> command = new ArrayList<>();
        command.add(RequiredTool.require("openssl", "openssl").toString());
        command.addAll(List.of(args));
        Process p = new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0, String.join(" ", command) + "\n" + out);
    }

    private static void assertPair(PrivateKey key, PublicKey pub, String algorithm) throws Exception {
        byte[] message = "weft".getBytes(StandardCharsets.US_ASCII);
        Signature s = Signature.getInstance(algorithm);
        s.initSign(key);
        s.update(message);
        byte[] signature = s.sign();
        Signature v = Signature.getInstance(algorithm);
        v.initVerify(pub);
        v.update(message);
        assertTrue(v.verify(signature), "the key loaded is the certificate's");
    }

    @Test
    void traditionalRsaAndEcKeysLoad() throws Exception {
        openssl("genrsa", "-traditional", "-out", "rsa.pem", "2048");
        openssl("req", "-x509", "-key", "rsa.pem", "-out", "rsa-cert.pem", "-days", "1", "-subj", "/CN=rsa");
        assertTrue(Files.readString(dir.resolve("rsa.pem")).contains("BEGIN RSA PRIVATE KEY"));
        X509Certificate rsaCert = PemTlsMaterial.readCertificates(dir.resolve("rsa-cert.pem")).get(0);
        assertPair(PemTlsMaterial.readPrivateKey(dir.resolve("rsa.pem")), rsaCert.getPublicKey(), "SHA256withRSA");

        openssl("ecparam", "-genkey", "-name", "prime256v1", "-noout", "-out", "ec.pem");
        openssl("req", "-x509", "-key", "ec.pem", "-out", "ec-cert.pem", "-days", "1", "-subj", "/CN=ec");
        assertTrue(Files.readString(dir.resolve("ec.pem")).contains("BEGIN EC PRIVATE KEY"));
        X509Certificate ecCert = PemTlsMaterial.readCertificates(dir.resolve("ec-cert.pem")).get(0);
        assertPair(PemTlsMaterial.readPrivateKey(dir.resolve("ec.pem")), ecCert.getPublicKey(), "SHA256withECDSA");

        openssl("pkcs8", "-topk8", "-nocrypt", "-in", "ec.pem", "-out", "ec8.pem");
        assertPair(PemTlsMaterial.readPrivateKey(dir.resolve("ec8.pem")), ecCert.getPublicKey(), "SHA256withECDSA");
    }

    @Test
    void encryptedKeysAndMissingFilesAreRefusedNamingTheFile() throws Exception {
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-aes256", "-pass",
                "pass:secret", "-out", "enc.pem");
        IOException e = assertThrows(IOException.class, () -> PemTlsMaterial.readPrivateKey(dir.resolve("enc.pem")));
        assertTrue(e.getMessage().contains("enc.pem") && e.getMessage().contains("encrypted"), e.getMessage());
        IOException missing = assertThrows(IOException.class, () -> PemTlsMaterial.serverContext(dir, false));
        assertTrue(missing.getMessage().contains(TlsLayout.SERVER_CERT), missing.getMessage());
    }

    @Test
    void aCertificateChainKeepsItsOrder() throws Exception {
        CertificateAuthority ca = CertificateAuthority.create("chain");
        ca.writeNodeLayout(dir.resolve("n"), "n", List.of());
        List<X509Certificate> chain = PemTlsMaterial.readCertificates(dir.resolve("n").resolve(TlsLayout.SERVER_CERT));
        assertEquals(2, chain.size());
        assertEquals(ca.certificate(), chain.get(1), "leaf first, then the CA");
    }
}
