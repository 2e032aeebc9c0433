package io.weft.rdma.server;

import io.weft.core.io.DeviceInfo;
import io.weft.core.io.IoStatus;
import io.weft.rdma.protocol.AdminChannel;
import io.weft.rdma.protocol.Capability;
import io.weft.rdma.protocol.Grant;
import io.weft.rdma.protocol.ControlMessage;
import io.weft.rdma.protocol.DoorbellIdleStrategy;
import io.weft.rdma.protocol.RequestHeader;
import io.weft.rdma.verbs.CompletionHandler;
import io.weft.rdma.verbs.CompletionQueue;
import io.weft.rdma.verbs.VerbsConnection;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The storage side's control thread: owns every admin connection, authenticates session opens (OPEN, CHALLENGE,
 * PROOF; see ControlMessage), opens sessions, opens and closes devices inside them (DEVICE_OPEN, DEVICE_CHALLENGE,
 * DEVICE_PROOF, DEVICE_CLOSE), answers heartbeats and closes paths whose client went silent or never authenticated.
 * Until OPEN_OK an admin connection may send only OPEN, PROOF and CLOSE; anything else closes it. A refused device
 * open answers DEVICE_ERR and leaves the session and its other devices as they were. One thread for every session
 * and device of the node. Control path: it may allocate and log.
 */
final class ServerControl implements Runnable, CompletionHandler {
    private static final Logger LOG = LoggerFactory.getLogger(ServerControl.class);

    private final RdmaServer server;
    final CompletionQueue cq;
    private final ConcurrentLinkedQueue<AdminState> arriving = new ConcurrentLinkedQueue<>();
    private final List<AdminState> admins = new ArrayList<>();
    private final long heartbeatTimeoutNanos;
    private final long handshakeTimeoutNanos;
    private final List<PendingFence> fences = new ArrayList<>();
    /** Refused connections, closed after the poll that sent their OPEN_ERR (so the reason goes out first). */
    private final List<VerbsConnection> closing = new ArrayList<>();
    /**
     * Parks on {@link #cq} until the next deadline of an admin connection (its handshake or heartbeat timeout), at
     * most {@link DoorbellIdleStrategy#IDLE_MAX_PARK_NANOS}, or {@link #FENCE_POLL_NANOS} while a fence waits for its
     * connections to drain (nothing rings when they do). An idle storage node's control thread thus wakes only for
     * its clients' heartbeats, not 20 times a second (issue 12); {@link #stop} ends the loop through it.
     */
    private final DoorbellIdleStrategy idle;
    /** Longest park while a fence waits for its connections to drain. */
    static final long FENCE_POLL_NANOS = TimeUnit.MILLISECONDS.toNanos(50);
    /** The park the loop chose for this duty cycle (control thread only). */
    private long parkNanos;
    private Thread thread;

    /** A FENCE waiting for its connections to drain before it is acknowledged on the admin connection that asked. */
    private record PendingFence(AdminState admin, int pathId, int generation, List<ServerIoConnection> targets) {
        boolean drained() {
            for (ServerIoConnection io : targets) {
                if (!io.drained) {
                    return false;
                }
            }
            return true;
        }
    }

    /**
     * An OPEN answered with a CHALLENGE, waiting for the client's PROOF.
     *
     * @param deviceName the device whose grant the session is opened with, or null for the node's session grant
     */
    private record PendingOpen(String sessionName, String deviceName, String clientNode, int queueDepth, int maxIo,
                               int pathId, Grant grant, byte[] expectedProof) {
    }

    /** A DEVICE_OPEN answered with a DEVICE_CHALLENGE, waiting for the client's DEVICE_PROOF. */
    private record PendingDevice(String deviceName, Grant grant, byte[] expectedProof) {
    }

    /** Device handshakes one admin connection may have waiting for their proof at once. */
    static final int MAX_PENDING_DEVICES = 8;
    /** DEVICE_CLOSED notices sent after each heartbeat answer: bounded so the client's receive slots never run out. */
    static final int NOTICES_PER_HEARTBEAT = 4;
    /**
     * Devices the storage node stopped serving (RdmaServer.removeDevice, any thread); the control thread closes them.
     */
    private final ConcurrentLinkedQueue<String> withdrawn = new ConcurrentLinkedQueue<>();

    /** One admin connection (one path of one session once it authenticated: {@code session != null}). */
    static final class AdminState {
        AdminChannel channel;
        ServerSession session;
        int pathId = -1;
        final long acceptedNanos = System.nanoTime();
        long lastHeardNanos = acceptedNanos;
        final InetSocketAddress listener;
        boolean closed;
        /** Set once the OPEN was answered with a CHALLENGE; one OPEN per connection. */
        PendingOpen pending;
        /** Device handshakes waiting for DEVICE_PROOF, by the client's request id. */
        final java.util.Map<Integer, PendingDevice> pendingDevices = new java.util.HashMap<>();
        /** The remote address's count of unauthenticated admin connections; released once, by either outcome. */
        private final AtomicInteger unauthenticatedOfPeer;
        private final AtomicBoolean counted = new AtomicBoolean(true);

        AdminState(InetSocketAddress listener, AtomicInteger unauthenticatedOfPeer) {
            this.listener = listener;
            this.unauthenticatedOfPeer = unauthenticatedOfPeer;
        }

        /** The connection authenticated or went away: it no longer counts against its address. */
        void authenticatedOrGone() {
            if (counted.compareAndSet(true, false)) {
                unauthenticatedOfPeer.decrementAndGet();
            }
        }
    }

    ServerControl(RdmaServer server, CompletionQueue cq, long heartbeatTimeoutNanos, long handshakeTimeoutNanos) {
        this.server = server;
        this.cq = cq;
        this.idle = new DoorbellIdleStrategy(cq, () -> !arriving.isEmpty() || !withdrawn.isEmpty(), 0, 0,
                () -> parkNanos);
        this.heartbeatTimeoutNanos = heartbeatTimeoutNanos;
        this.handshakeTimeoutNanos = handshakeTimeoutNanos;
    }

    void start(String name) {
        thread = new Thread(this, name);
        thread.setDaemon(true);
        thread.start();
    }

    void add(AdminState admin) {
        arriving.add(admin);
        idle.ring();
    }

    /** Any thread: the storage node stopped serving {@code deviceName}; every session holding it closes it. */
    void withdraw(String deviceName) {
        withdrawn.add(deviceName);
        idle.ring();
    }

    private int closeWithdrawn() {
        int work = 0;
        String name;
        while ((name = withdrawn.poll()) != null) {
            for (ServerSession session : server.openSessions()) {
                SessionDevice d;
                while ((d = session.deviceNamed(name)) != null) {
                    session.close(d.id());
                    session.closedNotices.add(d.id());
                    LOG.info("session '{}': device '{}' (id {}) closed, no longer served", session.name, name,
                            d.id());
                }
            }
            work++;
        }
        return work;
    }

    @Override
    public void run() {
        while (!idle.stopped()) {
            try {
                AdminState a;
                while ((a = arriving.poll()) != null) {
                    admins.add(a);
                }
                int work = closeWithdrawn();
                work += cq.poll(this, 32);
                if (!closing.isEmpty()) {
                    for (VerbsConnection c : closing) {
                        c.close();
                    }
                    closing.clear();
                }
                long now = System.nanoTime();
                if (!fences.isEmpty()) {
                    work += acknowledgeFences();
                }
                // Every duty cycle: a heartbeat or an authentication just handled moves a deadline (it is cheap:
                // one pass over the node's admin connections, and the loop runs only when something arrived).
                long untilDeadline = checkHeartbeats(now) - now;
                parkNanos = parkNanos(untilDeadline, !fences.isEmpty());
                idle.idle(work);
            } catch (RuntimeException e) {
                LOG.error("storage control loop error", e);
            }
        }
        for (AdminState a : admins) {
            a.channel.close();
        }
        cq.close();
    }

    /** Answers every fence whose connections have drained. @return fences answered or dropped */
    private int acknowledgeFences() {
        int done = 0;
        for (Iterator<PendingFence> it = fences.iterator(); it.hasNext(); ) {
            PendingFence f = it.next();
            if (f.admin.closed) {
                it.remove(); // the client asks again on another path
                done++;
            } else if (f.drained()) {
                ControlMessage ack = f.admin.channel.beginSend();
                f.admin.channel.send(ack.encodeFence(ControlMessage.FENCE_ACK, f.pathId, f.generation));
                it.remove();
                done++;
            }
        }
        return done;
    }

    /**
     * The longest park before the loop must look again: until the earliest deadline ({@code untilDeadlineNanos}
     * from now), shorter while a fence is pending, never longer than the idle safety net, never 0 (a deadline due
     * now was handled by the check that computed it).
     */
    static long parkNanos(long untilDeadlineNanos, boolean fencePending) {
        long park = Math.min(untilDeadlineNanos, DoorbellIdleStrategy.IDLE_MAX_PARK_NANOS);
        if (fencePending) {
            park = Math.min(park, FENCE_POLL_NANOS);
        }
        return Math.max(park, TimeUnit.MILLISECONDS.toNanos(1));
    }

    /**
     * Closes every admin connection past its deadline: not authenticated within the handshake timeout, or silent
     * for the heartbeat timeout.
     *
     * @return the earliest deadline (System.nanoTime) of the connections left open, or {@code now} plus the idle
     *         safety net when there is none; a deadline is checked strictly, so it is given 1 ms late
     */
    private long checkHeartbeats(long now) {
        long next = now + DoorbellIdleStrategy.IDLE_MAX_PARK_NANOS;
        long margin = TimeUnit.MILLISECONDS.toNanos(1);
        for (AdminState a : admins) {
            if (!a.closed && a.session == null && now - a.acceptedNanos > handshakeTimeoutNanos) {
                LOG.warn("closing admin connection {}: not authenticated within {} ms (weft.rdma.handshake-timeout)",
                        a.channel.connection().remoteAddress(), TimeUnit.NANOSECONDS.toMillis(handshakeTimeoutNanos));
                a.closed = true;
                a.authenticatedOrGone();
                a.channel.connection().close();
            } else if (!a.closed && now - a.lastHeardNanos > heartbeatTimeoutNanos) {
                LOG.warn("closing path {} of session '{}': no heartbeat for {} ms", a.pathId,
                        a.session == null ? "?" : a.session.name,
                        TimeUnit.NANOSECONDS.toMillis(now - a.lastHeardNanos));
                a.closed = true;
                a.channel.connection().close();
            } else if (!a.closed) {
                long deadline = a.lastHeardNanos + heartbeatTimeoutNanos;
                if (a.session == null && a.acceptedNanos + handshakeTimeoutNanos - deadline < 0) {
                    deadline = a.acceptedNanos + handshakeTimeoutNanos;
                }
                if (deadline + margin - next < 0) {
                    next = deadline + margin;
                }
            }
        }
        return next;
    }

    @Override
    public void onReceive(VerbsConnection connection, long wrId, int byteLength) {
        AdminChannel channel = (AdminChannel) connection.attachment();
        AdminState admin = (AdminState) channel.owner();
        ControlMessage m = channel.received(wrId, byteLength);
        if (m == null) {
            LOG.warn("closing admin connection {}: malformed control message ({} bytes)",
                    connection.remoteAddress(), byteLength);
            connection.close();
            return;
        }
        if (admin.closed) {
            return; // refused or timed out: nothing it says counts any more
        }
        admin.lastHeardNanos = System.nanoTime();
        if (admin.session != null) {
            admin.session.lastHeardNanos = admin.lastHeardNanos;
        }
        int type = m.type();
        if (admin.session == null && type != ControlMessage.OPEN && type != ControlMessage.PROOF
                && type != ControlMessage.CLOSE) {
            LOG.warn("closing admin connection {}: control message type {} before the session open was"
                    + " authenticated", connection.remoteAddress(), type);
            connection.close();
            return;
        }
        switch (type) {
            case ControlMessage.OPEN:
                if (!challenge(admin, channel, m)) {
                    return;
                }
                break;
            case ControlMessage.PROOF:
                if (!proven(admin, channel, m)) {
                    return;
                }
                break;
            case ControlMessage.HEARTBEAT: {
                long seq = m.heartbeatSequence();
                long clock = m.heartbeatClock();
                ControlMessage ack = channel.beginSend();
                channel.send(ack.encodeHeartbeat(ControlMessage.HEARTBEAT_ACK, seq, clock));
                for (int i = 0; i < NOTICES_PER_HEARTBEAT && !admin.session.closedNotices.isEmpty(); i++) {
                    ControlMessage notice = channel.beginSend();
                    channel.send(notice.encodeDeviceClose(ControlMessage.DEVICE_CLOSED,
                            admin.session.closedNotices.poll(), IoStatus.ESHUTDOWN));
                }
                break;
            }
            case ControlMessage.DEVICE_OPEN:
                deviceChallenge(admin, channel, m);
                break;
            case ControlMessage.DEVICE_PROOF:
                deviceProven(admin, channel, m);
                break;
            case ControlMessage.DEVICE_CLOSE: {
                int id = m.deviceCloseId();
                SessionDevice closed = admin.session.close(id);
                if (closed != null) {
                    LOG.info("session '{}': device '{}' (id {}) closed by the client", admin.session.name,
                            closed.name(), id);
                }
                ControlMessage reply = channel.beginSend();
                channel.send(reply.encodeDeviceClose(ControlMessage.DEVICE_CLOSED, id,
                        closed != null ? IoStatus.OK : IoStatus.EINVAL));
                break;
            }
            case ControlMessage.CLOSE:
                connection.close();
                break;
            case ControlMessage.FENCE:
                // Authenticated (checked above): the fence reaches only this session's own connections.
                fences.add(new PendingFence(admin, m.fencePathId(), m.fenceGeneration(),
                        server.fence(admin.session, m.fencePathId(), m.fenceGeneration())));
                acknowledgeFences(); // nothing to wait for when nothing matched
                break;
            default:
                LOG.warn("closing admin connection {}: unexpected control message type {}",
                        connection.remoteAddress(), m.type());
                connection.close();
                return;
        }
        channel.repost(wrId);
    }

    /**
     * OPEN: checks the request and that {@code clientNode} holds the grant of the device, then answers a CHALLENGE
     * (fresh server nonce, server proof) and remembers what the PROOF must be.
     *
     * @return false when the connection was closed (the receive slot is not reposted)
     */
    private boolean challenge(AdminState admin, AdminChannel channel, ControlMessage m) {
        String sessionName = m.openSessionName();
        boolean bySessionGrant = m.openBySessionGrant();
        String deviceName = bySessionGrant ? "" : m.openDeviceName();
        String clientNode = m.openClientNode();
        byte[] clientNonce = m.openClientNonce();
        int queueDepth = m.openQueueDepth();
        int maxIo = m.openMaxIoSize();
        int pathId = m.openPathId();
        String error = null;
        int status = IoStatus.EINVAL;
        ServedDevice served = null;
        Grant sessionGrant = null;
        if (admin.session != null || admin.pending != null) {
            error = "OPEN already sent on this connection";
        } else if (sessionName == null || deviceName == null || clientNode == null) {
            error = "session, device or client node name length out of range";
        } else if (queueDepth < 1 || queueDepth > server.config().maxQueueDepth()) {
            error = "queue depth " + queueDepth + " outside 1.." + server.config().maxQueueDepth();
        } else if (maxIo < 512 || maxIo > server.config().maxIoSize()) {
            error = "max IO size " + maxIo + " outside 512.." + server.config().maxIoSize();
        } else if (bySessionGrant) {
            sessionGrant = server.sessionGrantFor(clientNode, m.openIdentityDigest());
            if (sessionGrant == null) {
                // No device is served to that node incarnation: nothing a session could open.
                error = "client node '" + clientNode + "' holds no grant on this storage node";
                status = IoStatus.EPERM;
            }
        } else {
            served = server.served(deviceName);
            if (served == null || !served.grant().clientNode().equals(clientNode)) {
                // One answer for "no such device" and "not yours": a stranger learns nothing about what is served.
                error = "client node '" + clientNode + "' holds no grant for device '" + deviceName + "'";
                status = IoStatus.EPERM;
            }
        }
        if (error != null) {
            refuse(admin, channel, status, error);
            return false;
        }
        Grant grant = bySessionGrant ? sessionGrant : served.grant();
        byte[] serverNonce = Capability.nonce();
        Capability.Transcript t = new Capability.Transcript(clientNonce, serverNonce, sessionName, pathId,
                clientNode, grant.identity(), deviceName);
        admin.pending = new PendingOpen(sessionName, bySessionGrant ? null : deviceName, clientNode, queueDepth,
                maxIo, pathId, grant, Capability.clientProof(grant, t));
        ControlMessage reply = channel.beginSend();
        channel.send(reply.encodeChallenge(serverNonce, Capability.serverProof(grant, t)));
        return true;
    }

    /**
     * Answers OPEN_ERR and closes the connection after this poll, once the answer is flushed (one try per
     * connection: a refused connection never gets a second CHALLENGE).
     */
    private void refuse(AdminState admin, AdminChannel channel, int status, String error) {
        LOG.warn("refusing OPEN from {}: {}", channel.connection().remoteAddress(), error);
        ControlMessage reply = channel.beginSend();
        channel.send(reply.encodeOpenErr(status, error));
        admin.closed = true;
        admin.pending = null;
        admin.authenticatedOrGone(); // refused: it no longer counts against its address, whenever its close lands
        closing.add(channel.connection());
    }

    /**
     * PROOF: the client proved the capability for exactly the OPEN it sent under this connection's nonces; the
     * session is opened or joined (only by the node it belongs to) and OPEN_OK reveals its token and pool key.
     *
     * @return false when the connection was closed
     */
    private boolean proven(AdminState admin, AdminChannel channel, ControlMessage m) {
        PendingOpen p = admin.pending;
        if (p == null || admin.session != null) {
            refuse(admin, channel, IoStatus.EINVAL, "PROOF without a CHALLENGE");
            return false;
        }
        admin.pending = null;
        String what = p.deviceName() == null ? "the session grant" : "device '" + p.deviceName() + "'";
        if (!Capability.matches(p.expectedProof(), m.proofClientProof())) {
            refuse(admin, channel, IoStatus.EPERM, "capability proof for " + what + " from client node '"
                    + p.clientNode() + "' does not match");
            return false;
        }
        ServedDevice served = p.deviceName() == null ? null : server.served(p.deviceName());
        if (p.deviceName() != null && (served == null || !served.grant().equals(p.grant()))) {
            refuse(admin, channel, IoStatus.EPERM, "the grant of device '" + p.deviceName() + "' was withdrawn");
            return false;
        }
        String error = null;
        int status = IoStatus.EINVAL;
        ServerSession session = server.findSession(p.sessionName());
        if (session == null) {
            try {
                session = server.createSession(p.sessionName(), p.clientNode(), p.grant().identity(), p.queueDepth(),
                        p.maxIo(), channel.connection());
            } catch (RdmaServer.LimitException e) {
                error = e.getMessage();
                status = IoStatus.ENOMEM;
            } catch (IllegalArgumentException e) {
                error = e.getMessage();
            } catch (Exception e) {
                error = "cannot allocate the session's chunk pool: " + e;
                status = IoStatus.ENOMEM;
            }
        } else if (!session.clientNode.equals(p.clientNode()) || !session.identity.equals(p.grant().identity())) {
            // A session name is not a secret (it is printed by the management API); joining needs the owner's proof.
            error = "session '" + p.sessionName() + "' belongs to another client or incarnation";
            status = IoStatus.EPERM;
        }
        if (error != null) {
            refuse(admin, channel, status, error);
            return false;
        }
        admin.authenticatedOrGone();
        int pathId = p.pathId();
        AdminState previous = session.paths.put(pathId, admin);
        if (previous != null && previous != admin) {
            // The client reconnected this path before we noticed the old one die: fence the old IO connections
            // before answering, so none of their buffered requests can run after the client's retries.
            previous.closed = true;
            previous.channel.connection().close();
            fencePath(session, pathId);
        }
        admin.session = session;
        admin.pathId = pathId;
        // Device fields: those of the device the session was opened with, zero for a session grant (the client
        // learns each device's geometry in its DEVICE_OK).
        DeviceInfo info = served == null ? null : served.device().info();
        ControlMessage reply = channel.beginSend();
        channel.send(reply.encodeOpenOk(session.chunkCount, session.chunkSize, session.maxIoSize, session.token,
                session.poolRegion.address(), session.poolRegion.rkey(), server.epoch(),
                info == null ? 0 : info.size(), info == null ? 0 : info.logicalBlockSize(),
                info == null ? 0 : info.preferredBlockSize(), info == null ? 0 : info.capabilityBits()));
        LOG.info("session '{}' path {} opened by client node '{}' from {} ({}, {} chunks of {} bytes)",
                session.name, pathId, p.clientNode(), channel.connection().remoteAddress(), what,
                session.chunkCount, session.chunkSize);
        return true;
    }

    /**
     * DEVICE_OPEN on an authenticated admin connection: the device must be served to this session's client node and
     * incarnation; then a DEVICE_CHALLENGE proves the storage side holds its mapping capability and asks the client
     * to prove it too. A refusal is a DEVICE_ERR; the session is not touched.
     */
    private void deviceChallenge(AdminState admin, AdminChannel channel, ControlMessage m) {
        int requestId = m.deviceRequestId();
        String deviceName = m.deviceOpenName();
        byte[] clientNonce = m.deviceOpenClientNonce();
        ServerSession session = admin.session;
        if (deviceName == null) {
            deviceRefused(channel, requestId, IoStatus.EINVAL, "device name length out of range");
            return;
        }
        if (admin.pendingDevices.size() >= MAX_PENDING_DEVICES || admin.pendingDevices.containsKey(requestId)) {
            deviceRefused(channel, requestId, IoStatus.EINVAL, "more than " + MAX_PENDING_DEVICES
                    + " device opens waiting for their proof, or a request id in use");
            return;
        }
        ServedDevice served = server.served(deviceName);
        if (served == null || !served.grant().clientNode().equals(session.clientNode)
                || !served.grant().identity().equals(session.identity)) {
            // One answer for "no such device" and "not granted to you": nothing is learnt about what is served.
            deviceRefused(channel, requestId, IoStatus.EPERM, "client node '" + session.clientNode
                    + "' holds no grant for device '" + deviceName + "'");
            return;
        }
        Grant grant = served.grant();
        byte[] serverNonce = Capability.nonce();
        Capability.Transcript t = new Capability.Transcript(clientNonce, serverNonce, session.name, requestId,
                session.clientNode, session.identity, deviceName);
        admin.pendingDevices.put(requestId, new PendingDevice(deviceName, grant, Capability.deviceClientProof(grant,
                t)));
        ControlMessage reply = channel.beginSend();
        channel.send(reply.encodeDeviceChallenge(requestId, serverNonce, Capability.deviceServerProof(grant, t)));
    }

    /** DEVICE_PROOF: one try per DEVICE_OPEN; a match opens the device in the session and answers its id. */
    private void deviceProven(AdminState admin, AdminChannel channel, ControlMessage m) {
        int requestId = m.deviceRequestId();
        PendingDevice p = admin.pendingDevices.remove(requestId);
        ServerSession session = admin.session;
        if (p == null) {
            deviceRefused(channel, requestId, IoStatus.EINVAL, "DEVICE_PROOF without a DEVICE_CHALLENGE");
            return;
        }
        if (!Capability.matches(p.expectedProof(), m.proofClientProof())) {
            deviceRefused(channel, requestId, IoStatus.EPERM, "capability proof for device '" + p.deviceName()
                    + "' from client node '" + session.clientNode + "' does not match");
            return;
        }
        ServedDevice served = server.served(p.deviceName());
        if (served == null || !served.grant().equals(p.grant())) {
            deviceRefused(channel, requestId, IoStatus.EPERM, "the grant of device '" + p.deviceName()
                    + "' was withdrawn");
            return;
        }
        // Always a new id, even for a name already open here: a DEVICE_CLOSE of an earlier open of it (a channel
        // being replaced) then never closes this one.
        SessionDevice open = session.open(p.deviceName(), served.device(), served.grant());
        if (open == null) {
            deviceRefused(channel, requestId, IoStatus.ENOMEM, "session '" + session.name + "' already holds "
                    + ServerSession.MAX_DEVICES + " devices");
            return;
        }
        DeviceInfo info = served.device().info();
        ControlMessage reply = channel.beginSend();
        channel.send(reply.encodeDeviceOk(requestId, open.id(), Math.min(session.maxIoSize, info.maxIoSize()),
                info.size(), info.logicalBlockSize(), info.preferredBlockSize(), info.capabilityBits()));
        LOG.info("session '{}': device '{}' opened as id {}", session.name, p.deviceName(), open.id());
    }

    private static void deviceRefused(AdminChannel channel, int requestId, int status, String error) {
        LOG.warn("refusing DEVICE_OPEN from {}: {}", channel.connection().remoteAddress(), error);
        ControlMessage reply = channel.beginSend();
        channel.send(reply.encodeDeviceErr(requestId, status, error));
    }

    @Override
    public void onWriteWithImmediate(VerbsConnection connection, long wrId, int immediate, int byteLength) {
        LOG.warn("closing admin connection {}: RDMA writes are not part of the control protocol",
                connection.remoteAddress());
        connection.close();
    }

    @Override
    public void onError(VerbsConnection connection, int status, String reason) {
        AdminChannel channel = (AdminChannel) connection.attachment();
        if (channel == null) {
            return;
        }
        AdminState admin = (AdminState) channel.owner();
        admin.closed = true;
        admin.authenticatedOrGone();
        admins.remove(admin);
        channel.close();
        ServerSession session = admin.session;
        if (session == null) {
            return;
        }
        LOG.info("session '{}' path {} closed: {}", session.name, admin.pathId, reason);
        if (session.paths.get(admin.pathId) != admin) {
            return; // the path has already reconnected on a newer admin connection
        }
        session.paths.remove(admin.pathId);
        fencePath(session, admin.pathId);
        if (session.paths.isEmpty()) {
            server.destroySession(session);
        }
    }

    private static void fencePath(ServerSession session, int pathId) {
        for (Iterator<ServerIoConnection> it = session.ioConnections.iterator(); it.hasNext(); ) {
            ServerIoConnection io = it.next();
            if (io.pathId == pathId) {
                io.requestFence();
            }
        }
    }

    void stop() {
        idle.stop();
        if (thread != null) {
            try {
                thread.join(5000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    static int chunkSizeFor(int maxIo) {
        int raw = RequestHeader.LENGTH + maxIo;
        return (raw + 63) & ~63;
    }
}
