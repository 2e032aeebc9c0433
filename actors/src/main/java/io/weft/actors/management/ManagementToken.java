package io.weft.actors.management;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import io.weft.core.management.ManagementTokenFiles;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The management token of a node: what {@code Authorization: Bearer} must carry on every route that changes state or
 * reveals ids (docs/security.md, "Management"). One per process (it outlives actor-system incarnations).
 *
 * <p>Where it comes from, first match wins:
 * <ol>
 *   <li>{@code weft.management.http.token} (node-app: {@code --token}, {@code WEFT_TOKEN}): fixed, never replaced.</li>
 *   <li>{@code <data-dir>/management.token}, written (mode 0600) by an earlier start or adopted from the cluster.</li>
 *   <li>A node that forms a cluster of its own (no seeds) generates one at start: 128 random bits.</li>
 *   <li>Otherwise the node has none until the cluster hands it the token of its oldest member
 *       ({@link ClusterTokenActor}); the oldest member generates one if it has none. Until then the authenticated
 *       routes answer 503. When two token files meet (clusters merged, a node moved), the oldest member's wins.</li>
 * </ol>
 * Besides the data-dir file, the node leaves the token (0600) in the per-user runtime directory keyed by its
 * management address ({@link #runtimeFile}, named by {@link ManagementTokenFiles}), where the CLI on the same host
 * finds it whatever data dir the node had; removed at a clean stop.
 */
public final class ManagementToken {
    /** In a holder: the CLI uses this class's static helpers and should not start logging for them. */
    private static final class Log {
        static final Logger LOG = LoggerFactory.getLogger(ManagementToken.class);
    }
    public static final String FILE_NAME = "management.token";
    private static final Set<PosixFilePermission> OWNER_ONLY = PosixFilePermissions.fromString("rw-------");
    private static final SecureRandom RANDOM = new SecureRandom();

    private final boolean explicit;
    private final Optional<Path> dataDirFile;
    private final Optional<Path> runtimeDir;
    private volatile String token;
    private volatile Optional<Path> runtimeFile = Optional.empty();
    private boolean warnedExplicit;

    private ManagementToken(boolean explicit, String token, Optional<Path> dataDirFile, Optional<Path> runtimeDir) {
        this.explicit = explicit;
        this.token = token;
        this.dataDirFile = dataDirFile;
        this.runtimeDir = runtimeDir;
    }

    /**
     * @param configured    {@code weft.management.http.token} ("" when not set)
     * @param dataDir       the node's data dir, empty for a bare control-plane node (tests): no token file then
     * @param runtimeDir    where the runtime token file goes, empty for none
     * @param formsOwnCluster true for a node with no seeds: it generates a token at once if it has none
     */
    public static ManagementToken load(String configured, Optional<Path> dataDir, Optional<Path> runtimeDir,
                                       boolean formsOwnCluster) {
        if (!configured.isEmpty()) {
            return new ManagementToken(true, configured, Optional.empty(), runtimeDir);
        }
        Optional<Path> file = dataDir.map(d -> d.resolve(FILE_NAME));
        String found = "";
        if (file.isPresent() && Files.isRegularFile(file.get())) {
            try {
                found = Files.readString(file.get(), StandardCharsets.UTF_8).strip();
            } catch (IOException e) {
                throw new IllegalArgumentException("weft.data-dir: cannot read the management token "
                        + file.get() + ": " + e.getMessage(), e);
            }
        }
        ManagementToken t = new ManagementToken(false, found, file, runtimeDir);
        if (found.isEmpty() && formsOwnCluster) {
            t.generateIfMissing();
        }
        return t;
    }

    /** A fresh token: 128 random bits, URL-safe base64 (no padding), safe in a header, a file and a shell. */
    public static String generate() {
        return randomString(16);
    }

    static String randomString(int bytes) {
        byte[] b = new byte[bytes];
        RANDOM.nextBytes(b);
        return Base64.getUrlEncoder().withoutPadding().encodeToString(b);
    }

    /** The token, empty while this node has none yet (a joining member waiting for the cluster's). */
    public Optional<String> current() {
        String t = token;
        return t.isEmpty() ? Optional.empty() : Optional.of(t);
    }

    /** True when set by {@code weft.management.http.token}. */
    public boolean explicit() {
        return explicit;
    }

    /** Constant-time comparison with the token; false while there is none. */
    public boolean matches(String candidate) {
        String t = token;
        if (t.isEmpty() || candidate == null) {
            return false;
        }
        return MessageDigest.isEqual(candidate.getBytes(StandardCharsets.UTF_8), t.getBytes(StandardCharsets.UTF_8));
    }

    /** The oldest member has no token: it makes the cluster's. Returns the token. */
    synchronized String generateIfMissing() {
        if (token.isEmpty()) {
            String made = generate();
            persist(made);
            token = made;
            Log.LOG.info("generated the management token{}", dataDirFile.map(f -> " (" + f + ")").orElse(""));
        }
        return token;
    }

    /**
     * The cluster's token (its oldest member's) arrived. An explicit token stays (with a warning when it differs);
     * otherwise the node takes it over, in its data dir and its runtime file.
     *
     * @return true if this node's token changed
     */
    synchronized boolean adopt(String clusterToken, String from) {
        if (clusterToken.isEmpty() || clusterToken.equals(token)) {
            return false;
        }
        if (explicit) {
            if (!warnedExplicit) {
                warnedExplicit = true;
                Log.LOG.warn("the cluster's management token (from {}) differs from this node's "
                        + "weft.management.http.token; this node keeps its own", from);
            }
            return false;
        }
        boolean had = !token.isEmpty();
        // On disk first, then in memory: whoever sees the new token (HTTP, a test) finds it in the files too, and a
        // crash in between leaves the node with the token it will be given again.
        persist(clusterToken);
        token = clusterToken;
        Log.LOG.info(had ? "management token replaced by the cluster's (from its oldest member {})"
                : "management token received from the cluster's oldest member {}", from);
        return true;
    }

    private void persist(String value) {
        dataDirFile.ifPresent(f -> {
            try {
                writeOwnerOnly(f, value);
            } catch (IOException e) {
                Log.LOG.warn("could not write the management token to {}: {}", f, e.toString());
            }
        });
        runtimeFile.ifPresent(f -> {
            try {
                writeOwnerOnly(f, value);
            } catch (IOException e) {
                Log.LOG.warn("could not write the management token to {}: {}", f, e.toString());
            }
        });
    }

    /**
     * Leaves the token in the runtime directory for the management address {@code host:port} (called once HTTP is
     * bound; again by later incarnations). Written when the node has a token, or as soon as it gets one.
     */
    public synchronized void publish(String host, int port) {
        if (runtimeDir.isEmpty()) {
            return;
        }
        Path file = runtimeDir.get().resolve(runtimeFileName(host, port));
        runtimeFile = Optional.of(file);
        if (!token.isEmpty()) {
            try {
                writeOwnerOnly(file, token);
            } catch (IOException e) {
                Log.LOG.warn("could not leave the management token in {} (the CLI then needs --token): {}", file,
                        e.toString());
            }
            return;
        }
        // No token yet (a member waiting for the cluster's). This process holds the address now, so a file there is
        // a dead node's (killed, no clean stop): the CLI must not present that node's token to this one.
        try {
            if (Files.deleteIfExists(file)) {
                Log.LOG.info("removed {}: left by a node that no longer holds this management address", file);
            }
        } catch (IOException e) {
            Log.LOG.warn("could not remove the stale management token file {}: {}", file, e.toString());
        }
    }

    /** Removes the runtime file (clean stop). The data-dir file stays: it is the node's token next time. */
    public synchronized void unpublish() {
        runtimeFile.ifPresent(f -> {
            try {
                // Only ours: another node may have started on the same address after this one stopped.
                if (Files.isRegularFile(f) && Files.readString(f, StandardCharsets.UTF_8).strip().equals(token)) {
                    Files.delete(f);
                }
            } catch (IOException e) {
                Log.LOG.debug("could not remove {}: {}", f, e.toString());
            }
        });
        runtimeFile = Optional.empty();
    }

    /** The runtime file of this node, once published. */
    public Optional<Path> runtimeFile() {
        return runtimeFile;
    }

    // ---------------------------------------------------------------- the runtime file, shared with the CLI

    /** See {@link ManagementTokenFiles#defaultRuntimeDir}. */
    public static Path defaultRuntimeDir(Map<String, String> env) {
        return ManagementTokenFiles.defaultRuntimeDir(env);
    }

    /** See {@link ManagementTokenFiles#runtimeFileName}. */
    public static String runtimeFileName(String host, int port) {
        return ManagementTokenFiles.runtimeFileName(host, port);
    }

    /** See {@link ManagementTokenFiles#findForAddress}. */
    public static Optional<String> findForAddress(Path runtimeDir, String host, int port) {
        return ManagementTokenFiles.findForAddress(runtimeDir, host, port);
    }

    /** Writes {@code text} to {@code file} with mode 0600 from the first byte (temp file, then atomic rename). */
    static void writeOwnerOnly(Path file, String text) throws IOException {
        Path dir = file.toAbsolutePath().getParent();
        if (!Files.isDirectory(dir)) {
            try {
                Files.createDirectories(dir, PosixFilePermissions.asFileAttribute(
                        PosixFilePermissions.fromString("rwx------")));
            } catch (FileAlreadyExistsException e) {
                // made meanwhile
            }
        }
        Path tmp = Files.createTempFile(dir, "." + file.getFileName(), ".tmp",
                PosixFilePermissions.asFileAttribute(OWNER_ONLY));
        try {
            Files.writeString(tmp, text + "\n", StandardCharsets.UTF_8);
            try {
                Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
            }
        } finally {
            Files.deleteIfExists(tmp);
        }
    }
}
