package io.weft.rdma.server;

import io.weft.core.io.DeviceInfo;
import io.weft.core.io.IoStatus;
import io.weft.rdma.protocol.AdminChannel;
import io.weft.rdma.protocol.ControlMessage;
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
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The storage side's control thread: owns every admin connection, opens sessions, answers heartbeats and closes
 * paths whose client went silent. Control path: it may allocate and log.
 */
final class ServerControl implements Runnable, CompletionHandler {
    private static final Logger LOG = LoggerFactory.getLogger(ServerControl.class);

    private final RdmaServer server;
    final CompletionQueue cq;
    private final ConcurrentLinkedQueue<AdminState> arriving = new ConcurrentLinkedQueue<>();
    private final List<AdminState> admins = new ArrayList<>();
    private final long heartbeatTimeoutNanos;
    private final List<PendingFence> fences = new ArrayList<>();
    private volatile boolean running = true;
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

    /** One admin connection (one path of one session once OPEN arrived). */
    static final class AdminState {
        AdminChannel channel;
        ServerSession session;
        int pathId = -1;
        long lastHeardNanos = System.nanoTime();
        final InetSocketAddress listener;
        boolean closed;

        AdminState(InetSocketAddress listener) {
            this.listener = listener;
        }
    }

    ServerControl(RdmaServer server, CompletionQueue cq, long heartbeatTimeoutNanos) {
        this.server = server;
        this.cq = cq;
        this.heartbeatTimeoutNanos = heartbeatTimeoutNanos;
    }

    void start(String name) {
        thread = new Thread(this, name);
        thread.setDaemon(true);
        thread.start();
    }

    void add(AdminState admin) {
        arriving.add(admin);
        cq.wakeup();
    }

    @Override
    public void run() {
        long nextCheck = 0;
        while (running) {
            try {
                AdminState a;
                while ((a = arriving.poll()) != null) {
                    admins.add(a);
                }
                int work = cq.poll(this, 32);
                long now = System.nanoTime();
                if (!fences.isEmpty()) {
                    work += acknowledgeFences();
                }
                if (now - nextCheck >= 0) {
                    checkHeartbeats(now);
                    nextCheck = now + TimeUnit.MILLISECONDS.toNanos(100);
                }
                if (work == 0) {
                    cq.await(TimeUnit.MILLISECONDS.toNanos(50), () -> !arriving.isEmpty() || !running);
                }
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

    private void checkHeartbeats(long now) {
        for (AdminState a : admins) {
            if (!a.closed && now - a.lastHeardNanos > heartbeatTimeoutNanos) {
                LOG.warn("closing path {} of session '{}': no heartbeat for {} ms", a.pathId,
                        a.session == null ? "?" : a.session.name, TimeUnit.NANOSECONDS.toMillis(now - a.lastHeardNanos));
                a.closed = true;
                a.channel.connection().close();
            }
        }
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
        admin.lastHeardNanos = System.nanoTime();
        switch (m.type()) {
            case ControlMessage.OPEN:
                open(admin, channel, m);
                break;
            case ControlMessage.HEARTBEAT: {
                long seq = m.heartbeatSequence();
                long clock = m.heartbeatClock();
                ControlMessage ack = channel.beginSend();
                channel.send(ack.encodeHeartbeat(ControlMessage.HEARTBEAT_ACK, seq, clock));
                break;
            }
            case ControlMessage.CLOSE:
                connection.close();
                break;
            case ControlMessage.FENCE:
                if (admin.session == null) {
                    LOG.warn("closing admin connection {}: FENCE before OPEN", connection.remoteAddress());
                    connection.close();
                    return;
                }
                fences.add(new PendingFence(admin, m.fencePathId(), m.fenceGeneration(),
                        server.fence(admin.session.name, m.fencePathId(), m.fenceGeneration())));
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

    private void open(AdminState admin, AdminChannel channel, ControlMessage m) {
        String sessionName = m.openSessionName();
        String deviceName = m.openDeviceName();
        int queueDepth = m.openQueueDepth();
        int maxIo = m.openMaxIoSize();
        int pathId = m.openPathId();
        String error = null;
        int status = IoStatus.EINVAL;
        if (admin.session != null) {
            error = "session already open on this connection";
        } else if (sessionName == null || deviceName == null) {
            error = "session or device name length out of range";
        } else if (queueDepth < 1 || queueDepth > server.config().maxQueueDepth()) {
            error = "queue depth " + queueDepth + " outside 1.." + server.config().maxQueueDepth();
        } else if (maxIo < 512 || maxIo > server.config().maxIoSize()) {
            error = "max IO size " + maxIo + " outside 512.." + server.config().maxIoSize();
        }
        ServerSession session = null;
        if (error == null) {
            session = server.findSession(sessionName);
            if (session == null) {
                try {
                    session = server.createSession(sessionName, deviceName, queueDepth, maxIo, channel.connection());
                } catch (IllegalArgumentException e) {
                    error = e.getMessage();
                } catch (Exception e) {
                    error = "cannot allocate the session's chunk pool: " + e;
                    status = IoStatus.ENOMEM;
                }
            } else if (!session.deviceName.equals(deviceName)) {
                error = "session '" + sessionName + "' serves device '" + session.deviceName + "'";
                status = IoStatus.EPERM;
            }
        }
        ControlMessage reply = channel.beginSend();
        if (error != null) {
            LOG.warn("refusing OPEN from {}: {}", channel.connection().remoteAddress(), error);
            channel.send(reply.encodeOpenErr(status, error));
            return;
        }
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
        DeviceInfo info = session.device.info();
        int caps = info.capabilityBits();
        channel.send(reply.encodeOpenOk(session.chunkCount, session.chunkSize, session.maxIoSize, session.token,
                session.poolRegion.address(), session.poolRegion.rkey(), server.epoch(), info.size(),
                info.logicalBlockSize(), info.preferredBlockSize(), caps));
        LOG.info("session '{}' path {} opened from {} (device '{}', {} chunks of {} bytes)", session.name, pathId,
                channel.connection().remoteAddress(), deviceName, session.chunkCount, session.chunkSize);
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
        running = false;
        cq.wakeup();
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
