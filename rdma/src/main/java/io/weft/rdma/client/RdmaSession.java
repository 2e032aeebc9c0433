package io.weft.rdma.client;

import io.weft.core.io.DeviceInfo;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoRequests;
import io.weft.core.io.IoStatus;
import io.weft.core.retry.Backoff;
import io.weft.rdma.protocol.Grant;
import io.weft.rdma.protocol.RequestHeader;
import io.weft.rdma.verbs.Access;
import io.weft.rdma.verbs.MemoryRegion;
import io.weft.rdma.verbs.ProtectionDomain;
import io.weft.rdma.verbs.VerbsProvider;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReferenceArray;
import java.util.concurrent.atomic.LongAdder;

/**
 * The client side of one session with a storage node, shared by every device this client opens there: 1..N paths,
 * each an admin connection (session open, device opens, heartbeats measuring RTT) plus one IO connection per queue.
 * Owns the permits (= storage chunk indices), a local pool of the same shape registered once, and the parts that do
 * the work — all per session, none per device:
 * <ul>
 *   <li>{@link ClientQueue}: the queue agents that post requests and complete them (the data path);</li>
 *   <li>{@link RequestTable}: the request slots, one per permit;</li>
 *   <li>{@link PathSupervisor}: the control thread that connects, heartbeats, fails paths over and reconnects them
 *       (the one {@code Backoff} policy, with jitter);</li>
 *   <li>{@link SessionDevices}: the devices opened inside the session and their open/close protocol;</li>
 *   <li>{@link SessionFences}: what keeps a request from being posted again while a failed connection may still
 *       execute it.</li>
 * </ul>
 * This class is the entry: open, open and close devices, submit and cancel, path commands, stats, close.
 *
 * <p>Every path's admin connection proves the session's {@link Grant} (challenge-response, see ControlMessage) before
 * the storage side reveals the session's token and pool key, and checks the storage side's proof in turn; each device
 * is then opened inside the session with its own mapping grant (DEVICE_OPEN/CHALLENGE/PROOF) and gets an id its
 * requests carry. When a reconnect lands on a new storage session (storage restart, or every path was lost), the
 * control thread opens every device again before its requests move.
 *
 * <pre>
 *   RdmaSession s = RdmaSession.open(provider, "client-a", sessionGrant,
 *           List.of(PathSpec.to(addr1), PathSpec.to(addr2)), RdmaClientConfig.DEFAULTS);
 *   RdmaBlockDevice vol0 = s.openDevice("vol0", grantOfVol0);
 *   RdmaBlockDevice vol1 = s.openDevice("vol1", grantOfVol1);
 * </pre>
 */
public final class RdmaSession implements AutoCloseable {
    /** Most paths one session can have. */
    public static final int MAX_PATHS = 8;

    final String name;
    /** The device whose grant opens the session (single-device sessions), or null for a session grant. */
    final String openingDevice;
    final Grant grant;
    final RdmaClientConfig config;
    final int queueDepth;
    final int queueCount;
    final int chunkSize;
    final ProtectionDomain pd;
    final ByteBuffer localPool;
    final MemoryRegion localRegion;
    final PermitPool permits;
    /** Request slots, indexed by permit (see its comment for who owns a slot when). */
    final RequestTable requests;
    final SessionFences fences;
    final SessionDevices devices;
    private final ClientQueue[] queues;
    private final PathSupervisor supervisor;
    private final AtomicReferenceArray<ClientPath> slots = new AtomicReferenceArray<>(MAX_PATHS);
    private final AtomicInteger nextPathId = new AtomicInteger();
    /** The device of a single-device session (see the six-argument open), or null. */
    private volatile RdmaBlockDevice device;
    private volatile boolean closed;

    final LongAdder staleResponses = new LongAdder();
    final LongAdder malformedResponses = new LongAdder();
    /** Answers that arrived for requests whose caller was already completed (cancel, io-timeout): dropped. */
    final LongAdder lateResponses = new LongAdder();

    private RdmaSession(VerbsProvider provider, String name, String openingDevice, Grant grant,
                        RdmaClientConfig config) throws IOException {
        this.name = name;
        this.openingDevice = openingDevice;
        this.grant = grant;
        this.config = config;
        this.queueDepth = config.queueDepth();
        this.queueCount = config.queuesPerPath();
        this.chunkSize = (RequestHeader.LENGTH + config.maxIoSize() + 63) & ~63;
        long poolBytes = (long) chunkSize * queueDepth;
        if (poolBytes > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("queueDepth x maxIoSize too large: " + poolBytes);
        }
        this.pd = provider.createProtectionDomain();
        this.localPool = ByteBuffer.allocateDirect((int) poolBytes);
        this.localRegion = pd.register(localPool, Access.REMOTE_WRITE);
        this.permits = new PermitPool(queueDepth);
        this.requests = new RequestTable(queueDepth);
        this.fences = new SessionFences(this::wakeQueues);
        this.devices = new SessionDevices(this);
        this.queues = new ClientQueue[queueCount];
        for (int q = 0; q < queueCount; q++) {
            queues[q] = new ClientQueue(this, q, provider.createCompletionQueue("session-" + name + "-q" + q),
                    config.policy());
        }
        this.supervisor = new PathSupervisor(this, provider);
    }

    /**
     * Opens a single-device session: the session is authenticated with the device's own grant, the device is opened
     * in it, and closing {@link #device()} closes the session. For a client with one device (tests, benchmarks); a
     * node with many devices on one storage node opens one session with its session grant and
     * {@link #openDevice} each.
     *
     * @param grant the storage node's grant of {@code deviceName} to this client node (from the control plane)
     */
    public static RdmaSession open(VerbsProvider provider, String sessionName, String deviceName, Grant grant,
                                   List<PathSpec> paths, RdmaClientConfig config) throws IOException {
        RdmaSession s = start(provider, sessionName, deviceName, grant, paths, config);
        try {
            s.device = s.openDevice(deviceName, grant, true);
        } catch (IOException | RuntimeException e) {
            s.close();
            throw e;
        }
        return s;
    }

    /**
     * Opens a session authenticated by this client node's session grant and waits until at least one path is
     * connected (or every path failed its first attempt within the connect timeout; then this throws). Devices are
     * opened in it with {@link #openDevice}.
     *
     * @param sessionGrant the storage node's session grant for this client node (from the control plane)
     */
    public static RdmaSession open(VerbsProvider provider, String sessionName, Grant sessionGrant,
                                   List<PathSpec> paths, RdmaClientConfig config) throws IOException {
        return start(provider, sessionName, null, sessionGrant, paths, config);
    }

    private static RdmaSession start(VerbsProvider provider, String sessionName, String openingDevice, Grant grant,
                                     List<PathSpec> paths, RdmaClientConfig config) throws IOException {
        if (paths.isEmpty() || paths.size() > MAX_PATHS) {
            throw new IllegalArgumentException("a session needs 1.." + MAX_PATHS + " paths");
        }
        RdmaSession s = new RdmaSession(provider, sessionName, openingDevice, grant, config);
        for (PathSpec p : paths) {
            s.addPath(p);
        }
        for (ClientQueue q : s.queues) {
            q.start();
        }
        s.supervisor.start();
        long waitMs = config.connectTimeout().toMillis() * (paths.size() + 1) + 1000;
        if (!s.supervisor.awaitFirstOpen(waitMs)) {
            StringBuilder why = new StringBuilder();
            for (PathStatus st : s.paths()) {
                why.append(' ').append(st.remote()).append(": ").append(st.lastError()).append(';');
            }
            s.close();
            throw new IOException("session '" + sessionName + "' could not open "
                    + (openingDevice == null ? "" : "device '" + openingDevice + "' ") + "on any path:" + why);
        }
        return s;
    }

    public String name() {
        return name;
    }

    /** The device of a single-device session, or null for a session opened with a session grant. */
    public RdmaBlockDevice device() {
        return device;
    }

    /**
     * Opens {@code deviceName} inside this session, proving {@code mappingGrant} (its capability) to the storage side,
     * and waits for its id and geometry. A refusal fails this device only; the session and its other devices go on.
     *
     * @throws IOException when the storage side refuses it or does not answer within the connect budget
     */
    public RdmaBlockDevice openDevice(String deviceName, Grant mappingGrant) throws IOException {
        return openDevice(deviceName, mappingGrant, false);
    }

    private RdmaBlockDevice openDevice(String deviceName, Grant mappingGrant, boolean ownsSession)
            throws IOException {
        if (closed) {
            throw new IOException("session '" + name + "' is closed");
        }
        RdmaBlockDevice d = devices.register(deviceName, mappingGrant, ownsSession);
        supervisor.wake();
        long waitMs = config.connectTimeout().toMillis() * (MAX_PATHS + 1) + 1000;
        try {
            d.opened.get(waitMs, TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.ExecutionException e) {
            closeDevice(d);
            throw new IOException("session '" + name + "' could not open device '" + deviceName + "': "
                    + e.getCause().getMessage(), e.getCause());
        } catch (java.util.concurrent.TimeoutException e) {
            closeDevice(d);
            throw new IOException("session '" + name + "' could not open device '" + deviceName + "' within "
                    + waitMs + " ms (no connected path, or no answer)");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            closeDevice(d);
            throw new IOException("interrupted while opening device '" + deviceName + "'");
        }
        return d;
    }

    /**
     * Closes one device: new requests complete with ESHUTDOWN, held ones at once with ESHUTDOWN (a posted one's
     * permit stays reserved until its answer or fence), and the storage side is told (DEVICE_CLOSE). The session and
     * its other devices are not disturbed.
     */
    void closeDevice(RdmaBlockDevice d) {
        if (d.closed) {
            return;
        }
        d.closed = true;
        for (int permit = 0; permit < queueDepth; permit++) {
            if (requests.isLiveFor(permit, d)) {
                queues[permit % queueCount].enqueueCancel(permit, requests.use(permit), IoStatus.ESHUTDOWN);
            }
        }
        devices.close(d);
        supervisor.wake();
    }

    /** Devices open (or being opened) in this session. */
    public List<RdmaBlockDevice> devices() {
        return devices.list();
    }

    ClientPath path(int slot) {
        return slots.get(slot);
    }

    ClientQueue queue(int index) {
        return queues[index];
    }

    /** Control thread: a removed path leaves its slot. */
    void forgetPath(ClientPath p) {
        slots.compareAndSet(p.slot, p, null);
    }

    /** Largest IO the storage session granted when first opened, or 0 before. */
    int grantedMaxIo() {
        return supervisor.grantedMaxIo();
    }

    /** Rings every queue agent's doorbell: a path, a device or a fence changed. */
    void wakeQueues() {
        for (ClientQueue q : queues) {
            q.ring();
        }
    }

    // ------------------------------------------------------------------ data path

    void submit(RdmaBlockDevice device, IoOp op, long offset, int length, int ioFlags, ByteBuffer buffer, long tag,
                IoCompletion completion) {
        DeviceInfo di = device.info;
        if (closed || di == null || !device.usable()) {
            completion.onComplete(tag, IoStatus.ESHUTDOWN);
            return;
        }
        int status = IoRequests.check(di, op, offset, length, ioFlags);
        if (status == IoStatus.OK && (op == IoOp.READ || op == IoOp.WRITE)
                && (buffer == null || buffer.remaining() < length || (op == IoOp.READ && buffer.isReadOnly()))) {
            status = IoStatus.EINVAL;
        }
        if (status != IoStatus.OK) {
            completion.onComplete(tag, status);
            return;
        }
        long now = System.nanoTime();
        long deadline = now + config.ioTimeout().toNanos();
        int permit;
        if (onQueueAgent()) {
            // A completion callback submitting again: waiting here would block the only thread that can free a
            // permit, so a full queue fails fast instead of deadlocking.
            permit = permits.tryAcquire();
            if (permit < 0) {
                completion.onComplete(tag, IoStatus.ENOMEM);
                return;
            }
        } else {
            permit = permits.acquire(deadline);
            if (permit < 0) {
                completion.onComplete(tag, IoStatus.ETIMEDOUT);
                return;
            }
        }
        requests.fill(permit, device, op, offset, length, ioFlags, buffer, tag, completion, deadline);
        if (op == IoOp.WRITE) {
            localPool.put(permit * chunkSize + RequestHeader.LENGTH, buffer, buffer.position(), length);
        }
        queues[permit % queueCount].submit(permit);
    }

    /**
     * Cancels the live request submitted with {@code tag} and {@code completion} (see {@code BlockDevice.cancel}).
     * Any thread; the queue agent completes it: at once with ECANCELED if it was not answered yet (a late answer is
     * dropped, never copied; the permit stays reserved until it can no longer be written), else with its status. A
     * scan of the permits (cancel is rare; no allocation).
     */
    void cancel(long tag, IoCompletion completion) {
        if (completion == null) {
            return;
        }
        for (int permit = 0; permit < queueDepth; permit++) {
            if (requests.isLiveFor(permit, tag, completion)) {
                queues[permit % queueCount].enqueueCancel(permit, requests.use(permit), IoStatus.ECANCELED);
            }
        }
    }

    /** A submitter about to block: waits for the session's lone request on this thread (submitter assist). */
    void awaitCompletions(long maxWaitNanos) {
        if (closed || permits.inUse() != 1) {
            return;
        }
        for (ClientQueue q : queues) {
            q.assistLoneRequest(maxWaitNanos); // only the queue holding it waits; the others return at once
        }
    }

    private boolean onQueueAgent() {
        Thread current = Thread.currentThread();
        for (ClientQueue q : queues) {
            if (q.isDriver(current)) {
                return true;
            }
        }
        return false;
    }

    // ------------------------------------------------------------------ path management (any thread)

    /** Adds a path; the control thread connects it. @return the path id */
    public synchronized int addPath(PathSpec spec) {
        for (int slot = 0; slot < MAX_PATHS; slot++) {
            if (slots.get(slot) == null) {
                ClientPath p = new ClientPath(nextPathId.incrementAndGet(), slot, spec,
                        Backoff.exponentialWithJitter(config.reconnectInitial(), config.reconnectMax()));
                slots.set(slot, p);
                supervisor.wake();
                return p.id;
            }
        }
        throw new IllegalStateException("session '" + name + "' already has " + MAX_PATHS + " paths");
    }

    /** Closes and forgets a path; its requests in flight move to the other paths. */
    public void removePath(int id) {
        find(id).removeRequested = true;
        supervisor.wake();
    }

    /** Takes a path down until {@link #reconnectPath}; its requests in flight move to the other paths. */
    public void disconnectPath(int id) {
        find(id).disconnectRequested = true;
        supervisor.wake();
    }

    /** Reconnects a path now (after an operator disconnect, or to skip a backoff wait). */
    public void reconnectPath(int id) {
        find(id).reconnectRequested = true;
        supervisor.wake();
    }

    private ClientPath find(int id) {
        for (int slot = 0; slot < MAX_PATHS; slot++) {
            ClientPath p = slots.get(slot);
            if (p != null && p.id == id) {
                return p;
            }
        }
        throw new IllegalArgumentException("session '" + name + "' has no path " + id);
    }

    public List<PathStatus> paths() {
        List<PathStatus> out = new ArrayList<>();
        for (int slot = 0; slot < MAX_PATHS; slot++) {
            ClientPath p = slots.get(slot);
            if (p != null) {
                out.add(p.status());
            }
        }
        return out;
    }

    /**
     * True when the session has paths and every one is reconnecting after a refused connect attempt: nothing listens
     * at any of the storage node's addresses, so its process (or RDMA server) is gone. Only the software provider
     * tells a refusal apart; over DiSNI this stays false.
     */
    public boolean everyPathRefused() {
        boolean any = false;
        for (int slot = 0; slot < MAX_PATHS; slot++) {
            ClientPath p = slots.get(slot);
            if (p != null) {
                if (p.state != PathState.RECONNECTING || !p.connectRefused) {
                    return false;
                }
                any = true;
            }
        }
        return any;
    }

    /** Session-wide counters. */
    public record SessionStats(String name, String device, int queueDepth, int maxIoSize, int permitsInUse,
                               long staleResponses, long malformedResponses, long lateResponses,
                               int fencesPending, List<PathStatus> paths) {
    }

    public SessionStats stats() {
        int maxIo = supervisor.grantedMaxIo();
        return new SessionStats(name, openingDevice, queueDepth, maxIo == 0 ? config.maxIoSize() : maxIo,
                permits.inUse(), staleResponses.sum(), malformedResponses.sum(), lateResponses.sum(),
                fences.pendingCount(), paths());
    }

    /** Closes every path; requests still held complete with ESHUTDOWN. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        supervisor.stop();
        for (ClientQueue q : queues) {
            q.stop();
        }
        for (ClientQueue q : queues) {
            q.failAll(IoStatus.ESHUTDOWN);
            q.cq.close();
        }
        devices.closeAll();
        pd.close();
    }
}
