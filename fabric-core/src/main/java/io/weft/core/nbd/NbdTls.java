package io.weft.core.nbd;

import io.weft.core.tls.PemTlsMaterial;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Objects;
import javax.net.ssl.SSLContext;

/**
 * TLS policy of an {@link NbdServer} ({@code weft.nbd.tls}, with the meanings of nbdkit's {@code --tls}):
 * <ul>
 *   <li>{@link Mode#OFF}: NBD_OPT_STARTTLS is refused (NBD_REP_ERR_UNSUP), everything runs in plaintext;</li>
 *   <li>{@link Mode#ON}: STARTTLS is offered, plaintext clients are served too;</li>
 *   <li>{@link Mode#REQUIRE}: until TLS is up every option but STARTTLS and ABORT is refused with
 *   NBD_REP_ERR_TLS_REQD (NBD_OPT_EXPORT_NAME, which cannot carry an error, ends the connection).</li>
 * </ul>
 *
 * @param mode       the policy
 * @param context    server certificate and key (and the CA when peers are verified); null only when {@code OFF}
 * @param verifyPeer clients must present a certificate signed by {@code ca-cert.pem} ({@code weft.nbd.tls-verify-peer})
 */
public record NbdTls(Mode mode, SSLContext context, boolean verifyPeer) {

    public enum Mode {
        OFF, ON, REQUIRE;

        /** {@code off}, {@code on} or {@code require} (case-insensitive). */
        public static Mode parse(String value) {
            try {
                return valueOf(value.trim().toUpperCase(Locale.ROOT));
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("expected off, on or require, got '" + value + "'");
            }
        }
    }

    public NbdTls {
        Objects.requireNonNull(mode, "mode");
        if (mode != Mode.OFF && context == null) {
            throw new IllegalArgumentException("TLS mode " + mode + " needs certificates");
        }
    }

    /** No TLS: STARTTLS refused. */
    public static NbdTls off() {
        return new NbdTls(Mode.OFF, null, false);
    }

    /**
     * A policy whose certificates come from {@code dir} in the PEM layout ({@code server-cert.pem},
     * {@code server-key.pem}, and {@code ca-cert.pem} when {@code verifyPeer}).
     */
    public static NbdTls fromDirectory(Mode mode, Path dir, boolean verifyPeer) throws IOException {
        if (mode == Mode.OFF) {
            return off();
        }
        return new NbdTls(mode, PemTlsMaterial.serverContext(dir, verifyPeer), verifyPeer);
    }
}
