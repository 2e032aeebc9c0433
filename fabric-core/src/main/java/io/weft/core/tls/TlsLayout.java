package io.weft.core.tls;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

/**
 * The files of one node's certificate directory (written by {@link CertificateAuthority#writeNodeLayout}, e.g.
 * through {@code weft certs init}) and how a JVM reads them. The PEM names are the ones nbdkit, qemu and libnbd look
 * for in their {@code tls-certificates} / {@code dir=} directory.
 */
public final class TlsLayout {
    public static final String CA_CERT = "ca-cert.pem";
    /** The CA's private key: only in the directory {@code certs init} was given, never in a node directory. */
    public static final String CA_KEY = "ca-key.pem";
    public static final String SERVER_CERT = "server-cert.pem";
    public static final String SERVER_KEY = "server-key.pem";
    public static final String CLIENT_CERT = "client-cert.pem";
    public static final String CLIENT_KEY = "client-key.pem";
    /** PKCS12 with the node's server key and chain (alias {@link #KEY_ALIAS}). */
    public static final String KEYSTORE = "keystore.p12";
    /** PKCS12 with the cluster CA as a trusted certificate (alias {@link #CA_ALIAS}). */
    public static final String TRUSTSTORE = "truststore.p12";
    /** One line: the password of both PKCS12 files (and of the key entry). */
    public static final String KEYSTORE_PASSWORD = "keystore.password";
    public static final String KEY_ALIAS = "node";
    public static final String CA_ALIAS = "weft-ca";

    private final Path dir;

    private TlsLayout(Path dir) {
        this.dir = dir;
    }

    /**
     * The layout in {@code dir}; fails naming the first missing file (so a wrong {@code weft.tls.certificates} is
     * reported at start, not at the first connection).
     */
    public static TlsLayout open(Path dir) throws IOException {
        for (String name : new String[] {CA_CERT, SERVER_CERT, SERVER_KEY, CLIENT_CERT, CLIENT_KEY, KEYSTORE,
                TRUSTSTORE, KEYSTORE_PASSWORD}) {
            Path file = dir.resolve(name);
            if (!Files.isReadable(file)) {
                throw new IOException("certificate directory " + dir + " has no readable " + name
                        + " (make one with `weft certs init`)");
            }
        }
        return new TlsLayout(dir);
    }

    public Path dir() {
        return dir;
    }

    public Path keyStore() {
        return dir.resolve(KEYSTORE);
    }

    public Path trustStore() {
        return dir.resolve(TRUSTSTORE);
    }

    /** The password of {@link #keyStore()}, its key entry and {@link #trustStore()}. */
    public String password() throws IOException {
        return Files.readString(dir.resolve(KEYSTORE_PASSWORD)).strip();
    }

    /**
     * A TLS context that presents this node's certificate and trusts only the cluster CA (for either side of a
     * connection; a server that wants client certificates still calls {@code setNeedClientAuth(true)}).
     */
    public SSLContext sslContext() throws IOException, GeneralSecurityException {
        char[] password = password().toCharArray();
        KeyStore keys = KeyStore.getInstance("PKCS12");
        try (InputStream in = Files.newInputStream(keyStore())) {
            keys.load(in, password);
        }
        KeyStore trust = KeyStore.getInstance("PKCS12");
        try (InputStream in = Files.newInputStream(trustStore())) {
            trust.load(in, password);
        }
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(keys, password);
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(trust);
        SSLContext context = SSLContext.getInstance("TLS");
        context.init(kmf.getKeyManagers(), tmf.getTrustManagers(), null);
        return context;
    }

    /** The first certificate of a PEM file. */
    public static X509Certificate readCertificate(Path pem) throws IOException {
        try (InputStream in = Files.newInputStream(pem)) {
            return (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in);
        } catch (GeneralSecurityException e) {
            throw new IOException("not a certificate: " + pem + ": " + e, e);
        }
    }
}
