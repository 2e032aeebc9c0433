package io.weft.rdma.server;

import io.weft.rdma.protocol.DoorbellIdleStrategy;
import io.weft.rdma.verbs.CompletionHandler;
import io.weft.rdma.verbs.CompletionQueue;
import io.weft.rdma.verbs.VerbsConnection;
import io.weft.rdma.verbs.WcStatus;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.concurrent.ConcurrentLinkedQueue;
import org.agrona.MutableDirectBuffer;
import org.agrona.collections.Int2ObjectHashMap;
import org.agrona.concurrent.Agent;
import org.agrona.concurrent.AgentRunner;
import org.agrona.concurrent.MessageHandler;
import org.agrona.concurrent.UnsafeBuffer;
import org.agrona.concurrent.ringbuffer.ManyToOneRingBuffer;
import org.agrona.concurrent.ringbuffer.RingBufferDescriptor;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A storage-side IO agent: polls the completion queue of the IO connections assigned to it, runs requests against
 * the devices and posts the answers. Devices that complete on another thread hand the answer back through a ring
 * buffer, so only this thread ever posts on its connections.
 */
final class ServerAgent implements Agent, CompletionHandler, MessageHandler {
    private static final Logger LOG = LoggerFactory.getLogger(ServerAgent.class);
    private static final int COMPLETION_MESSAGE = 1;
    private static final int COMPLETION_LENGTH = 12;

    private final String name;
    final CompletionQueue cq;
    private final CompletionQueue controlCq;
    private final java.util.Set<ServerIoConnection> allConnections;
    private final ManyToOneRingBuffer completions = new ManyToOneRingBuffer(new UnsafeBuffer(
            ByteBuffer.allocateDirect((64 * 1024) + RingBufferDescriptor.TRAILER_LENGTH)));
    private final ConcurrentLinkedQueue<ServerIoConnection> arriving = new ConcurrentLinkedQueue<>();
    private final ArrayList<ServerIoConnection> active = new ArrayList<>();
    private final Int2ObjectHashMap<ServerIoConnection> byId = new Int2ObjectHashMap<>();
    private volatile Thread thread;
    /**
     * Parks on {@link #cq}. Work always rings it (requests, device completions, fences, new connections); the bound
     * on a park is a safety net, short only while requests are on the devices.
     */
    private final DoorbellIdleStrategy idle;
    private AgentRunner runner;

    /**
     * @param controlCq      woken when a fenced connection has drained (the control thread acknowledges the fence)
     * @param allConnections the server's IO connections, fenced or not; a connection leaves it once closed and drained
     */
    ServerAgent(String name, CompletionQueue cq, CompletionQueue controlCq,
                java.util.Set<ServerIoConnection> allConnections) {
        this.name = name;
        this.cq = cq;
        this.controlCq = controlCq;
        this.allConnections = allConnections;
        this.idle = new DoorbellIdleStrategy(cq, () -> completions.size() > 0 || !arriving.isEmpty(),
                () -> busy() ? DoorbellIdleStrategy.BUSY_MAX_PARK_NANOS : DoorbellIdleStrategy.IDLE_MAX_PARK_NANOS);
    }

    void start() {
        runner = new AgentRunner(idle, e -> LOG.error("storage IO agent {} failed", name, e), null, this);
        AgentRunner.startOnThread(runner, r -> {
            Thread t = new Thread(r, name);
            t.setDaemon(true);
            return t;
        });
    }

    /** Agent thread: does any connection have requests on a device or answers to send? */
    private boolean busy() {
        for (int i = 0; i < active.size(); i++) {
            ServerIoConnection c = active.get(i);
            if (c.executing > 0 || c.hasUnsent() || (c.fenceRequested && !c.drained)) {
                return true;
            }
        }
        return false;
    }

    /** Any thread: something the agent acts on changed (a fence was asked for); it runs a duty cycle soon. */
    void ring() {
        idle.ring();
    }

    void add(ServerIoConnection io) {
        arriving.add(io);
        idle.ring();
    }

    boolean onAgentThread() {
        return Thread.currentThread() == thread;
    }

    /** Hand-off for devices completing on their own threads. */
    void completeLater(int connectionId, int chunk, int status) {
        int index;
        while ((index = completions.tryClaim(COMPLETION_MESSAGE, COMPLETION_LENGTH)) < 0) {
            Thread.yield(); // bounded: at most one answer per chunk is ever outstanding
        }
        org.agrona.concurrent.AtomicBuffer b = completions.buffer();
        b.putInt(index, connectionId);
        b.putInt(index + 4, chunk);
        b.putInt(index + 8, status);
        completions.commit(index);
        idle.ring();
    }

    @Override
    public void onStart() {
        thread = Thread.currentThread();
    }

    @Override
    public int doWork() {
        int work = 0;
        ServerIoConnection io;
        while ((io = arriving.poll()) != null) {
            active.add(io);
            byId.put(io.id, io);
            work++;
        }
        work += cq.poll(this, 64);
        work += completions.read(this, 64);
        for (int i = active.size() - 1; i >= 0; i--) {
            ServerIoConnection c = active.get(i);
            work += c.stopIfFenced();
            if (c.markDrainedIfIdle()) {
                controlCq.wakeup();
                work++;
            }
            if (c.closed) {
                if (c.executing == 0) {
                    // Its answers can no longer arrive: forget it (a late device completion would find nothing).
                    active.remove(i);
                    byId.remove(c.id);
                    allConnections.remove(c);
                }
            } else if (!c.stopped && c.hasUnsent()) {
                work += c.sendUnsent();
            }
        }
        return work;
    }

    @Override
    public void onMessage(int msgTypeId, MutableDirectBuffer buffer, int index, int length) {
        ServerIoConnection io = byId.get(buffer.getInt(index));
        if (io != null) {
            io.completed(buffer.getInt(index + 4), buffer.getInt(index + 8));
        }
    }

    @Override
    public void onWriteWithImmediate(VerbsConnection connection, long wrId, int immediate, int byteLength) {
        ((ServerIoConnection) connection.attachment()).onRequest(immediate, byteLength);
    }

    @Override
    public void onReceive(VerbsConnection connection, long wrId, int byteLength) {
        LOG.warn("closing IO connection {}: SEND is not part of the IO protocol", connection.remoteAddress());
        connection.close();
    }

    @Override
    public void onError(VerbsConnection connection, int status, String reason) {
        ServerIoConnection io = (ServerIoConnection) connection.attachment();
        if (io == null) {
            return;
        }
        // Kept (in 'active') until its requests still executing on the device have finished: a fence waits for them.
        io.onClosed();
        io.session.ioConnections.remove(io);
        if (status == WcStatus.WR_FLUSH_ERROR || status == WcStatus.TRANSPORT_ERROR) {
            LOG.info("IO connection {} of session '{}' closed: {}", connection.remoteAddress(), io.session.name,
                    reason);
        } else {
            LOG.warn("IO connection {} of session '{}' failed ({}): {}", connection.remoteAddress(), io.session.name,
                    WcStatus.name(status), reason);
        }
    }

    @Override
    public String roleName() {
        return name;
    }

    void close() {
        if (runner != null) {
            idle.stop(); // a parked agent would otherwise keep the close waiting up to IDLE_MAX_PARK_NANOS
            runner.close();
        }
        cq.close();
    }
}
