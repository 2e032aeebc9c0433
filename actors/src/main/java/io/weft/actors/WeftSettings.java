package io.weft.actors;

import com.typesafe.config.Config;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Set;

/**
 * The {@code weft.*} settings the control plane reads (documented in {@code reference.conf}).
 */
public record WeftSettings(
        String nodeName,
        Set<String> roles,
        List<Path> exportRoots,
        Duration mappingLease,
        Duration ioTimeout,
        Duration heartbeatInterval,
        int heartbeatMisses,
        Duration leaseAuditInterval,
        Duration openTimeout,
        Duration mapTimeout,
        Duration unmapDrainTimeout,
        Duration reconnectMinBackoff,
        Duration reconnectMaxBackoff,
        int maxInFlight,
        String defaultTransport,
        List<String> enabledTransports,
        long defaultVolumeSize,
        Duration askTimeout,
        Duration storageLookupTimeout,
        boolean httpEnabled,
        String httpHostname,
        int httpPort,
        String httpToken,
        boolean jmxEnabled,
        Path dataDir,
        int mirrorActivityExtents,
        int mirrorActivityExtentSize) {

    public static final String ROLE_STORAGE = "storage";
    public static final String ROLE_CLIENT = "client";

    public static WeftSettings from(Config root) {
        Config w = root.getConfig("weft");
        Set<String> roles = Set.copyOf(w.getStringList("node.roles"));
        for (String role : roles) {
            if (!role.equals(ROLE_STORAGE) && !role.equals(ROLE_CLIENT)) {
                throw new IllegalArgumentException(
                        "weft.node.roles: unknown role '" + role + "' (use storage, client)");
            }
        }
        return new WeftSettings(
                w.getString("node.name"),
                roles,
                w.getStringList("storage.export-roots").stream().map(Path::of).toList(),
                w.getDuration("storage.mapping-lease"),
                w.getDuration("client.io-timeout"),
                w.getDuration("client.heartbeat-interval"),
                w.getInt("client.heartbeat-misses"),
                leaseAuditInterval(w),
                w.getDuration("client.open-timeout"),
                w.getDuration("client.map-timeout"),
                w.getDuration("client.unmap-drain-timeout"),
                w.getDuration("client.reconnect.min-backoff"),
                w.getDuration("client.reconnect.max-backoff"),
                w.getInt("client.max-in-flight"),
                w.getString("transport.default"),
                w.getStringList("transport.enabled"),
                w.getBytes("storage.default-volume-size"),
                w.getDuration("management.ask-timeout"),
                w.getDuration("management.storage-lookup-timeout"),
                w.getBoolean("management.http.enabled"),
                w.getString("management.http.hostname"),
                w.getInt("management.http.port"),
                w.getString("management.http.token"),
                w.getBoolean("management.jmx.enabled"),
                // weft.data-dir is node-app's key; a bare control-plane node keeps mirror bitmaps in the working dir.
                Path.of(w.hasPath("data-dir") ? w.getString("data-dir") : ".").toAbsolutePath().normalize(),
                w.getInt("mirror.activity-extents"),
                bytesInt(w, "mirror.activity-extent-size"));
    }

    private static int bytesInt(Config w, String key) {
        long v = w.getBytes(key);
        if (v <= 0 || v > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("weft." + key + " must be 1 byte..2 GiB: " + v);
        }
        return (int) v;
    }

    /** {@code weft.client.lease-audit-interval}: never shorter than the heartbeat interval it replaces. */
    private static Duration leaseAuditInterval(Config w) {
        Duration audit = w.getDuration("client.lease-audit-interval");
        Duration heartbeat = w.getDuration("client.heartbeat-interval");
        if (audit.compareTo(heartbeat) < 0) {
            throw new IllegalArgumentException("weft.client.lease-audit-interval (" + audit.toMillis()
                    + " ms) must not be shorter than weft.client.heartbeat-interval (" + heartbeat.toMillis() + " ms)");
        }
        return audit;
    }

    public boolean isStorage() {
        return roles.contains(ROLE_STORAGE);
    }

    public boolean isClient() {
        return roles.contains(ROLE_CLIENT);
    }

    public WeftSettings withNodeName(String name) {
        return new WeftSettings(name, roles, exportRoots, mappingLease, ioTimeout, heartbeatInterval, heartbeatMisses,
                leaseAuditInterval, openTimeout, mapTimeout, unmapDrainTimeout, reconnectMinBackoff,
                reconnectMaxBackoff, maxInFlight, defaultTransport, enabledTransports, defaultVolumeSize, askTimeout,
                storageLookupTimeout, httpEnabled, httpHostname, httpPort, httpToken, jmxEnabled, dataDir,
                mirrorActivityExtents, mirrorActivityExtentSize);
    }
}
