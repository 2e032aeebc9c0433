package io.weft.core.management;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Where a node leaves its management token for the CLI on the same host, and how the CLI finds it: one file per
 * management address in the per-user runtime directory (docs/security.md, "Management").
 *
 * <p>Shared by the node (actors' {@code ManagementToken} writes the file) and the CLI (reads it), so both agree on
 * the name. It lives here, in the module both depend on, because a client command runs on a lean class path without
 * the actors jar; it needs only the file and path classes of the JDK, nothing that starts a security provider or
 * logging (docs/BENCHMARKS.md, "CLI start-up time").
 */
public final class ManagementTokenFiles {
    private ManagementTokenFiles() {
    }

    /**
     * The per-user runtime directory (like Jupyter's): {@code $WEFT_RUNTIME_DIR} if set, else
     * {@code $XDG_RUNTIME_DIR/weft}, else {@code ~/.local/share/weft/runtime}.
     */
    public static Path defaultRuntimeDir(Map<String, String> env) {
        String weft = env.get("WEFT_RUNTIME_DIR");
        if (weft != null && !weft.isBlank()) {
            return Path.of(weft);
        }
        String xdg = env.get("XDG_RUNTIME_DIR");
        if (xdg != null && !xdg.isBlank()) {
            return Path.of(xdg, "weft");
        }
        return Path.of(System.getProperty("user.home"), ".local", "share", "weft", "runtime");
    }

    /** {@code management-127.0.0.1-7626.token}; an IPv6 host's colons become underscores. */
    public static String runtimeFileName(String host, int port) {
        // a StringBuilder, not "+": this module's concatenations are invokedynamic, whose first use costs a CLI
        // command start-up time (node-app compiles with -XDstringConcat=inline for the same reason)
        return new StringBuilder(64).append("management-").append(unbracketed(host).replace(':', '_').replace('/', '_'))
                .append('-').append(port).append(".token").toString();
    }

    /**
     * The token a node on this host left for management address {@code host:port}, as the CLI looks for it. A
     * loopback or {@code localhost} address also finds a node bound to another loopback name or to every address.
     */
    public static Optional<String> findForAddress(Path runtimeDir, String host, int port) {
        String h = unbracketed(host);
        List<String> candidates = new ArrayList<>(List.of(h));
        if (h.equals("localhost") || h.startsWith("127.") || h.equals("::1") || h.equals("0:0:0:0:0:0:0:1")) {
            for (String other : List.of("127.0.0.1", "localhost", "::1", "0.0.0.0", "::")) {
                if (!candidates.contains(other)) {
                    candidates.add(other);
                }
            }
        }
        for (String c : candidates) {
            Path f = runtimeDir.resolve(runtimeFileName(c, port));
            try {
                if (Files.isRegularFile(f)) {
                    String t = Files.readString(f, StandardCharsets.UTF_8).strip();
                    if (!t.isEmpty()) {
                        return Optional.of(t);
                    }
                }
            } catch (IOException e) {
                // not readable by this user (a node run as another user): the CLI then says --token
            }
        }
        return Optional.empty();
    }

    private static String unbracketed(String host) {
        return host.startsWith("[") && host.endsWith("]") ? host.substring(1, host.length() - 1) : host;
    }
}
