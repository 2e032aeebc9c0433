package io.weft.rdma.client;

import io.weft.core.io.IoStatus;
import io.weft.core.retry.Backoff;
import io.weft.rdma.protocol.AdminChannel;
import io.weft.rdma.protocol.Capability;
import io.weft.rdma.protocol.ConnectData;
import io.weft.rdma.protocol.ControlMessage;
import io.weft.rdma.protocol.DoorbellIdleStrategy;
import io.weft.rdma.protocol.RequestHeader;
import io.weft.rdma.verbs.CompletionHandler;
import io.weft.rdma.verbs.CompletionQueue;
import io.weft.rdma.verbs.ConnectionOptions;
import io.weft.rdma.verbs.ConnectionRejectedException;
import io.weft.rdma.verbs.ConnectionSetup;
import io.weft.rdma.verbs.VerbsConnection;
import io.weft.rdma.verbs.VerbsProvider;
import java.io.IOException;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The control thread of a session: connects each path (admin connection, session open proving the session's grant
 * and checking the storage side's proof, then one IO connection per queue), heartbeats it, fails it over when an IO
 * agent reports its connection, a heartbeat goes unanswered or the operator asks, and reconnects it with the one
 * {@link Backoff} policy (doubling with jitter). It also drives the session's device protocol
 * ({@link SessionDevices}) and fences ({@link SessionFences}) on the admin channel of a connected path, since every
 * admin message arrives here.
 *
 * <p>Publishing a path to the queue agents: {@link ClientPath}'s volatile fields in the order its comment gives;
 * taking it down: state first (agents stop dispatching to it), then its connections.
 */
final class PathSupervisor {
    private static final Logger LOG = LoggerFactory.getLogger(PathSupervisor.class);

    private final RdmaSession session;
    private final VerbsProvider provider;
    private final CompletionQueue adminCq;
    private final AdminHandler adminHandler = new AdminHandler();
    private final ConnectionOptions ioOptions;
    private final Thread thread;
    /** Parks on the admin completion queue until the earliest timer of any path or a command. */
    private final DoorbellIdleStrategy idle;
    private volatile boolean commandPending;
    /** Earliest time the control loop has something to do (control thread). */
    private long wakeAt;
    private long nextGeneration;
    /** Token of the storage session the devices are open in (control thread); another token means open them again. */
    private long storageSessionToken;
    /** Largest IO the storage session granted when first opened; a reconnect must grant at least as much. */
    private volatile int grantedMaxIo;
    private volatile int storageEpoch;
    private volatile boolean everOpened;
    private final CompletableFuture<Void> firstOpen = new CompletableFuture<>();

    PathSupervisor(RdmaSession session, VerbsProvider provider) {
        this.session = session;
        this.provider = provider;
        this.adminCq = provider.createCompletionQueue("session-" + session.name + "-control");
        this.ioOptions = new ConnectionOptions(session.chunkSize, session.queueDepth + 16, session.queueDepth + 16);
        this.idle = new DoorbellIdleStrategy(adminCq, () -> commandPending, 0, 0,
                () -> Math.max(TimeUnit.MICROSECONDS.toNanos(100), wakeAt - System.nanoTime()));
        this.thread = new Thread(this::run, "weft-rdma-client-" + session.name + "-control");
        thread.setDaemon(true);
    }

    void start() {
        thread.start();
    }

    /** Any thread: a command (path, device) is waiting for the control thread. */
    void wake() {
        commandPending = true;
        idle.ring();
    }

    /** Waits up to {@code waitMs} for the first path to open the session. @return whether one did */
    boolean awaitFirstOpen(long waitMs) {
        try {
            firstOpen.get(waitMs, TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.TimeoutException | java.util.concurrent.ExecutionException e) {
            // the caller reports every path's last error
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return everOpened;
    }

    int grantedMaxIo() {
        return grantedMaxIo;
    }

    /** Says CLOSE on every connected path, takes every path down and ends the control thread. */
    void stop() {
        idle.stop();
        if (thread.isAlive()) {
            try {
                thread.join(5000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        } else {
            adminCq.close();
        }
    }

    private boolean running() {
        return !idle.stopped();
    }

    private void run() {
        while (running()) {
            try {
                commandPending = false;
                long now = System.nanoTime();
                // The loop parks until the earliest timer of any path (heartbeat, its timeout, a reconnect) or until
                // woken (answers, commands): no polling while nothing is due.
                wakeAt = now + TimeUnit.SECONDS.toNanos(1);
                for (int slot = 0; slot < RdmaSession.MAX_PATHS; slot++) {
                    ClientPath p = session.path(slot);
                    if (p != null) {
                        step(p, now);
                    }
                }
                AdminChannel via = connectedAdmin();
                session.fences.ask(via);
                session.devices.step(via);
                idle.idle(adminCq.poll(adminHandler, 32));
            } catch (RuntimeException e) {
                LOG.error("session '{}' control loop error", session.name, e);
            }
        }
        for (int slot = 0; slot < RdmaSession.MAX_PATHS; slot++) {
            ClientPath p = session.path(slot);
            if (p != null) {
                sayClose(p);
                teardown(p, PathState.DISCONNECTED);
            }
        }
        adminCq.close();
    }

    private void wakeBy(long at) {
        if (at - wakeAt < 0) {
            wakeAt = at;
        }
    }

    /** The admin channel of a connected path, or null. */
    private AdminChannel connectedAdmin() {
        for (int slot = 0; slot < RdmaSession.MAX_PATHS; slot++) {
            ClientPath p = session.path(slot);
            if (p != null && p.state == PathState.CONNECTED && p.admin != null) {
                return p.admin;
            }
        }
        return null;
    }

    private void step(ClientPath p, long now) {
        if (p.removeRequested) {
            teardown(p, PathState.REMOVED);
            session.forgetPath(p);
            LOG.info("session '{}' path {} ({}) removed", session.name, p.id, p.spec.remote());
            return;
        }
        if (p.disconnectRequested) {
            p.disconnectRequested = false;
            sayClose(p);
            teardown(p, PathState.DISCONNECTED);
            p.lastError = "disconnected by operator";
            LOG.info("session '{}' path {} ({}) disconnected by operator", session.name, p.id, p.spec.remote());
            return;
        }
        if (p.reconnectRequested) {
            p.reconnectRequested = false;
            if (p.state == PathState.CONNECTED) {
                teardown(p, PathState.RECONNECTING);
            }
            p.state = PathState.RECONNECTING;
            p.attempts = 0;
            p.nextAttemptNanos = now;
        }
        RdmaClientConfig config = session.config;
        switch (p.state) {
            case CONNECTING:
            case RECONNECTING:
                if (now - p.nextAttemptNanos >= 0) {
                    connect(p);
                }
                if (p.state != PathState.CONNECTED) {
                    wakeBy(p.nextAttemptNanos);
                } else {
                    wakeBy(p.nextHeartbeatNanos);
                }
                break;
            case CONNECTED:
                if (p.failedGeneration == p.generation) {
                    fail(p, p.lastError == null ? "IO connection failed" : p.lastError);
                } else if (now - p.lastAckNanos > config.heartbeatTimeout().toNanos()) {
                    fail(p, "no heartbeat answer for " + TimeUnit.NANOSECONDS.toMillis(now - p.lastAckNanos) + " ms");
                } else if (now - p.nextHeartbeatNanos >= 0) {
                    p.nextHeartbeatNanos = now + config.heartbeatInterval().toNanos();
                    ControlMessage m = p.admin.beginSend();
                    p.admin.send(m.encodeHeartbeat(ControlMessage.HEARTBEAT, ++p.heartbeatSequence, now));
                }
                if (p.state == PathState.CONNECTED) {
                    wakeBy(p.nextHeartbeatNanos);
                    wakeBy(p.lastAckNanos + config.heartbeatTimeout().toNanos() + 1);
                } else {
                    wakeBy(p.nextAttemptNanos);
                }
                break;
            default:
                break;
        }
    }

    /** Polls the admin queue until {@code answered}, the connection closes or the deadline passes. */
    private void pollUntil(java.util.function.BooleanSupplier answered, VerbsConnection admin, long deadline) {
        while (!answered.getAsBoolean() && admin.isOpen() && System.nanoTime() - deadline < 0) {
            if (adminCq.poll(adminHandler, 32) == 0) {
                adminCq.await(TimeUnit.MILLISECONDS.toNanos(1), () -> false);
            }
        }
    }

    private void connect(ClientPath p) {
        RdmaClientConfig config = session.config;
        int queueCount = session.queueCount;
        int queueDepth = session.queueDepth;
        p.attempts++;
        long deadline = System.nanoTime() + config.connectTimeout().toNanos();
        VerbsConnection[] io = new VerbsConnection[queueCount];
        AdminChannel admin = null;
        try {
            admin = new AdminChannel(session.pd, p);
            p.admin = admin;
            p.openResult = null;
            p.openError = null;
            p.challengeNonce = null;
            p.challengeProof = null;
            VerbsConnection ac = connectOrExplain(p, adminCq, AdminChannel.OPTIONS,
                    ConnectData.request(ConnectData.KIND_ADMIN, 0, 0, p.id), config.connectTimeout(),
                    admin::prepare);
            if (ConnectData.parseReply(ac.peerPrivateData()) != 0) {
                throw new IOException("storage refused the admin connection");
            }
            byte[] clientNonce = Capability.nonce();
            String openingDevice = session.openingDevice;
            io.weft.rdma.protocol.Grant grant = session.grant;
            ControlMessage open = admin.beginSend();
            admin.send(openingDevice != null
                    ? open.encodeOpen(queueDepth, config.maxIoSize(), p.id, session.name, openingDevice,
                            grant.clientNode(), clientNonce)
                    : open.encodeSessionOpen(queueDepth, config.maxIoSize(), p.id, session.name, grant.clientNode(),
                            Capability.identityDigest(grant.identity()), clientNonce));
            pollUntil(() -> p.challengeNonce != null || p.openError != null, ac, deadline);
            if (p.openError != null) {
                throw new IOException("storage refused the session: " + p.openError);
            }
            if (p.challengeNonce == null) {
                throw new IOException(ac.isOpen() ? "no answer to session open within "
                        + config.connectTimeout().toMillis() + " ms" : "admin connection closed during session open");
            }
            Capability.Transcript transcript = new Capability.Transcript(clientNonce, p.challengeNonce, session.name,
                    p.id, grant.clientNode(), grant.identity(), openingDevice == null ? "" : openingDevice);
            if (!Capability.matches(Capability.serverProof(grant, transcript), p.challengeProof)) {
                throw new IOException("the storage side at " + p.spec.remote() + " could not prove it holds the"
                        + (openingDevice == null ? " session grant" : " grant of device '" + openingDevice + "'")
                        + " (another node at that address, or the grant was replaced)");
            }
            ControlMessage proof = admin.beginSend();
            admin.send(proof.encodeProof(Capability.clientProof(grant, transcript)));
            pollUntil(() -> p.openResult != null || p.openError != null, ac, deadline);
            if (p.openError != null) {
                throw new IOException("storage refused the session: " + p.openError);
            }
            ClientPath.ClientSessionOpen opened = p.openResult;
            if (opened == null) {
                throw new IOException(ac.isOpen() ? "no answer to session open within "
                        + config.connectTimeout().toMillis() + " ms" : "admin connection closed during session open");
            }
            ClientPath.RemotePool pool = opened.pool();
            if (pool.chunkCount() < queueDepth || pool.chunkSize() < RequestHeader.LENGTH + pool.maxIoSize()
                    || pool.maxIoSize() < 512 || (grantedMaxIo != 0 && pool.maxIoSize() < grantedMaxIo)) {
                throw new IOException("storage granted " + pool.chunkCount() + " chunks of " + pool.chunkSize()
                        + " bytes, this session needs " + queueDepth);
            }
            long generation = ++nextGeneration;
            ClientPath.IoTag tag = new ClientPath.IoTag(p.slot, generation);
            for (int q = 0; q < queueCount; q++) {
                Duration left = Duration.ofNanos(Math.max(1_000_000, deadline - System.nanoTime()));
                io[q] = connectOrExplain(p, session.queue(q).cq, ioOptions,
                        ConnectData.request(ConnectData.KIND_IO, q, pool.token(), p.id, (int) generation), left, c -> {
                            c.attach(tag);
                            for (int i = 0; i < queueDepth + 1; i++) {
                                c.postReceive(session.localRegion, 0, 0, 0);
                            }
                        });
                if (ConnectData.parseReply(io[q].peerPrivateData()) != 0) {
                    throw new IOException("storage refused IO connection " + q);
                }
            }
            if (grantedMaxIo == 0) {
                grantedMaxIo = pool.maxIoSize();
            }
            if (pool.token() != storageSessionToken) {
                // Unpublished before this path is, so no agent posts with a device id of the old storage session.
                storageSessionToken = pool.token();
                session.devices.newStorageSession();
            }
            everOpened = true;
            firstOpen.complete(null);
            if (storageEpoch != 0 && storageEpoch != pool.epoch()) {
                LOG.warn("session '{}': storage side restarted (new epoch), session reopened on path {}",
                        session.name, p.id);
            }
            storageEpoch = pool.epoch();
            long now = System.nanoTime();
            p.io = io;
            p.pool = pool;
            p.generation = generation;
            p.lastAckNanos = now;
            p.nextHeartbeatNanos = now;
            p.lastError = null;
            p.connectRefused = false;
            if (p.everConnected) {
                p.reconnects++;
            }
            p.everConnected = true;
            p.attempts = 0;
            p.state = PathState.CONNECTED;
            LOG.info("session '{}' path {} connected to {} ({} IO connection(s), {} provider)", session.name, p.id,
                    p.spec.remote(), queueCount, provider.name());
        } catch (IOException | RuntimeException e) {
            for (VerbsConnection c : io) {
                if (c != null) {
                    c.close();
                }
            }
            if (admin != null) {
                admin.close();
            }
            p.admin = null;
            p.lastError = e.getMessage();
            // Within the connect timeout a ConnectException can only be a refusal (a SYN timeout takes minutes and a
            // timed-out connect is a SocketTimeoutException); DiSNI reports rdma_cm errors as plain IOExceptions.
            p.connectRefused = e instanceof java.net.ConnectException;
            scheduleReconnect(p, System.nanoTime());
        }
    }

    /** Connects, turning a reject reason into words (a peer of another protocol version, too many handshakes). */
    private VerbsConnection connectOrExplain(ClientPath p, CompletionQueue cq, ConnectionOptions options,
                                             byte[] privateData, Duration timeout, ConnectionSetup setup)
            throws IOException {
        try {
            return provider.connect(p.spec.remote(), p.spec.local(), session.pd, cq, options, privateData, timeout,
                    setup);
        } catch (ConnectionRejectedException e) {
            throw new IOException("storage at " + p.spec.remote() + " rejected the connection: "
                    + ConnectData.describeReject(e.reason()), e);
        }
    }

    /**
     * The next attempt after {@code reconnectInitial} doubling per failed attempt up to {@code reconnectMax}, with
     * jitter so clients that lost the same storage node do not reconnect in lock step. A path that just failed (or
     * whose first attempt failed) waits the initial delay.
     */
    private void scheduleReconnect(ClientPath p, long now) {
        if (p.attempts <= 1) {
            p.backoff.reset();
        }
        long delay = p.backoff.nextDelayNanos();
        p.nextAttemptNanos = now + delay;
        p.state = PathState.RECONNECTING;
        if (p.attempts <= 1) {
            LOG.warn("session '{}' path {} ({}) down: {}; reconnecting with backoff", session.name, p.id,
                    p.spec.remote(), p.lastError);
        } else {
            LOG.debug("session '{}' path {} attempt {} failed: {}; next in {} ms", session.name, p.id, p.attempts,
                    p.lastError, TimeUnit.NANOSECONDS.toMillis(delay));
        }
    }

    private void fail(ClientPath p, String reason) {
        teardown(p, PathState.RECONNECTING);
        p.lastError = reason;
        p.connectRefused = false; // dropped, not refused: the next attempt tells
        p.attempts = 0;
        scheduleReconnect(p, System.nanoTime());
    }

    private void sayClose(ClientPath p) {
        if (p.state == PathState.CONNECTED && p.admin != null) {
            ControlMessage m = p.admin.beginSend();
            p.admin.send(m.encodeClose());
            adminCq.poll(adminHandler, 0); // push it out before the connection goes
        }
    }

    /**
     * Stops a path: state first (so agents stop dispatching to it), then its connections. If they carried IO, the
     * storage side is asked to fence them before their requests are posted again (see {@link SessionFences}).
     */
    private void teardown(ClientPath p, PathState next) {
        boolean carriedIo = p.state == PathState.CONNECTED && p.generation >= 0 && running();
        p.state = next;
        if (carriedIo) {
            session.fences.add(p.id, p.generation);
        }
        if (p.admin != null) {
            session.fences.channelLost(p.admin);
            session.devices.channelLost(p.admin);
        }
        VerbsConnection[] io = p.io;
        if (io != null) {
            for (VerbsConnection c : io) {
                if (c != null) {
                    c.close();
                }
            }
        }
        if (p.admin != null) {
            p.admin.close();
            p.admin = null;
        }
        session.wakeQueues();
    }

    /** Every admin message of every path arrives here (control thread). */
    private final class AdminHandler implements CompletionHandler {
        @Override
        public void onReceive(VerbsConnection connection, long wrId, int byteLength) {
            AdminChannel channel = (AdminChannel) connection.attachment();
            ClientPath p = (ClientPath) channel.owner();
            ControlMessage m = channel.received(wrId, byteLength);
            if (m == null) {
                p.lastError = "malformed control message from storage";
                connection.close();
                return;
            }
            switch (m.type()) {
                case ControlMessage.OPEN_OK:
                    p.openResult = new ClientPath.ClientSessionOpen(new ClientPath.RemotePool(m.okPoolAddress(),
                            m.okPoolRkey(), m.okChunkSize(), m.okChunkCount(), m.okMaxIoSize(), m.okToken(),
                            m.okEpoch()), m.okDeviceSize(), m.okLogicalBlock(), m.okPreferredBlock(),
                            m.okCapabilities());
                    break;
                case ControlMessage.CHALLENGE:
                    p.challengeNonce = m.challengeServerNonce();
                    p.challengeProof = m.challengeServerProof();
                    break;
                case ControlMessage.OPEN_ERR:
                    p.openError = IoStatus.name(m.errStatus()) + ": " + m.errReason(byteLength);
                    break;
                case ControlMessage.FENCE_ACK:
                    session.fences.acknowledged(m.fencePathId(), m.fenceGeneration());
                    break;
                case ControlMessage.DEVICE_CHALLENGE:
                case ControlMessage.DEVICE_OK:
                case ControlMessage.DEVICE_ERR:
                case ControlMessage.DEVICE_CLOSED:
                    session.devices.onMessage(channel, m, byteLength);
                    break;
                case ControlMessage.HEARTBEAT_ACK: {
                    long now = System.nanoTime();
                    long sample = now - m.heartbeatClock();
                    if (sample >= 0 && sample < TimeUnit.SECONDS.toNanos(60)) {
                        long old = p.rttNanos;
                        p.rttNanos = old == Long.MAX_VALUE ? sample : (old * 7 + sample) / 8;
                        p.lastAckNanos = now;
                    }
                    break;
                }
                default:
                    p.lastError = "unexpected control message " + m.type() + " from storage";
                    connection.close();
                    return;
            }
            channel.repost(wrId);
        }

        @Override
        public void onWriteWithImmediate(VerbsConnection connection, long wrId, int immediate, int byteLength) {
            connection.close();
        }

        @Override
        public void onError(VerbsConnection connection, int status, String reason) {
            AdminChannel channel = (AdminChannel) connection.attachment();
            if (channel == null) {
                return;
            }
            ClientPath p = (ClientPath) channel.owner();
            if (p.admin == channel && p.state == PathState.CONNECTED && running()) {
                fail(p, "admin connection: " + reason);
            } else if (p.admin == channel) {
                p.lastError = "admin connection: " + reason;
            }
        }
    }
}
