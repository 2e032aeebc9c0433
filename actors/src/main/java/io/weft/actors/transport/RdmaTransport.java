package io.weft.actors.transport;

import io.weft.core.io.BlockDevice;
import io.weft.rdma.client.PathSpec;
import io.weft.rdma.client.PathState;
import io.weft.rdma.client.PathStatus;
import io.weft.rdma.client.RdmaBlockDevice;
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
 *   rdma.session-capability the client node's session grant on this storage node (base64url), derived from the
 *                   server's secret and the client's identity: the same for every mapping of that incarnation
 * </pre>
 * A client node keeps <b>one session per storage node and path set</b>, opened with the session grant and shared by
 * every device it maps there; each mapping is a device opened inside it with its own capability (challenge-response,
 * docs/rdma.md). Per-peer limits ({@code weft.rdma.handshake-timeout}, {@code max-unauthenticated-per-address},
 * {@code max-sessions-per-client}, {@code max-memory-per-client}) bound what one address or client node can hold.
 * Client side: sessions are reference-counted by their channels; a channel's device is its {@code RdmaBlockDevice}.
 * Closing a channel closes its device (requests it still holds complete with ESHUTDOWN, so the device layer retries
 * them on the next path) and the session with its last device; a session with no connected path for
 * {@code weft.transport.channel-grace}, or at once when every path's reconnect is refused (nothing listens: the
 * storage process is gone), or a device the storage node stopped serving, reports the channel failed.
 * Stopping a served mapping closes its device in every session that holds it; the sessions and their other devices
 * go on.
 */
public final class RdmaTransport implements Transport, AutoCloseable {
    public static final String NAME = "rdma";
    static final String ADDRESSES = "rdma.addresses";
    static final String DEVICE = "rdma.device";
    static final String PROVIDER = "rdma.provider";
    static final String CLIENT = "rdma.client";
    static final String IDENTITY = "rdma.identity";
    static final String CAPABILITY = "rdma.capability";
    static final String SESSION_CAPABILITY = "rdma.session-capability";

    private final TransportSettings settings;
    private final ChannelWatcher watcher;
    private VerbsProvider provider; // guarded by this
    private RdmaServer server; // guarded by this
    private boolean closed; // guarded by this
    /** Client side: the sessions this node holds, per storage node and path set; guarded by {@link #sessions}. */
    private final Map<SessionKey, SharedSession> sessions = new HashMap<>();

    /** What makes two mappings share a session: the same storage addresses and the same session grant. */
    private record SessionKey(String addresses, String clientNode, String identity, String sessionCapability) {
    }

    /** A session and the number of channels (devices) using it. */
    private static final class SharedSession {
        final RdmaSession session;
        int users;

        SharedSession(RdmaSession session) {
            this.session = session;
        }
    }

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
        props.put(SESSION_CAPABILITY, s.sessionGrant(grant.clientNode(), grant.identity()).encodedCapability());
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
            public boolean carriesClientLiveness() {
                return true;
            }

            @Override
            public long clientLastHeardNanos() {
                return deviceClientLastHeardNanos(mappingId);
            }

            @Override
            public void close() {
                unserve(mappingId);
            }
        };
    }

    /** The newest admin message of a session holding {@code mappingId} open (ServedChannel's liveness). */
    long deviceClientLastHeardNanos(String mappingId) {
        RdmaServer s;
        synchronized (this) {
            s = server;
        }
        long heard = s == null ? RdmaServer.NEVER_HEARD : s.deviceClientLastHeardNanos(mappingId);
        return heard == RdmaServer.NEVER_HEARD ? ServedChannel.NEVER_HEARD : heard;
    }

    @Override
    public TransportConnector connector() {
        return this::connect;
    }

    /** True when the endpoint carries rdma properties this node's provider can use. */
    boolean canReach(TransportEndpoint endpoint) {
        return endpoint.properties().containsKey(ADDRESSES);
    }

    MappingChannel connect(TransportEndpoint endpoint, ChannelFailureListener onFailure) throws IOException {
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
        io.weft.rdma.protocol.Grant grant;
        io.weft.rdma.protocol.Grant sessionGrant;
        try {
            grant = io.weft.rdma.protocol.Grant.decode(endpoint.require(CLIENT), endpoint.require(IDENTITY),
                    endpoint.require(CAPABILITY));
            sessionGrant = io.weft.rdma.protocol.Grant.decode(grant.clientNode(), grant.identity(),
                    endpoint.require(SESSION_CAPABILITY));
        } catch (IllegalArgumentException e) {
            throw new IOException("rdma endpoint carries a malformed grant: " + e.getMessage(), e);
        }
        SessionKey sessionKey = new SessionKey(endpoint.require(ADDRESSES), grant.clientNode(), grant.identity(),
                endpoint.require(SESSION_CAPABILITY));
        RdmaSession session = acquireSession(local, sessionKey, sessionGrant, paths, config);
        RdmaBlockDevice device;
        try {
            device = session.openDevice(endpoint.require(DEVICE), grant);
        } catch (IOException | RuntimeException e) {
            releaseSession(sessionKey, session);
            throw e;
        }
        Object key = new Object();
        watcher.watch(key, () -> device.failure() != null
                ? ChannelWatcher.Problem.definite("rdma device: " + device.failure()) : noConnectedPath(session),
                onFailure);
        return new MappingChannel() {
            private boolean channelClosed; // guarded by this

            @Override
            public BlockDevice device() {
                return device;
            }

            @Override
            public String transportName() {
                return NAME;
            }

            @Override
            public boolean carriesLiveness() {
                return true; // the session's admin heartbeats, 4 a second on every path
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
                synchronized (this) {
                    if (channelClosed) {
                        return;
                    }
                    channelClosed = true;
                }
                watcher.unwatch(key);
                device.close();
                releaseSession(sessionKey, session);
            }
        };
    }

    /**
     * The session to the storage node at {@code key}'s addresses with {@code key}'s session grant, opened on first
     * use; every caller must {@link #releaseSession} it once. Opening holds the map's lock: the first device of a
     * storage node waits for the session, later ones reuse it.
     */
    private RdmaSession acquireSession(VerbsProvider local, SessionKey key, io.weft.rdma.protocol.Grant sessionGrant,
                                       List<PathSpec> paths, RdmaClientConfig config) throws IOException {
        synchronized (sessions) {
            SharedSession shared = sessions.get(key);
            if (shared == null) {
                RdmaSession session = RdmaSession.open(local, "s-" + UUID.randomUUID(), sessionGrant, paths, config);
                shared = new SharedSession(session);
                sessions.put(key, shared);
            }
            shared.users++;
            return shared.session;
        }
    }

    private void releaseSession(SessionKey key, RdmaSession session) {
        RdmaSession toClose = null;
        synchronized (sessions) {
            SharedSession shared = sessions.get(key);
            if (shared != null && shared.session == session && --shared.users == 0) {
                sessions.remove(key);
                toClose = session;
            }
        }
        if (toClose != null) {
            toClose.close();
        }
    }

    /** Client side: sessions this node holds (one per storage node and path set) and their devices. */
    public List<RdmaSession> clientSessions() {
        synchronized (sessions) {
            List<RdmaSession> out = new ArrayList<>();
            for (SharedSession s : sessions.values()) {
                out.add(s.session);
            }
            return out;
        }
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

    private static ChannelWatcher.Problem noConnectedPath(RdmaSession session) {
        StringBuilder why = null;
        for (PathStatus p : session.paths()) {
            if (p.state() == PathState.CONNECTED) {
                return null;
            }
            why = (why == null ? new StringBuilder("no connected rdma path:") : why.append(';'))
                    .append(' ').append(p.remote()).append(' ').append(p.state()).append(' ').append(p.lastError());
        }
        if (why == null) {
            return ChannelWatcher.Problem.mayRecover("rdma session has no paths");
        }
        // Every path refused: nothing listens where the storage node served (killed, or its server stopped). No
        // reconnect of this session brings the mapping back (a restarted node serves it under a new id), so no
        // grace: the control plane re-opens at once (issue 17).
        return session.everyPathRefused()
                ? ChannelWatcher.Problem.definite(why.append("; every path refused: storage gone").toString())
                : ChannelWatcher.Problem.mayRecover(why.toString());
    }

    @Override
    public synchronized void close() {
        closed = true; // client sessions belong to their channels, which close them (with their last device)
        if (server != null) {
            server.close();
            server = null;
        }
    }
}
