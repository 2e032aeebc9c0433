package io.weft.rdma.server;

import io.weft.core.io.BlockDevice;
import io.weft.rdma.protocol.AdminChannel;
import io.weft.rdma.protocol.Capability;
import io.weft.rdma.protocol.Grant;
import io.weft.rdma.protocol.ConnectData;
import io.weft.rdma.verbs.Access;
import io.weft.rdma.verbs.ConnectionOptions;
import io.weft.rdma.verbs.ConnectionRequest;
import io.weft.rdma.verbs.MemoryRegion;
import io.weft.rdma.verbs.ProtectionDomain;
import io.weft.rdma.verbs.VerbsListener;
import io.weft.rdma.verbs.VerbsProvider;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The storage side of the RDMA transport: listens on one address per path, opens a session (with its chunk pool,
 * registered once) when a client's admin connection proves its node's {@link #sessionGrant session grant} (or, for
 * a single-device client, one device's grant; see ControlMessage), opens devices inside the session when the client
 * proves each one's mapping capability ({@link ServedDevice#grant()}), and serves the session's IO connections
 * against those devices with one control thread and a bounded set of agents for every session and device. Per-peer
 * limits (RdmaServerConfig) bound what one address or one client node can hold.
 *
 * <pre>
 *   Grant grant = Grant.issue("client-a", "client-a#incarnation");  // handed to client-a by the control plane
 *   RdmaServer server = RdmaServer.start(provider, RdmaServerConfig.DEFAULTS,
 *           Map.of("vol0", new ServedDevice(device, grant)),
 *           List.of(new InetSocketAddress("127.0.0.1", 0), new InetSocketAddress("127.0.0.2", 0)));
 * </pre>
 */
public final class RdmaServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(RdmaServer.class);

    private final VerbsProvider provider;
    private final RdmaServerConfig config;
    private final Map<String, ServedDevice> devices;
    private final int epoch = ThreadLocalRandom.current().nextInt();
    /** The secret session grants are derived from (Capability.sessionGrant); never leaves this object. */
    private final byte[] sessionSecret;
    private final ProtectionDomain controlPd;
    private final ServerControl control;
    private final ServerAgent[] agents;
    private final List<VerbsListener> listeners = new ArrayList<>();
    private final Map<String, ServerSession> sessionsByName = new ConcurrentHashMap<>();
    private final Map<Long, ServerSession> sessionsByToken = new ConcurrentHashMap<>();
    private final Map<Object, InetSocketAddress> connectionListeners = new ConcurrentHashMap<>();
    /** Every IO connection until it is closed and none of its requests executes any more (fences look here). */
    private final java.util.Set<ServerIoConnection> ioConnections = ConcurrentHashMap.newKeySet();
    private final AtomicInteger nextConnectionId = new AtomicInteger();
    private final AtomicInteger nextAgent = new AtomicInteger();
    /** Admin connections per remote address that have not authenticated yet (weft.rdma.max-unauthenticated-...). */
    private final Map<java.net.InetAddress, AtomicInteger> unauthenticated = new ConcurrentHashMap<>();
    private volatile boolean closed;

    private RdmaServer(VerbsProvider provider, RdmaServerConfig config, Map<String, ServedDevice> devices,
                       byte[] sessionSecret) {
        this.provider = provider;
        this.config = config;
        this.devices = new ConcurrentHashMap<>(devices);
        if (sessionSecret.length != Capability.LENGTH) {
            throw new IllegalArgumentException("session secret must be " + Capability.LENGTH + " bytes");
        }
        this.sessionSecret = sessionSecret.clone();
        this.controlPd = provider.createProtectionDomain();
        this.control = new ServerControl(this, provider.createCompletionQueue("storage-control"),
                config.heartbeatTimeout().toNanos(), config.handshakeTimeout().toNanos());
        this.agents = new ServerAgent[config.agents()];
        for (int i = 0; i < agents.length; i++) {
            agents[i] = new ServerAgent("weft-rdma-storage-io-" + i,
                    provider.createCompletionQueue("storage-io-" + i), control.cq, ioConnections);
        }
    }

    /** Starts serving {@code devices} (name to device and its grant) on every address in {@code listen}. */
    public static RdmaServer start(VerbsProvider provider, RdmaServerConfig config, Map<String, ServedDevice> devices,
                                   List<InetSocketAddress> listen) throws IOException {
        return start(provider, config, devices, listen, Capability.generate());
    }

    /**
     * As {@link #start(VerbsProvider, RdmaServerConfig, Map, List)} with the secret session grants are derived from
     * ({@link Capability#LENGTH} random bytes; a node makes one per start, tests share one with a child process).
     */
    public static RdmaServer start(VerbsProvider provider, RdmaServerConfig config, Map<String, ServedDevice> devices,
                                   List<InetSocketAddress> listen, byte[] sessionSecret) throws IOException {
        RdmaServer server = new RdmaServer(provider, config, devices, sessionSecret);
        server.control.start("weft-rdma-storage-control");
        for (ServerAgent a : server.agents) {
            a.start();
        }
        try {
            for (InetSocketAddress address : listen) {
                server.listeners.add(provider.listen(address, server::onConnectRequest));
            }
        } catch (IOException | RuntimeException e) {
            server.close();
            throw e;
        }
        LOG.info("RDMA storage server ({} provider) listening on {} for devices {}", provider.name(),
                server.listenAddresses(), devices.keySet());
        return server;
    }

    public List<InetSocketAddress> listenAddresses() {
        List<InetSocketAddress> out = new ArrayList<>();
        for (VerbsListener l : listeners) {
            out.add(l.localAddress());
        }
        return out;
    }

    RdmaServerConfig config() {
        return config;
    }

    /**
     * Serves one more device under {@code name} (a control plane that opens devices while running), to the one
     * client that holds {@code grant}.
     *
     * @throws IllegalArgumentException when the name is already served
     */
    public void addDevice(String name, BlockDevice device, io.weft.rdma.protocol.Grant grant) {
        if (devices.putIfAbsent(name, new ServedDevice(device, grant)) != null) {
            throw new IllegalArgumentException("device '" + name + "' is already served");
        }
    }

    /**
     * Stops serving {@code name}: new opens of it are refused, every session that holds it open closes it (requests
     * naming it are answered ESHUTDOWN from then on; requests already on the device finish) and its client is told
     * with DEVICE_CLOSED. The sessions, their paths and their other devices are not disturbed.
     *
     * @return true if the device was served
     */
    public boolean removeDevice(String name) {
        boolean removed = devices.remove(name) != null;
        control.withdraw(name);
        return removed;
    }

    /**
     * When the client holding device {@code name} open was last heard on the data path: the newest admin message
     * (its heartbeats, 4 a second) over any authenticated path of a session that has the device open. A silent
     * client's paths are closed after the heartbeat timeout and this stops moving. Any thread; control path (walks
     * the open sessions).
     *
     * @return a System.nanoTime value, or {@link #NEVER_HEARD} when no session holds the device open
     */
    public long deviceClientLastHeardNanos(String name) {
        long newest = NEVER_HEARD;
        boolean found = false;
        for (ServerSession s : sessionsByName.values()) {
            if (s.deviceNamed(name) != null) {
                long heard = s.lastHeardNanos;
                if (!found || heard - newest > 0) {
                    newest = heard;
                    found = true;
                }
            }
        }
        return newest;
    }

    /** {@link #deviceClientLastHeardNanos}: no client holds the device open. */
    public static final long NEVER_HEARD = Long.MIN_VALUE;

    /**
     * The session grant of client node {@code clientNode} in its incarnation {@code identity}: what the control
     * plane hands that node (with every mapping) so it can open one session here for all its devices. Derived from
     * this server's secret, so it is the same for every mapping of that incarnation and differs for the next one.
     */
    public Grant sessionGrant(String clientNode, String identity) {
        return Capability.sessionGrant(sessionSecret, clientNode, identity);
    }

    /**
     * Control thread: the session grant of {@code clientNode} whose identity hashes to {@code identityDigest}, if a
     * device is served to that incarnation (no device, no session), else null.
     */
    Grant sessionGrantFor(String clientNode, byte[] identityDigest) {
        for (ServedDevice served : devices.values()) {
            Grant g = served.grant();
            if (g.clientNode().equals(clientNode)
                    && java.security.MessageDigest.isEqual(Capability.identityDigest(g.identity()), identityDigest)) {
                return sessionGrant(clientNode, g.identity());
            }
        }
        return null;
    }

    int epoch() {
        return epoch;
    }

    private void onConnectRequest(ConnectionRequest request) {
        ConnectData.Request r = ConnectData.parseRequest(request.privateData());
        int version = ConnectData.requestVersion(request.privateData());
        if (r == null && version >= 0 && version != ConnectData.VERSION) {
            LOG.warn("rejecting connection from {}: it speaks RDMA protocol version {}, this node speaks {}",
                    request.remoteAddress(), version, ConnectData.VERSION);
            request.reject(ConnectData.REJECT_VERSION);
            return;
        }
        if (r == null) {
            LOG.warn("rejecting connection from {}: malformed connect data", request.remoteAddress());
            request.reject(ConnectData.REJECT_MALFORMED);
            return;
        }
        if (closed) {
            request.reject(ConnectData.REJECT_SHUTTING_DOWN);
            return;
        }
        InetSocketAddress listener = request.localAddress();
        connectionListeners.keySet().removeIf(c -> !((io.weft.rdma.verbs.VerbsConnection) c).isOpen());
        try {
            if (r.kind() == ConnectData.KIND_ADMIN) {
                java.net.InetAddress peer = request.remoteAddress() == null ? null
                        : request.remoteAddress().getAddress();
                if (unauthenticated.size() > 4096) {
                    // Many source addresses: forget those with nothing pending (a counter dropped while another
                    // listener thread takes it only lets that one connection through uncounted).
                    unauthenticated.values().removeIf(c -> c.get() <= 0);
                }
                AtomicInteger pending = unauthenticated.computeIfAbsent(peer == null
                        ? java.net.InetAddress.getLoopbackAddress() : peer, a -> new AtomicInteger());
                if (pending.incrementAndGet() > config.maxUnauthenticatedPerAddress()) {
                    pending.decrementAndGet();
                    LOG.warn("rejecting admin connection from {}: {} admin connections from that address have not"
                            + " authenticated yet (weft.rdma.max-unauthenticated-per-address)",
                            request.remoteAddress(), config.maxUnauthenticatedPerAddress());
                    request.reject(ConnectData.REJECT_BUSY);
                    return;
                }
                ServerControl.AdminState admin = new ServerControl.AdminState(listener, pending);
                try {
                    admin.channel = new AdminChannel(controlPd, admin);
                    var connection = request.accept(controlPd, control.cq, AdminChannel.OPTIONS,
                            ConnectData.reply(0), admin.channel::prepare);
                    connectionListeners.put(connection, listener);
                } catch (IOException | RuntimeException e) {
                    admin.authenticatedOrGone();
                    throw e;
                }
                control.add(admin);
            } else {
                ServerSession session = sessionsByToken.get(r.token());
                if (session == null) {
                    LOG.warn("rejecting IO connection from {}: unknown session token", request.remoteAddress());
                    request.reject(ConnectData.REJECT_UNKNOWN_SESSION);
                    return;
                }
                ServerAgent agent = agents[Math.floorMod(nextAgent.getAndIncrement(), agents.length)];
                ServerIoConnection io = new ServerIoConnection(nextConnectionId.incrementAndGet(), session, agent,
                        r.pathId(), r.generation(), listener);
                int depth = session.chunkCount + 16;
                // Known to fences before the client can learn it was accepted (it may fence it at once).
                ioConnections.add(io);
                session.ioConnections.add(io);
                try {
                    var connection = request.accept(session.pd, agent.cq,
                            new ConnectionOptions(session.chunkSize, depth, depth), ConnectData.reply(0), io::prepare);
                    connectionListeners.put(connection, listener);
                } catch (IOException | RuntimeException e) {
                    ioConnections.remove(io);
                    session.ioConnections.remove(io);
                    throw e;
                }
                agent.add(io);
            }
        } catch (IOException e) {
            LOG.warn("accepting connection from {} failed: {}", request.remoteAddress(), e.toString());
        }
    }

    /**
     * Control thread: asks the agents to fence every IO connection of session {@code sessionName} (any incarnation of
     * it on this server) that path {@code pathId} opened with {@code generation}.
     *
     * @return the connections fenced; the fence holds once each of them is {@link ServerIoConnection#drained}
     */
    List<ServerIoConnection> fence(ServerSession asking, int pathId, int generation) {
        List<ServerIoConnection> out = new ArrayList<>();
        for (ServerIoConnection io : ioConnections) {
            if (io.pathId == pathId && io.generation == generation && io.session.name.equals(asking.name)
                    && io.session.clientNode.equals(asking.clientNode)) {
                io.requestFence();
                out.add(io);
            }
        }
        return out;
    }

    ServerSession findSession(String name) {
        return sessionsByName.get(name);
    }

    /** The device served under {@code name} and its grant, or null. */
    ServedDevice served(String name) {
        return devices.get(name);
    }

    /**
     * Control thread: allocates and registers the chunk pool of a new session for {@code clientNode}, within its
     * limits.
     *
     * @throws LimitException when the client node is at weft.rdma.max-sessions-per-client or the pool would take it
     *                        past weft.rdma.max-memory-per-client
     */
    ServerSession createSession(String name, String clientNode, String identity, int queueDepth,
                                int requestedMaxIo, io.weft.rdma.verbs.VerbsConnection sameDevice)
            throws IOException {
        int maxIo = requestedMaxIo;
        int chunkSize = ServerControl.chunkSizeFor(maxIo);
        long poolBytes = (long) chunkSize * queueDepth;
        if (poolBytes > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("chunk pool of " + poolBytes + " bytes is too large");
        }
        int sessions = 0;
        long held = 0;
        for (ServerSession s : sessionsByName.values()) {
            if (s.clientNode.equals(clientNode)) {
                sessions++;
                held += s.poolBytes();
            }
        }
        if (sessions >= config.maxSessionsPerClient()) {
            throw new LimitException("client node '" + clientNode + "' already holds " + sessions
                    + " sessions (weft.rdma.max-sessions-per-client = " + config.maxSessionsPerClient() + ")");
        }
        if (held + poolBytes > config.maxMemoryPerClient()) {
            throw new LimitException("client node '" + clientNode + "' holds " + held + " bytes of session pools;"
                    + " another " + poolBytes + " would pass weft.rdma.max-memory-per-client ("
                    + config.maxMemoryPerClient() + " bytes)");
        }
        ProtectionDomain pd = provider.createProtectionDomain();
        pd.bindTo(sameDevice); // with real verbs the pool's keys exist only once the domain has a device
        ByteBuffer pool = ByteBuffer.allocateDirect((int) poolBytes);
        MemoryRegion region = pd.register(pool, Access.REMOTE_WRITE);
        long token;
        do {
            token = io.weft.rdma.protocol.Capability.sessionToken(); // revealed only after the capability proof
        } while (sessionsByToken.containsKey(token));
        ServerSession session = new ServerSession(name, clientNode, identity, token, queueDepth, chunkSize, maxIo, pd,
                pool, region);
        sessionsByName.put(name, session);
        sessionsByToken.put(token, session);
        return session;
    }

    /** Control thread: the last path of a session closed. */
    void destroySession(ServerSession session) {
        sessionsByName.remove(session.name, session);
        sessionsByToken.remove(session.token, session);
        for (ServerIoConnection io : session.ioConnections) {
            io.requestFence();
        }
        session.pd.close();
        LOG.info("session '{}' closed ({} requests, {} rejected)", session.name, session.requests.get(),
                session.rejected.get());
    }

    /**
     * Closes every connection accepted on {@code listener} (admin and IO), as a link failure would. For drills and
     * tests; the clients reconnect on their own.
     *
     * @return the number of connections closed
     */
    public int dropConnections(InetSocketAddress listener) {
        int n = 0;
        for (Map.Entry<Object, InetSocketAddress> e : connectionListeners.entrySet()) {
            if (e.getValue().equals(listener)) {
                ((io.weft.rdma.verbs.VerbsConnection) e.getKey()).close();
                connectionListeners.remove(e.getKey());
                n++;
            }
        }
        return n;
    }

    /** A per-peer limit refused a session; the message names the setting. */
    static final class LimitException extends RuntimeException {
        LimitException(String message) {
            super(message);
        }
    }

    /**
     * A snapshot of one open session.
     *
     * @param devices the names of the devices open in it
     */
    public record SessionStatus(String name, List<String> devices, String clientNode, int chunks, int chunkSize,
                                int paths, int ioConnections, long requests, long rejected) {
    }

    public List<SessionStatus> sessions() {
        List<SessionStatus> out = new ArrayList<>();
        for (ServerSession s : sessionsByName.values()) {
            List<String> names = new ArrayList<>();
            for (SessionDevice d : s.openDevices()) {
                names.add(d.name());
            }
            out.add(new SessionStatus(s.name, names, s.clientNode, s.chunkCount, s.chunkSize, s.paths.size(),
                    s.ioConnections.size(), s.requests.get(), s.rejected.get()));
        }
        return out;
    }

    /** Control thread: every open session (device withdrawal walks them). */
    java.util.Collection<ServerSession> openSessions() {
        return sessionsByName.values();
    }

    public String providerName() {
        return provider.name();
    }

    @Override
    public void close() {
        closed = true;
        for (VerbsListener l : listeners) {
            l.close();
        }
        control.stop();
        for (ServerSession s : sessionsByName.values()) {
            destroySession(s);
        }
        for (ServerAgent a : agents) {
            a.close();
        }
        controlPd.close();
    }
}
