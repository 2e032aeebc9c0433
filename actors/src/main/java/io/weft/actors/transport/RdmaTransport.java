package io.weft.actors.transport;

import io.weft.core.io.BlockDevice;
import io.weft.rdma.client.PathSpec;
import io.weft.rdma.client.PathState;
import io.weft.rdma.client.PathStatus;
import io.weft.rdma.client.RdmaClientConfig;
import io.weft.rdma.client.RdmaSession;
import io.weft.rdma.server.RdmaServer;
import io.weft.rdma.server.RdmaServerConfig;
import io.weft.rdma.verbs.VerbsProvider;
import io.weft.rdma.verbs.VerbsProviders;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;

/**
 * The {@code rdma} transport: RTRS-style sessions over verbs (DiSNI, or the software provider over TCP).
 *
 * <p>Storage side: one {@link RdmaServer} per node, started on the first served mapping and listening on
 * {@code weft.rdma.listen}; each mapping is served under its mapping id. Endpoint properties:
 * <pre>
 *   rdma.addresses  host:port[,host:port...]   one client path per listen address
 *   rdma.device     the mapping id (the device name the session opens)
 *   rdma.provider   verbs provider name (a software client cannot talk to a DiSNI server)
 *   rdma.client     the client node the mapping is granted to
 *   rdma.identity   that node's identity (name, address, incarnation) the grant is bound to
 *   rdma.capability the grant's secret (base64url); only the granted client receives it, in the open reply
 * </pre>
 * The server serves each mapping to its grant only: a session opens after the client proves the capability
 * (challenge-response, docs/rdma.md), and per-peer limits ({@code weft.rdma.handshake-timeout},
 * {@code max-unauthenticated-per-address}, {@code max-sessions-per-client}, {@code max-memory-per-client}) bound
 * what one address or client node can hold.
 * Client side: one {@link RdmaSession} per channel with a path to every address; its {@code RdmaBlockDevice} is the
 * channel's device. Closing the channel closes the session (requests it still holds complete with ESHUTDOWN, so the
 * device retries them on the next path); a session with no connected path for {@code weft.transport.channel-grace}
 * reports the channel failed. Stopping a served mapping stops serving its device and closes its IO connections.
 */
public final class RdmaTransport implements Transport, AutoCloseable {
    public static final String NAME = "rdma";
    static final String ADDRESSES = "rdma.addresses";
    static final String DEVICE = "rdma.device";
    static final String PROVIDER = "rdma.provider";
    static final String CLIENT = "rdma.client";
    static final String IDENTITY = "rdma.identity";
    static final String CAPABILITY = "rdma.capability";

    private final TransportSettings settings;
    private final ChannelWatcher watcher;
    private VerbsProvider provider; // guarded by this
    private RdmaServer server; // guarded by this
    private boolean closed; // guarded by this

    RdmaTransport(TransportSettings settings, ChannelWatcher watcher) {
        this.settings = settings;
        this.watcher = watcher;
    }

    @Override
    public String name() {
        return NAME;
    }

    private synchronized VerbsProvider provider() {
        if (provider == null) {
            provider = VerbsProviders.open(VerbsProviders.Mode.parse(settings.rdmaProvider()), settings.rdmaTls())
                    .provider();
        }
        return provider;
    }

    private synchronized RdmaServer server() throws IOException {
        if (closed) {
            throw new IOException("rdma transport is closed (node shutting down)");
        }
        if (server == null) {
            RdmaServerConfig config = RdmaServerConfig.DEFAULTS.withAgents(settings.rdmaAgents())
                    .withPeerLimits(settings.rdmaHandshakeTimeout(), settings.rdmaMaxUnauthenticatedPerAddress(),
                            settings.rdmaMaxSessionsPerClient(), settings.rdmaMaxMemoryPerClient());
            server = RdmaServer.start(provider(), config, Map.of(), settings.rdmaListen());
        }
        return server;
    }

    /** The node's RDMA server addresses, or none before the first mapping was served. */
    public synchronized List<InetSocketAddress> listenAddresses() {
        return server == null ? List.of() : server.listenAddresses();
    }

    /** Sessions open on this node's RDMA server (tests check that unmap leaves none). */
    public synchronized List<RdmaServer.SessionStatus> serverSessions() {
        return server == null ? List.of() : server.sessions();
    }

    @Override
    public TransportAcceptor acceptor() {
        return this::serve;
    }

    Map<String, String> serveProperties(String mappingId, BlockDevice device, MappingGrant grant)
            throws IOException {
        RdmaServer s = server();
        s.addDevice(mappingId, device, grant.toRdma());
        List<String> addresses = new ArrayList<>();
        for (InetSocketAddress a : s.listenAddresses()) {
            addresses.add(TransportSettings.format(a));
        }
        Map<String, String> props = new HashMap<>();
        props.put(ADDRESSES, String.join(",", addresses));
        props.put(DEVICE, mappingId);
        props.put(PROVIDER, s.providerName());
        props.put(CLIENT, grant.clientNode());
        props.put(IDENTITY, grant.identity());
        props.put(CAPABILITY, grant.capability());
        return props;
    }

    void unserve(String mappingId) {
        RdmaServer s;
        synchronized (this) {
            s = server;
        }
        if (s != null) {
            s.removeDevice(mappingId);
        }
    }

    private ServedChannel serve(String mappingId, BlockDevice device, MappingGrant grant,
                                ChannelFailureListener onFailure) throws IOException {
        TransportEndpoint endpoint = new TransportEndpoint(NAME, serveProperties(mappingId, device, grant));
        return new ServedChannel() {
            @Override
            public TransportEndpoint endpoint() {
                return endpoint;
            }

            @Override
            public void close() {
                unserve(mappingId);
            }
        };
    }

    @Override
    public TransportConnector connector() {
        return this::connect;
    }

    /** True when the endpoint carries rdma properties this node's provider can use. */
    boolean canReach(TransportEndpoint endpoint) {
        return endpoint.properties().containsKey(ADDRESSES);
    }

    ClientChannel connect(TransportEndpoint endpoint, ChannelFailureListener onFailure) throws IOException {
        String providerName = endpoint.require(PROVIDER);
        VerbsProvider local = provider();
        if (!local.name().equals(providerName)) {
            throw new UnreachableEndpointException("the storage node serves rdma with the '" + providerName
                    + "' verbs provider and this node uses '" + local.name() + "'; set weft.rdma.provider alike on"
                    + " both nodes");
        }
        List<PathSpec> paths = new ArrayList<>();
        for (String hp : endpoint.require(ADDRESSES).split(",")) {
            paths.add(PathSpec.to(TransportSettings.parseHostPort(hp.trim(), ADDRESSES)));
        }
        // The device's queue decides when IO fails (EIO after weft.client.io-timeout); the session must not first.
        RdmaClientConfig config = RdmaClientConfig.DEFAULTS.withQueueDepth(settings.rdmaQueueDepth())
                .withMaxIoSize(settings.rdmaMaxIoSize())
                .withIoTimeout(settings.ioTimeout().plus(Duration.ofSeconds(5)));
        String sessionName = "s-" + UUID.randomUUID();
        io.weft.rdma.protocol.Grant grant;
        try {
            grant = io.weft.rdma.protocol.Grant.decode(endpoint.require(CLIENT), endpoint.require(IDENTITY),
                    endpoint.require(CAPABILITY));
        } catch (IllegalArgumentException e) {
            throw new IOException("rdma endpoint carries a malformed grant: " + e.getMessage(), e);
        }
        RdmaSession session = RdmaSession.open(local, sessionName, endpoint.require(DEVICE), grant, paths, config);
        Object key = new Object();
        watcher.watch(key, () -> noConnectedPath(session), onFailure);
        return new ClientChannel() {
            @Override
            public BlockDevice device() {
                return session.device();
            }

            @Override
            public String transportName() {
                return NAME;
            }

            @Override
            public int pathCount() {
                return session.paths().size();
            }

            @Override
            public void disconnectPath(int index) {
                session.disconnectPath(pathId(session, index));
            }

            @Override
            public void reconnectPath(int index) {
                session.reconnectPath(pathId(session, index));
            }

            @Override
            public void close() {
                watcher.unwatch(key);
                session.close();
            }
        };
    }

    /** The session's id of the path at {@code index} in its path list (the order of {@code rdma.addresses}). */
    private static int pathId(RdmaSession session, int index) {
        List<PathStatus> paths = session.paths();
        if (index < 0 || index >= paths.size()) {
            throw new IllegalArgumentException("path " + index + " out of range: the session has " + paths.size()
                    + " path(s)");
        }
        return paths.get(index).id();
    }

    private static String noConnectedPath(RdmaSession session) {
        StringBuilder why = null;
        for (PathStatus p : session.paths()) {
            if (p.state() == PathState.CONNECTED) {
                return null;
            }
            why = (why == null ? new StringBuilder("no connected rdma path:") : why.append(';'))
                    .append(' ').append(p.remote()).append(' ').append(p.state()).append(' ').append(p.lastError());
        }
        return why == null ? "rdma session has no paths" : why.toString();
    }

    @Override
    public synchronized void close() {
        closed = true;
        if (server != null) {
            server.close();
            server = null;
        }
    }
}
