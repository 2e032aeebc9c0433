package io.weft.multijvm;

import io.weft.core.tls.CertificateAuthority;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The switch that runs the multi-JVM suite in the secure setup (docs/security.md, "A secure three-node cluster"):
 * with {@code -Dweft.it.tls=true} every child-JVM node started through {@link NodeProcess} gets
 * {@code weft.tls.certificates} pointing at its own directory under one CA made for this test JVM (the layout
 * {@code weft certs init} writes), so Artery runs TLS with mutual authentication. A node whose config names its own
 * certificates already ({@link SecureClusterIT}) is left as it is.
 */
final class ItTls {
    static final String PROPERTY = "weft.it.tls";
    private static Path certs; // guarded by ItTls.class
    private static CertificateAuthority ca; // guarded by ItTls.class

    private ItTls() {
    }

    static boolean on() {
        return Boolean.getBoolean(PROPERTY);
    }

    /** The config lines to append to node {@code name}'s {@code hocon}: "" when the switch is off. */
    static synchronized String settings(String name, String hocon) {
        if (!on() || hocon.contains("weft.tls.certificates")) {
            return "";
        }
        try {
            if (ca == null) {
                certs = Path.of(System.getProperty("weft.multijvm.dir", "target/multi-jvm"))
                        .resolve("it-certs-" + ProcessHandle.current().pid()).toAbsolutePath();
                ca = CertificateAuthority.create("weft-it");
                ca.writeAuthority(certs);
            }
            Path node = certs.resolve(name);
            if (!Files.exists(node)) {
                ca.writeNodeLayout(node, name, List.of());
            }
            return "\nweft.tls.certificates = \"" + node + "\"\n";
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
