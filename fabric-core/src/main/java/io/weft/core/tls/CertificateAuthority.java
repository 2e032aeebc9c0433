package io.weft.core.tls;

import java.io.IOException;
import java.math.BigInteger;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.interfaces.ECPrivateKey;
import java.security.SecureRandom;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.security.spec.PKCS8EncodedKeySpec;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Date;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;
import java.util.regex.Pattern;
import javax.security.auth.x500.X500Principal;
import org.bouncycastle.asn1.ASN1Encoding;
import org.bouncycastle.asn1.DERBitString;
import org.bouncycastle.asn1.pkcs.PrivateKeyInfo;
import org.bouncycastle.asn1.sec.SECObjectIdentifiers;
import org.bouncycastle.asn1.x509.AlgorithmIdentifier;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.SubjectPublicKeyInfo;
import org.bouncycastle.asn1.x9.X9ObjectIdentifiers;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509ExtensionUtils;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.ContentSigner;
import org.bouncycastle.operator.OperatorCreationException;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * A small certificate authority for one Weft cluster: a self-signed CA and, per node, the certificates its TLS
 * wires need (Artery cluster TLS with mutual authentication, NBD over TLS, the software RDMA provider's TCP path).
 *
 * <p>Keys are EC P-256 with SHA256withECDSA signatures: GnuTLS (nbdkit, qemu, libnbd) and the JDK both accept them,
 * under TLS 1.3 and 1.2, and they are generated in milliseconds (RSA 2048 takes up to a second on a busy machine).
 *
 * <p>What {@link #writeNodeLayout} writes into a node's directory (see {@link TlsLayout} for the names):
 * <pre>
 * ca-cert.pem        the cluster CA certificate (PEM)                     nbdkit, qemu, libnbd: trust
 * server-cert.pem    node certificate: EKU serverAuth + clientAuth,        nbdkit, qemu server side
 *                    SAN 127.0.0.1, localhost, the node name, every host
 * server-key.pem     its key, unencrypted PKCS#8 PEM, mode 0600
 * client-cert.pem    client certificate: EKU clientAuth, CN = node name    libnbd / qemu client side (mutual auth)
 * client-key.pem     its key, unencrypted PKCS#8 PEM, mode 0600
 * keystore.p12       PKCS12: the server key + chain (server cert, CA)     JDK, Artery key-store (both directions)
 * truststore.p12     PKCS12: the CA as a trusted certificate              JDK, Artery trust-store
 * keystore.password  the password of both PKCS12 files (random), 0600     read by the node (TlsLayout)
 * </pre>
 * The server certificate carries clientAuth too because Artery uses one key-store for the connections it accepts and
 * the ones it makes. The CA's own key ({@code ca-key.pem}, 0600) is written only by {@link #writeAuthority}, never
 * into a node directory: it stays with whoever issues certificates.
 *
 * <p>Usage: {@code CertificateAuthority ca = CertificateAuthority.create("weft"); ca.writeAuthority(dir);
 * ca.writeNodeLayout(dir.resolve("a"), "a", List.of("node-a.example"));} — later
 * {@code CertificateAuthority.load(dir)} issues more nodes under the same CA.
 */
public final class CertificateAuthority {
    /** Validity of the CA certificate. */
    public static final Duration CA_VALIDITY = Duration.ofDays(3650);
    /** Validity of node certificates. */
    public static final Duration NODE_VALIDITY = Duration.ofDays(825);
    private static final String SIGNATURE = "SHA256withECDSA";
    private static final Pattern DNS_NAME =
            Pattern.compile("(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*");
    private static final Pattern IP_LITERAL = Pattern.compile("[0-9.]+|[0-9a-fA-F:.]*:[0-9a-fA-F:.]*");

    private final SecureRandom random = new SecureRandom();
    private final X509Certificate caCertificate;
    private final PrivateKey caKey;

    private CertificateAuthority(X509Certificate caCertificate, PrivateKey caKey) {
        this.caCertificate = caCertificate;
        this.caKey = caKey;
    }

    /** A new CA with the subject {@code CN=<name> CA, O=weft}. */
    public static CertificateAuthority create(String name) {
        Objects.requireNonNull(name, "name");
        try {
            KeyPair keys = newKeyPair();
            X500Principal subject = new X500Principal("CN=" + rdnValue(name) + " CA, O=weft");
            Instant now = Instant.now();
            SecureRandom random = new SecureRandom();
            X509v3CertificateBuilder builder = new JcaX509v3CertificateBuilder(subject, serial(random),
                    Date.from(now.minus(Duration.ofHours(1))), Date.from(now.plus(CA_VALIDITY)), subject,
                    keys.getPublic());
            JcaX509ExtensionUtils ext = new JcaX509ExtensionUtils();
            builder.addExtension(Extension.basicConstraints, true, new BasicConstraints(0));
            builder.addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign));
            builder.addExtension(Extension.subjectKeyIdentifier, false,
                    ext.createSubjectKeyIdentifier(keys.getPublic()));
            return new CertificateAuthority(sign(builder, keys.getPrivate()), keys.getPrivate());
        } catch (GeneralSecurityException | IOException e) {
            throw new IllegalStateException("cannot create a certificate authority: " + e, e);
        }
    }

    /** The CA {@link #writeAuthority} wrote into {@code dir} ({@code ca-cert.pem}, {@code ca-key.pem}). */
    public static CertificateAuthority load(Path dir) throws IOException {
        try {
            X509Certificate cert = TlsLayout.readCertificate(dir.resolve(TlsLayout.CA_CERT));
            byte[] der = Pem.decode(Files.readString(dir.resolve(TlsLayout.CA_KEY)), "PRIVATE KEY");
            PrivateKey key = KeyFactory.getInstance("EC").generatePrivate(new PKCS8EncodedKeySpec(der));
            return new CertificateAuthority(cert, key);
        } catch (GeneralSecurityException e) {
            throw new IOException("cannot read the certificate authority in " + dir + ": " + e, e);
        }
    }

    /** The CA certificate every node trusts. */
    public X509Certificate certificate() {
        return caCertificate;
    }

    /** Writes {@code ca-cert.pem} and the CA's private key {@code ca-key.pem} (mode 0600) into {@code dir}. */
    public void writeAuthority(Path dir) throws IOException {
        Files.createDirectories(dir);
        writePublic(dir.resolve(TlsLayout.CA_CERT), Pem.certificate(caCertificate));
        Pem.writePrivate(dir.resolve(TlsLayout.CA_KEY),
                Pem.encode("PRIVATE KEY", pkcs8(caKey, caCertificate.getPublicKey())));
    }

    /**
     * Issues certificates for {@code node} and writes its whole layout (the table in the class comment) into
     * {@code dir}, creating it (mode 0700 where the file system has POSIX modes). The server certificate names
     * 127.0.0.1, localhost, {@code node} (when it is a valid host name or address) and every entry of {@code hosts}
     * (IP literals as IP addresses, the rest as DNS names). Existing files are replaced.
     */
    public void writeNodeLayout(Path dir, String node, List<String> hosts) throws IOException {
        Objects.requireNonNull(node, "node");
        if (node.isBlank()) {
            throw new IllegalArgumentException("node name must not be empty");
        }
        Pem.createPrivateDirectory(dir);
        try {
            KeyPair serverKeys = newKeyPair();
            X509Certificate server = issue(node, serverKeys, subjectAltNames(node, hosts), true);
            KeyPair clientKeys = newKeyPair();
            X509Certificate client = issue(node, clientKeys, null, false);

            writePublic(dir.resolve(TlsLayout.CA_CERT), Pem.certificate(caCertificate));
            writePublic(dir.resolve(TlsLayout.SERVER_CERT), Pem.certificate(server) + Pem.certificate(caCertificate));
            Pem.writePrivate(dir.resolve(TlsLayout.SERVER_KEY),
                    Pem.encode("PRIVATE KEY", pkcs8(serverKeys.getPrivate(), serverKeys.getPublic())));
            writePublic(dir.resolve(TlsLayout.CLIENT_CERT), Pem.certificate(client) + Pem.certificate(caCertificate));
            Pem.writePrivate(dir.resolve(TlsLayout.CLIENT_KEY),
                    Pem.encode("PRIVATE KEY", pkcs8(clientKeys.getPrivate(), clientKeys.getPublic())));

            char[] password = newPassword();
            Pem.writePrivate(dir.resolve(TlsLayout.KEYSTORE_PASSWORD), new String(password) + "\n");
            KeyStore keyStore = KeyStore.getInstance("PKCS12");
            keyStore.load(null, null);
            keyStore.setKeyEntry(TlsLayout.KEY_ALIAS, serverKeys.getPrivate(), password,
                    new Certificate[] {server, caCertificate});
            Pem.writePrivate(dir.resolve(TlsLayout.KEYSTORE), store(keyStore, password));
            KeyStore trustStore = KeyStore.getInstance("PKCS12");
            trustStore.load(null, null);
            trustStore.setCertificateEntry(TlsLayout.CA_ALIAS, caCertificate);
            writePublic(dir.resolve(TlsLayout.TRUSTSTORE), store(trustStore, password));
        } catch (GeneralSecurityException e) {
            throw new IOException("cannot issue certificates for node " + node + ": " + e, e);
        }
    }

    private X509Certificate issue(String node, KeyPair keys, GeneralNames altNames, boolean server)
            throws GeneralSecurityException, IOException {
        Instant now = Instant.now();
        X500Principal subject = new X500Principal("CN=" + rdnValue(node) + ", O=weft");
        X509v3CertificateBuilder builder = new JcaX509v3CertificateBuilder(caCertificate, serial(random),
                Date.from(now.minus(Duration.ofHours(1))), Date.from(now.plus(NODE_VALIDITY)), subject,
                keys.getPublic());
        JcaX509ExtensionUtils ext = new JcaX509ExtensionUtils();
        builder.addExtension(Extension.basicConstraints, true, new BasicConstraints(false));
        builder.addExtension(Extension.keyUsage, true,
                new KeyUsage(KeyUsage.digitalSignature | KeyUsage.keyAgreement));
        builder.addExtension(Extension.extendedKeyUsage, false, server
                ? new ExtendedKeyUsage(new KeyPurposeId[] {KeyPurposeId.id_kp_serverAuth,
                        KeyPurposeId.id_kp_clientAuth})
                : new ExtendedKeyUsage(KeyPurposeId.id_kp_clientAuth));
        builder.addExtension(Extension.subjectKeyIdentifier, false, ext.createSubjectKeyIdentifier(keys.getPublic()));
        builder.addExtension(Extension.authorityKeyIdentifier, false,
                ext.createAuthorityKeyIdentifier(caCertificate));
        if (altNames != null) {
            builder.addExtension(Extension.subjectAlternativeName, false, altNames);
        }
        return sign(builder, caKey);
    }

    /** 127.0.0.1, localhost, the node name and the hosts, without duplicates; IP literals as iPAddress names. */
    static GeneralNames subjectAltNames(String node, List<String> hosts) {
        Set<String> names = new LinkedHashSet<>();
        names.add("127.0.0.1");
        names.add("localhost");
        names.add(node);
        names.addAll(hosts);
        List<GeneralName> out = new ArrayList<>();
        for (String name : names) {
            String n = name.trim();
            if (n.startsWith("[") && n.endsWith("]")) {
                n = n.substring(1, n.length() - 1);
            }
            if (n.isEmpty()) {
                continue;
            }
            if (IP_LITERAL.matcher(n).matches() && isAddress(n)) {
                out.add(new GeneralName(GeneralName.iPAddress, n));
            } else if (DNS_NAME.matcher(n).matches()) {
                out.add(new GeneralName(GeneralName.dNSName, n));
            } else if (!n.equals(node)) {
                // The node name may be anything (it is in the CN); a --hosts entry must be usable as a name.
                throw new IllegalArgumentException("not a host name or IP address: " + name);
            }
        }
        return new GeneralNames(out.toArray(new GeneralName[0]));
    }

    private static boolean isAddress(String literal) {
        try {
            // Only literals reach here (digits, dots, colons): no name resolution happens.
            InetAddress.getByName(literal);
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    private static KeyPair newKeyPair() throws GeneralSecurityException {
        KeyPairGenerator generator = KeyPairGenerator.getInstance("EC");
        generator.initialize(new ECGenParameterSpec("secp256r1"));
        return generator.generateKeyPair();
    }

    /**
     * PKCS#8 of an EC key with the curve and the public key inside its ECPrivateKey (RFC 5915). The JDK's own
     * encoding leaves the public key out, and GnuTLS refuses such a key ("ASN1 parser: Element was not found").
     */
    private static byte[] pkcs8(PrivateKey key, PublicKey publicKey) throws IOException {
        ECPrivateKey ec = (ECPrivateKey) key;
        DERBitString point = new DERBitString(
                SubjectPublicKeyInfo.getInstance(publicKey.getEncoded()).getPublicKeyData().getBytes());
        org.bouncycastle.asn1.sec.ECPrivateKey inner = new org.bouncycastle.asn1.sec.ECPrivateKey(
                ec.getParams().getOrder().bitLength(), ec.getS(), point, SECObjectIdentifiers.secp256r1);
        return new PrivateKeyInfo(new AlgorithmIdentifier(X9ObjectIdentifiers.id_ecPublicKey,
                SECObjectIdentifiers.secp256r1), inner).getEncoded(ASN1Encoding.DER);
    }

    private static X509Certificate sign(X509v3CertificateBuilder builder, PrivateKey key)
            throws GeneralSecurityException {
        try {
            ContentSigner signer = new JcaContentSignerBuilder(SIGNATURE).build(key);
            return new JcaX509CertificateConverter().getCertificate(builder.build(signer));
        } catch (OperatorCreationException e) {
            throw new GeneralSecurityException(e);
        }
    }

    private static BigInteger serial(SecureRandom random) {
        return new BigInteger(127, random).add(BigInteger.ONE);
    }

    private char[] newPassword() {
        byte[] bytes = new byte[18];
        random.nextBytes(bytes);
        return Base64.getUrlEncoder().withoutPadding().encodeToString(bytes).toCharArray();
    }

    private static byte[] store(KeyStore keyStore, char[] password) throws GeneralSecurityException, IOException {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        keyStore.store(out, password);
        return out.toByteArray();
    }

    private static void writePublic(Path file, String text) throws IOException {
        writePublic(file, text.getBytes(StandardCharsets.US_ASCII));
    }

    private static void writePublic(Path file, byte[] bytes) throws IOException {
        Files.write(file, bytes);
    }

    /** Escapes what X.500 names treat specially, so any node name fits a CN. */
    private static String rdnValue(String value) {
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < value.length(); i++) {
            char c = value.charAt(i);
            if (",+\"\\<>;=#".indexOf(c) >= 0) {
                out.append('\\');
            }
            out.append(c);
        }
        return out.toString();
    }
}
