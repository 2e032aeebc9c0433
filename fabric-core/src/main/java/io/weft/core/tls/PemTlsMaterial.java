package io.weft.core.tls;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

/**
 * Loads the PEM layout that nbdkit, qemu and libnbd read ({@link TlsLayout}'s names: a directory with
 * {@code ca-cert.pem}, {@code server-cert.pem}, {@code server-key.pem} and optionally {@code client-cert.pem},
 * {@code client-key.pem}) into a JDK {@link SSLContext}, so a directory written by another tool (nbdkit's
 * documentation, {@code certtool}, {@code openssl}) works as well as one from {@link CertificateAuthority}. JDK
 * only: {@link CertificateFactory} for certificates, {@link KeyFactory} over PKCS#8 for keys. Keys in PKCS#1
 * ({@code RSA PRIVATE KEY}, what older {@code openssl genrsa} and {@code certtool} write) and SEC1
 * ({@code EC PRIVATE KEY}) are rewrapped into PKCS#8 here; encrypted keys are refused (the files are protected by their
 * mode, as for nbdkit).
 *
 * <p>Control path only: reads files and allocates freely.
 */
public final class PemTlsMaterial {
    /** TLS 1.3 only: no renegotiation, and every client this serves (gnutls, the JDK) speaks it. */
    public static final String[] PROTOCOLS = {"TLSv1.3"};

    private static final char[] NO_PASSWORD = new char[0];
    /** DER of the AlgorithmIdentifier rsaEncryption (1.2.840.113549.1.1.1) with NULL parameters. */
    private static final byte[] RSA_ALGORITHM = {0x30, 0x0d, 0x06, 0x09, 0x2a, (byte) 0x86, 0x48, (byte) 0x86,
            (byte) 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00};
    /** DER of the OID id-ecPublicKey (1.2.840.10045.2.1). */
    private static final byte[] EC_PUBLIC_KEY_OID = {0x06, 0x07, 0x2a, (byte) 0x86, 0x48, (byte) 0xce, 0x3d, 0x02,
            0x01};

    private PemTlsMaterial() {
    }

    /**
     * A server context from {@code dir}: {@code server-cert.pem} (the chain, leaf first) and {@code server-key.pem};
     * with {@code trustCa}, {@code ca-cert.pem} is the trust anchor the peers' certificates are checked against (the
     * caller still decides, per engine, whether a client certificate is required).
     *
     * @param trustCa whether to load {@code ca-cert.pem} as the trust anchor (required when peers are verified)
     */
    public static SSLContext serverContext(Path dir, boolean trustCa) throws IOException {
        return context(dir.resolve(TlsLayout.SERVER_CERT), dir.resolve(TlsLayout.SERVER_KEY),
                trustCa ? dir.resolve(TlsLayout.CA_CERT) : null);
    }

    /**
     * A client context from {@code dir}: trusts {@code ca-cert.pem}; presents {@code client-cert.pem} and
     * {@code client-key.pem} when both exist (mutual authentication), else {@code server-cert.pem} and
     * {@code server-key.pem} when those exist (a node's own identity), else no certificate.
     */
    public static SSLContext clientContext(Path dir) throws IOException {
        Path cert = dir.resolve(TlsLayout.CLIENT_CERT);
        Path key = dir.resolve(TlsLayout.CLIENT_KEY);
        if (!Files.exists(cert) || !Files.exists(key)) {
            cert = dir.resolve(TlsLayout.SERVER_CERT);
            key = dir.resolve(TlsLayout.SERVER_KEY);
        }
        if (!Files.exists(cert) || !Files.exists(key)) {
            cert = null;
            key = null;
        }
        return context(cert, key, dir.resolve(TlsLayout.CA_CERT));
    }

    private static SSLContext context(Path certFile, Path keyFile, Path caFile) throws IOException {
        try {
            KeyManagerFactory kmf = null;
            if (certFile != null) {
                List<X509Certificate> chain = readCertificates(certFile);
                PrivateKey key = readPrivateKey(keyFile);
                KeyStore keys = KeyStore.getInstance("PKCS12");
                keys.load(null, null);
                keys.setKeyEntry("identity", key, NO_PASSWORD, chain.toArray(new Certificate[0]));
                kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
                kmf.init(keys, NO_PASSWORD);
            }
            TrustManagerFactory tmf = null;
            if (caFile != null) {
                KeyStore trust = KeyStore.getInstance("PKCS12");
                trust.load(null, null);
                int i = 0;
                for (X509Certificate ca : readCertificates(caFile)) {
                    trust.setCertificateEntry("ca-" + i++, ca);
                }
                tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
                tmf.init(trust);
            }
            SSLContext ctx = SSLContext.getInstance("TLSv1.3");
            ctx.init(kmf == null ? null : kmf.getKeyManagers(), tmf == null ? null : tmf.getTrustManagers(), null);
            return ctx;
        } catch (GeneralSecurityException e) {
            throw new IOException("cannot build a TLS context from " + (certFile != null ? certFile : caFile) + ": "
                    + e.getMessage(), e);
        }
    }

    /** Every {@code CERTIFICATE} block of a PEM file, in file order (at least one). */
    public static List<X509Certificate> readCertificates(Path file) throws IOException {
        List<byte[]> blocks = pemBlocks(file, "CERTIFICATE");
        if (blocks.isEmpty()) {
            throw new IOException(file + ": no PEM CERTIFICATE block");
        }
        List<X509Certificate> out = new ArrayList<>();
        try {
            CertificateFactory cf = CertificateFactory.getInstance("X.509");
            for (byte[] der : blocks) {
                out.add((X509Certificate) cf.generateCertificate(new ByteArrayInputStream(der)));
            }
        } catch (GeneralSecurityException e) {
            throw new IOException(file + ": not an X.509 certificate: " + e.getMessage(), e);
        }
        return out;
    }

    /**
     * The private key of a PEM file: {@code PRIVATE KEY} (PKCS#8), {@code RSA PRIVATE KEY} or {@code EC PRIVATE KEY}.
     */
    public static PrivateKey readPrivateKey(Path file) throws IOException {
        byte[] pkcs8;
        List<byte[]> blocks = pemBlocks(file, "PRIVATE KEY");
        if (!blocks.isEmpty()) {
            pkcs8 = blocks.get(0);
        } else if (!(blocks = pemBlocks(file, "RSA PRIVATE KEY")).isEmpty()) {
            pkcs8 = sequence(concat(new byte[] {0x02, 0x01, 0x00}, RSA_ALGORITHM, octetString(blocks.get(0))));
        } else if (!(blocks = pemBlocks(file, "EC PRIVATE KEY")).isEmpty()) {
            pkcs8 = sec1ToPkcs8(file, blocks.get(0));
        } else if (!pemBlocks(file, "ENCRYPTED PRIVATE KEY").isEmpty()) {
            throw new IOException(file + ": encrypted private keys are not supported (decrypt it: "
                    + "openssl pkcs8 -in KEY -out KEY.plain, mode 0600)");
        } else {
            throw new IOException(file + ": no PEM PRIVATE KEY block");
        }
        PKCS8EncodedKeySpec spec = new PKCS8EncodedKeySpec(pkcs8);
        for (String algorithm : new String[] {"RSA", "EC", "Ed25519", "Ed448", "RSASSA-PSS"}) {
            try {
                return KeyFactory.getInstance(algorithm).generatePrivate(spec);
            } catch (GeneralSecurityException e) {
                // try the next algorithm
            }
        }
        throw new IOException(file + ": unsupported private key (RSA, EC and EdDSA keys are read)");
    }

    /**
     * SEC1 ECPrivateKey ::= SEQUENCE { version INTEGER, privateKey OCTET STRING, [0] parameters OID, [1] publicKey }
     * becomes PKCS#8 with AlgorithmIdentifier { id-ecPublicKey, the curve OID from [0] }.
     */
    private static byte[] sec1ToPkcs8(Path file, byte[] sec1) throws IOException {
        int[] at = {0};
        expectTag(file, sec1, at, 0x30);
        readLength(file, sec1, at);
        byte[] curve = null;
        while (at[0] < sec1.length) {
            int tag = sec1[at[0]++] & 0xff;
            int len = readLength(file, sec1, at);
            if (tag == 0xa0) {
                curve = java.util.Arrays.copyOfRange(sec1, at[0], at[0] + len);
            }
            at[0] += len;
        }
        if (curve == null) {
            throw new IOException(file + ": EC PRIVATE KEY without curve parameters");
        }
        byte[] algorithm = sequence(concat(EC_PUBLIC_KEY_OID, curve));
        return sequence(concat(new byte[] {0x02, 0x01, 0x00}, algorithm, octetString(sec1)));
    }

    private static void expectTag(Path file, byte[] der, int[] at, int tag) throws IOException {
        if (at[0] >= der.length || (der[at[0]++] & 0xff) != tag) {
            throw new IOException(file + ": malformed DER");
        }
    }

    /** A DER length at {@code at[0]}, bounded by what is left of {@code der}. */
    private static int readLength(Path file, byte[] der, int[] at) throws IOException {
        if (at[0] >= der.length) {
            throw new IOException(file + ": malformed DER");
        }
        int first = der[at[0]++] & 0xff;
        int len;
        if (first < 0x80) {
            len = first;
        } else {
            int bytes = first & 0x7f;
            if (bytes == 0 || bytes > 3 || at[0] + bytes > der.length) {
                throw new IOException(file + ": malformed DER length");
            }
            len = 0;
            for (int i = 0; i < bytes; i++) {
                len = (len << 8) | (der[at[0]++] & 0xff);
            }
        }
        if (len > der.length - at[0]) {
            throw new IOException(file + ": DER length past the end");
        }
        return len;
    }

    private static byte[] sequence(byte[] content) {
        return tlv(0x30, content);
    }

    private static byte[] octetString(byte[] content) {
        return tlv(0x04, content);
    }

    private static byte[] tlv(int tag, byte[] content) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(content.length + 6);
        out.write(tag);
        int len = content.length;
        if (len < 0x80) {
            out.write(len);
        } else if (len < 0x100) {
            out.write(0x81);
            out.write(len);
        } else if (len < 0x10000) {
            out.write(0x82);
            out.write(len >> 8);
            out.write(len);
        } else {
            out.write(0x83);
            out.write(len >> 16);
            out.write(len >> 8);
            out.write(len);
        }
        out.writeBytes(content);
        return out.toByteArray();
    }

    private static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] p : parts) {
            out.writeBytes(p);
        }
        return out.toByteArray();
    }

    /** The decoded bodies of the {@code -----BEGIN label-----} blocks of a PEM file (exact label match). */
    static List<byte[]> pemBlocks(Path file, String label) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new IOException(file + ": no such file (the PEM layout: " + TlsLayout.CA_CERT + ", "
                    + TlsLayout.SERVER_CERT + ", " + TlsLayout.SERVER_KEY + ")");
        }
        String text = Files.readString(file, StandardCharsets.US_ASCII);
        String begin = "-----BEGIN " + label + "-----";
        String end = "-----END " + label + "-----";
        List<byte[]> out = new ArrayList<>();
        int from = 0;
        while (true) {
            int b = text.indexOf(begin, from);
            if (b < 0) {
                return out;
            }
            int e = text.indexOf(end, b + begin.length());
            if (e < 0) {
                throw new IOException(file + ": unterminated " + begin);
            }
            String body = text.substring(b + begin.length(), e).replaceAll("\\s+", "");
            try {
                out.add(Base64.getDecoder().decode(body));
            } catch (IllegalArgumentException ex) {
                throw new IOException(file + ": bad base64 in a " + label + " block", ex);
            }
            from = e + end.length();
        }
    }
}
