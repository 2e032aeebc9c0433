package io.weft.actors.transport;

import com.typesafe.config.Config;
import io.weft.core.tls.PemTlsMaterial;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import javax.net.ssl.SSLContext;

/**
 * What the cxl and rdma transports read from config ({@code weft.rdma.*}, {@code weft.cxl.*}; documented in
 * reference.conf and docs/transports.md).
 *
 * @param nodeName         this node's {@code weft.node.name} (may be empty: then the CXL host id is random)
 * @param rdmaProvider     {@code auto}, {@code software} or {@code disni}
 * @param rdmaListen       addresses the node's RDMA server listens on (one client path each)
 * @param rdmaQueueDepth   permits per session (= server chunks)
 * @param rdmaMaxIoSize    largest payload per request
 * @param rdmaAgents       storage-side IO agents of the node's RDMA server
 * @param rdmaHandshakeTimeout an RDMA admin connection that has not proven a grant this long is closed
 * @param rdmaMaxUnauthenticatedPerAddress unauthenticated RDMA admin connections one remote address may hold
 * @param rdmaMaxSessionsPerClient RDMA sessions one client node may hold on this storage node
 * @param rdmaMaxMemoryPerClient   bytes of RDMA session pools one client node may hold on this storage node
 * @param cxlRegions       region files this node attaches at start
 * @param cxlChannels      channels (shared-memory queues) per served mapping
 * @param cxlHeartbeat     host heartbeat interval in the region
 * @param cxlDeadTimeout   a heartbeat still this long = dead
 * @param channelGrace     a client channel without a working path this long reports itself failed
 * @param ioTimeout        {@code weft.client.io-timeout}; the transports' own timeouts are set above it so the
 *                         device's queue decides when IO fails
 * @param rdmaTls          {@code weft.rdma.tls = on}: the node's certificate and the cluster CA for the software
 *                         provider's TLS (mutual authentication); null when off
 */
public record TransportSettings(String nodeName, String rdmaProvider, List<InetSocketAddress> rdmaListen,
                                int rdmaQueueDepth, int rdmaMaxIoSize, int rdmaAgents, Duration rdmaHandshakeTimeout,
                                int rdmaMaxUnauthenticatedPerAddress, int rdmaMaxSessionsPerClient,
                                long rdmaMaxMemoryPerClient, List<Path> cxlRegions,
                                int cxlChannels, Duration cxlHeartbeat, Duration cxlDeadTimeout,
                                Duration channelGrace, Duration ioTimeout, SSLContext rdmaTls) {

    public static final String RDMA_TLS_KEY = "weft.rdma.tls";
    public static final String RDMA_TLS_CERTIFICATES_KEY = "weft.rdma.tls-certificates";
    /** The node's certificate directory, the default of {@link #RDMA_TLS_CERTIFICATES_KEY}. */
    public static final String NODE_CERTIFICATES_KEY = "weft.tls.certificates";

    /** Without TLS on the software RDMA provider. */
    public TransportSettings(String nodeName, String rdmaProvider, List<InetSocketAddress> rdmaListen,
                             int rdmaQueueDepth, int rdmaMaxIoSize, int rdmaAgents, Duration rdmaHandshakeTimeout,
                             int rdmaMaxUnauthenticatedPerAddress, int rdmaMaxSessionsPerClient,
                             long rdmaMaxMemoryPerClient, List<Path> cxlRegions, int cxlChannels,
                             Duration cxlHeartbeat, Duration cxlDeadTimeout, Duration channelGrace,
                             Duration ioTimeout) {
        this(nodeName, rdmaProvider, rdmaListen, rdmaQueueDepth, rdmaMaxIoSize, rdmaAgents, rdmaHandshakeTimeout,
                rdmaMaxUnauthenticatedPerAddress, rdmaMaxSessionsPerClient, rdmaMaxMemoryPerClient, cxlRegions,
                cxlChannels, cxlHeartbeat, cxlDeadTimeout, channelGrace, ioTimeout, null);
    }

    public TransportSettings {
        if (rdmaHandshakeTimeout.isNegative() || rdmaHandshakeTimeout.isZero()) {
            throw new IllegalArgumentException("weft.rdma.handshake-timeout: must be positive, got "
                    + rdmaHandshakeTimeout);
        }
        if (rdmaMaxUnauthenticatedPerAddress < 1) {
            throw new IllegalArgumentException("weft.rdma.max-unauthenticated-per-address: must be at least 1, got "
                    + rdmaMaxUnauthenticatedPerAddress);
        }
        if (rdmaMaxSessionsPerClient < 1) {
            throw new IllegalArgumentException("weft.rdma.max-sessions-per-client: must be at least 1, got "
                    + rdmaMaxSessionsPerClient);
        }
        if (rdmaMaxMemoryPerClient < 1) {
            throw new IllegalArgumentException("weft.rdma.max-memory-per-client: must be positive, got "
                    + rdmaMaxMemoryPerClient);
        }
    }

    /** @param root the whole config (with reference.conf applied) */
    public static TransportSettings from(Config root) {
        Config w = root.getConfig("weft");
        List<InetSocketAddress> listen = new ArrayList<>();
        for (String hp : w.getStringList("rdma.listen")) {
            listen.add(parseHostPort(hp, "weft.rdma.listen"));
        }
        if (listen.isEmpty()) {
            listen.add(new InetSocketAddress(w.getString("cluster.hostname"), 0));
        }
        List<Path> regions = new ArrayList<>();
        for (String p : w.getStringList("cxl.regions")) {
            regions.add(Path.of(p));
        }
        return new TransportSettings(w.getString("node.name"), w.getString("rdma.provider"), List.copyOf(listen),
                w.getInt("rdma.queue-depth"), (int) w.getBytes("rdma.max-io-size").longValue(),
                w.getInt("rdma.server-agents"), w.getDuration("rdma.handshake-timeout"),
                w.getInt("rdma.max-unauthenticated-per-address"), w.getInt("rdma.max-sessions-per-client"),
                w.getBytes("rdma.max-memory-per-client"), List.copyOf(regions), w.getInt("cxl.channels"),
                w.getDuration("cxl.heartbeat-interval"), w.getDuration("cxl.dead-timeout"),
                w.getDuration("transport.channel-grace"), w.getDuration("client.io-timeout"), rdmaTls(root));
    }

    /**
     * {@value #RDMA_TLS_KEY}: {@code off} (null) or {@code on} ({@code require} is the same), with the PEM layout of
     * {@value #RDMA_TLS_CERTIFICATES_KEY} (default {@value #NODE_CERTIFICATES_KEY}): {@code server-cert.pem} and
     * {@code server-key.pem} are this node's identity in both directions, {@code ca-cert.pem} the only trust anchor.
     *
     * @throws IllegalArgumentException whose message starts with the offending key
     */
    static SSLContext rdmaTls(Config root) {
        String value = root.getString(RDMA_TLS_KEY).trim().toLowerCase(Locale.ROOT);
        boolean on;
        switch (value) {
            // require = on: a TLS node never talks to a plaintext peer (security.NodeTls reads it the same way).
            case "on", "require", "true", "yes" -> on = true;
            case "off", "false", "no", "" -> on = false;
            default -> throw new IllegalArgumentException(RDMA_TLS_KEY + ": expected off or on, got '" + value + "'");
        }
        if (!on) {
            return null;
        }
        String key = RDMA_TLS_CERTIFICATES_KEY;
        String dir = root.getString(key);
        if (dir.isEmpty() && root.hasPath(NODE_CERTIFICATES_KEY)) {
            key = NODE_CERTIFICATES_KEY;
            dir = root.getString(key);
        }
        if (dir.isEmpty()) {
            throw new IllegalArgumentException(RDMA_TLS_CERTIFICATES_KEY + ": " + RDMA_TLS_KEY + " = on needs a "
                    + "certificate directory (ca-cert.pem, server-cert.pem, server-key.pem; weft certs init writes "
                    + "one); it defaults to " + NODE_CERTIFICATES_KEY + ", which is empty too");
        }
        try {
            return PemTlsMaterial.serverContext(Path.of(dir), true);
        } catch (IOException e) {
            throw new IllegalArgumentException(key + ": " + e.getMessage(), e);
        }
    }

    static InetSocketAddress parseHostPort(String hp, String key) {
        int colon = hp.lastIndexOf(':');
        if (colon <= 0) {
            throw new IllegalArgumentException(key + ": expected host:port, got '" + hp + "'");
        }
        String host = hp.substring(0, colon);
        if (host.startsWith("[") && host.endsWith("]")) {
            host = host.substring(1, host.length() - 1);
        }
        return new InetSocketAddress(host, Integer.parseInt(hp.substring(colon + 1)));
    }

    static String format(InetSocketAddress a) {
        String host = a.getAddress() != null ? a.getAddress().getHostAddress() : a.getHostString();
        return (host.contains(":") ? "[" + host + "]" : host) + ":" + a.getPort();
    }
}
