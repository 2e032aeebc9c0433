package io.weft.actors;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigValueFactory;
import io.weft.actors.cluster.ClusterDirectory;
import io.weft.actors.security.NodeTls;
import io.weft.core.tls.TlsLayout;
import java.io.IOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Builds the Pekko configuration of a node from its {@code weft.*} keys. Precedence, highest first:
 * {@code weft.pekko} (escape hatch), values derived from {@code weft.*}, {@code weft-pekko.conf}, the user's config.
 *
 * <p>Cluster TLS: {@code weft.tls.certificates} (a {@code weft certs init} directory) or, when that is empty,
 * {@code weft.cluster.tls.*} turn Artery's transport to {@code tls-tcp} with mutual authentication: a connection in
 * either direction completes only when both peers present a certificate of the trusted CA.
 */
public final class PekkoConfig {
    private PekkoConfig() {
    }

    public static Config build(Config user) {
        Config withDefaults = user.withFallback(ConfigFactory.defaultReference()).resolve();
        Config w = withDefaults.getConfig("weft");
        Map<String, Object> derived = new HashMap<>();
        derived.put("pekko.remote.artery.canonical.hostname", w.getString("cluster.hostname"));
        derived.put("pekko.remote.artery.canonical.port", w.getInt("cluster.port"));
        List<String> roles = new ArrayList<>(w.getStringList("node.roles"));
        String nodeName = w.getString("node.name");
        if (!nodeName.isBlank()) {
            // Internal: how the other nodes learn this member's Weft name (io.weft.actors.cluster.ClusterDirectory).
            roles.add(ClusterDirectory.NODE_NAME_ROLE_PREFIX + nodeName);
        }
        derived.put("pekko.cluster.roles", roles);
        // No pekko.cluster.seed-nodes: Pekko would join them by itself at start, and its first seed forms a new
        // cluster when answers are slow. io.weft.actors.cluster.ClusterFormation joins weft.cluster.seed-nodes.
        derived.put("pekko.cluster.seed-nodes", List.of());
        derived.put("pekko.cluster.seed-node-timeout", w.getString("cluster.seed-node-timeout"));
        derived.put("pekko.cluster.failure-detector.heartbeat-interval",
                w.getString("cluster.failure-detector.heartbeat-interval"));
        derived.put("pekko.cluster.failure-detector.acceptable-heartbeat-pause",
                w.getString("cluster.failure-detector.acceptable-heartbeat-pause"));
        derived.put("pekko.cluster.split-brain-resolver.stable-after",
                w.getString("cluster.split-brain-resolver.stable-after"));
        derived.put("pekko.management.http.hostname", w.getString("management.http.hostname"));
        derived.put("pekko.management.http.port", w.getInt("management.http.port"));
        // An HTTP call may wait for IO (probe) up to the io-timeout, or for a map up to map-timeout.
        long waitMillis = Math.max(w.getDuration("client.io-timeout").toMillis(),
                w.getDuration("client.map-timeout").toMillis()) + w.getDuration("management.ask-timeout").toMillis();
        derived.put("pekko.http.server.request-timeout", Math.max(20_000, waitMillis) + "ms");
        String ssl = "pekko.remote.artery.ssl.config-ssl-engine.";
        Optional<TlsLayout> certificates = NodeTls.layout(withDefaults);
        if (certificates.isPresent()) {
            // weft.tls.certificates: everything from the node's certificate directory (weft certs init).
            TlsLayout layout = certificates.get();
            String password;
            try {
                password = layout.password();
            } catch (IOException e) {
                throw new IllegalArgumentException(NodeTls.CERTIFICATES + ": cannot read "
                        + layout.dir().resolve(TlsLayout.KEYSTORE_PASSWORD) + ": " + e, e);
            }
            derived.put("pekko.remote.artery.transport", "tls-tcp");
            derived.put(ssl + "key-store", layout.keyStore().toString());
            derived.put(ssl + "key-store-password", password);
            derived.put(ssl + "key-password", password);
            derived.put(ssl + "trust-store", layout.trustStore().toString());
            derived.put(ssl + "trust-store-password", password);
            derived.put(ssl + "require-mutual-authentication", true);
            derived.put(ssl + "hostname-verification", w.getBoolean("cluster.tls.hostname-verification"));
        } else if (w.getBoolean("cluster.tls.enabled")) {
            derived.put("pekko.remote.artery.transport", "tls-tcp");
            derived.put(ssl + "key-store", w.getString("cluster.tls.key-store"));
            derived.put(ssl + "key-store-password", w.getString("cluster.tls.key-store-password"));
            derived.put(ssl + "key-password", w.getString("cluster.tls.key-password"));
            derived.put(ssl + "trust-store", w.getString("cluster.tls.trust-store"));
            derived.put(ssl + "trust-store-password", w.getString("cluster.tls.trust-store-password"));
            derived.put(ssl + "require-mutual-authentication", true);
            derived.put(ssl + "hostname-verification", w.getBoolean("cluster.tls.hostname-verification"));
        }
        Config derivedConfig = ConfigFactory.empty();
        for (Map.Entry<String, Object> e : derived.entrySet()) {
            derivedConfig = derivedConfig.withValue(e.getKey(), ConfigValueFactory.fromAnyRef(e.getValue()));
        }
        Config escape = w.getConfig("pekko").atKey("pekko");
        return escape
                .withFallback(derivedConfig)
                .withFallback(ConfigFactory.parseResources(PekkoConfig.class.getClassLoader(), "weft-pekko.conf"))
                .withFallback(withDefaults)
                .resolve();
    }

    /** The actor system name all nodes of the cluster share. */
    public static String systemName(Config user) {
        return user.withFallback(ConfigFactory.defaultReference()).getString("weft.cluster.name");
    }
}
