package io.weft.actors.security;

import com.typesafe.config.Config;
import io.weft.core.tls.TlsLayout;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Optional;

/**
 * Reads {@code weft.tls.certificates}: the node's certificate directory ({@link TlsLayout}, written by
 * {@code weft certs init}). One place for every wire that uses it: Artery ({@link io.weft.actors.PekkoConfig}), the
 * NBD server and the software RDMA provider.
 */
public final class NodeTls {
    /** The key this class reads. */
    public static final String CERTIFICATES = "weft.tls.certificates";

    private NodeTls() {
    }

    /** The configured directory, absolute (relative to the working directory); empty when the key is empty. */
    public static Optional<Path> certificatesDir(Config config) {
        if (!config.hasPath(CERTIFICATES)) {
            return Optional.empty();
        }
        String value = config.getString(CERTIFICATES).strip();
        return value.isEmpty() ? Optional.empty() : Optional.of(Path.of(value).toAbsolutePath().normalize());
    }

    /**
     * The node's certificates, checked complete.
     *
     * @throws IllegalArgumentException {@code "weft.tls.certificates: ..."} naming the missing file
     */
    public static Optional<TlsLayout> layout(Config config) {
        Optional<Path> dir = certificatesDir(config);
        if (dir.isEmpty()) {
            return Optional.empty();
        }
        try {
            return Optional.of(TlsLayout.open(dir.get()));
        } catch (IOException e) {
            throw new IllegalArgumentException(CERTIFICATES + ": " + e.getMessage(), e);
        }
    }

    /** True when Artery runs over TLS: {@code weft.tls.certificates} or {@code weft.cluster.tls.enabled}. */
    public static boolean clusterTls(Config config) {
        return certificatesDir(config).isPresent()
                || (config.hasPath("weft.cluster.tls.enabled") && config.getBoolean("weft.cluster.tls.enabled"));
    }

    /**
     * True when the software RDMA provider's TCP data path runs over TLS ({@code weft.rdma.tls}, a key of the
     * RDMA transport: anything but off/false/no counts as on).
     */
    public static boolean rdmaTls(Config config) {
        if (!config.hasPath("weft.rdma.tls")) {
            return false;
        }
        String value = config.getValue("weft.rdma.tls").unwrapped().toString().strip().toLowerCase();
        return !(value.isEmpty() || value.equals("off") || value.equals("false") || value.equals("no"));
    }
}
