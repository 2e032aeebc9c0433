package io.weft.rdma.client;

import io.weft.core.io.DeviceInfo;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoRequests;
import io.weft.core.io.IoStatus;
import io.weft.rdma.protocol.AdminChannel;
import io.weft.rdma.protocol.Capability;
import io.weft.rdma.protocol.Grant;
import io.weft.rdma.protocol.ConnectData;
import io.weft.rdma.protocol.ControlMessage;
import io.weft.rdma.protocol.RequestHeader;
import io.weft.rdma.verbs.Access;
import io.weft.rdma.verbs.CompletionHandler;
import io.weft.rdma.verbs.CompletionQueue;
import io.weft.rdma.verbs.ConnectionOptions;
import io.weft.rdma.verbs.ConnectionRejectedException;
import io.weft.rdma.verbs.MemoryRegion;
import io.weft.rdma.verbs.ProtectionDomain;
import io.weft.rdma.verbs.VerbsConnection;
import io.weft.rdma.verbs.VerbsProvider;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReferenceArray;
import java.util.concurrent.atomic.LongAdder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The client side of one session with a storage node, shared by every device this client opens there: 1..N paths,
 * each an admin connection (session open, device opens, heartbeats measuring RTT) plus one IO connection per queue.
 * Owns the permits (= storage chunk indices), a local pool of the same shape registered once, the queue agents and a
 * control thread that connects, heartbeats, fails paths over and reconnects them with exponential backoff and
 * jitter — all per session, none per device. Every path's admin connection proves the session's {@link Grant}
 * (challenge-response, see ControlMessage) before the storage side reveals the session's token and pool key, and
 * checks the storage side's proof in turn; each device is then opened inside the session with its own mapping grant
 * (DEVICE_OPEN/CHALLENGE/PROOF) and gets an id its requests carry. When a reconnect lands on a new storage session
 * (storage restart, or every path was lost), the control thread opens every device again before its requests move.
 *
 * <pre>
 *   RdmaSession s = RdmaSession.open(provider, "client-a", sessionGrant,
 *           List.of(PathSpec.to(addr1), PathSpec.to(addr2)), RdmaClientConfig.DEFAULTS);
 *   RdmaBlockDevice vol0 = s.openDevice("vol0", grantOfVol0);
 *   RdmaBlockDevice vol1 = s.openDevice("vol1", grantOfVol1);
 * </pre>
 */
public final class RdmaSession implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(RdmaSession.class);
    /** Most paths one session can have. */
    public static final int MAX_PATHS = 8;

    final String name;
    /** The device whose grant opens the session (single-device sessions), or null for a session grant. */
    private final String openingDevice;
    private final Grant grant;
    final RdmaClientConfig config;
    private final VerbsProvider provider;
    final int queueDepth;
    final int queueCount;
    final int chunkSize;
    final ProtectionDomain pd;
    final ByteBuffer localPool;
    final MemoryRegion localRegion;
    final PermitPool permits;
    private final ClientQueue[] queues;
    private final CompletionQueue adminCq;
    private final AtomicReferenceArray<ClientPath> slots = new AtomicReferenceArray<>(MAX_PATHS);
    private final AtomicInteger nextPathId = new AtomicInteger();
    /** The device of a single-device session (see the six-argument open), or null. */
    private volatile RdmaBlockDevice device;
    /** Every device opened and not closed; written by the control thread and openDevice, read anywhere. */
    private final java.util.concurrent.CopyOnWriteArrayList<RdmaBlockDevice> devices =
            new java.util.concurrent.CopyOnWriteArrayList<>();
    private final java.util.concurrent.ConcurrentLinkedQueue<RdmaBlockDevice> deviceCommands =
            new java.util.concurrent.ConcurrentLinkedQueue<>();
    private final AtomicInteger nextDeviceRequest = new AtomicInteger();
    /** DEVICE_CLOSEs to send or waiting for DEVICE_CLOSED (control thread). */
    private final List<PendingClose> pendingCloses = new ArrayList<>();

    /** A device id to close in the current storage session, and the channel it was last asked on. */
    private static final class PendingClose {
        final int id;
        AdminChannel askedOn;

        PendingClose(int id) {
            this.id = id;
        }
    }

    /** At most this many device messages wait for an answer at once: the peer has few receive slots. */
    static final int MAX_DEVICE_OPS_IN_FLIGHT = 4;
    /** Token of the storage session the devices are open in (control thread); another token means open them again. */
    private long storageSessionToken;
    /** Largest IO the storage session granted when first opened; a reconnect must grant at least as much. */
    private volatile int grantedMaxIo;
    private final Thread control;
    private final AdminHandler adminHandler = new AdminHandler();
    private final ConnectionOptions ioOptions;
    private long nextGeneration;
    private volatile boolean running = true;
    private volatile boolean closed;
    private volatile boolean everOpened;
    private volatile int storageEpoch;
    private volatile boolean commandPending;
    private volatile int fencesPendingSnapshot;
    private final java.util.concurrent.CompletableFuture<Void> firstOpen = new java.util.concurrent.CompletableFuture<>();

    // request slots, indexed by permit: written by the submitter, published through the queue's ring buffer
    final IoOp[] ops;
    final long[] offsets;
    final int[] lengths;
    final int[] flags;
    final ByteBuffer[] buffers;
    final long[] tags;
    final IoCompletion[] completions;
    final long[] deadlines;
    /** Bumped by the submitter for each use of a permit: a cancel names the use, so it never hits a later one. */
    final long[] uses;
    /** The device each permit's request is for. */
    final RdmaBlockDevice[] deviceOf;

    final LongAdder staleResponses = new LongAdder();
    final LongAdder malformedResponses = new LongAdder();
    /** Answers that arrived for requests whose caller was already completed (cancel, io-timeout): dropped. */
    final LongAdder lateResponses = new LongAdder();

    /**
     * Generations of IO connections the storage side has fenced (acknowledged FENCE): nothing posted on them can
     * execute any more. Written by the control thread, read by the agents when {@link #fenceAcks} moves. Grows by
     * one entry per path failure (control path).
     */
    private final java.util.Set<Long> fencedGenerations = java.util.concurrent.ConcurrentHashMap.newKeySet();
    volatile long fenceAcks;
    /** Fences to ask for (control thread only): one per set of IO connections taken down while connected. */
    private final List<PendingFence> pendingFences = new ArrayList<>();

    /** A fence the storage side has not acknowledged yet, and the admin channel it was last asked on. */
    private static final class PendingFence {
        final int pathId;
        final long generation;
        AdminChannel askedOn;

        PendingFence(int pathId, long generation) {
            this.pathId = pathId;
            this.generation = generation;
        }
    }

    private RdmaSession(VerbsProvider provider, String name, String openingDevice, Grant grant,
                        RdmaClientConfig config) throws IOException {
        this.provider = provider;
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
        this.ops = new IoOp[queueDepth];
        this.offsets = new long[queueDepth];
        this.lengths = new int[queueDepth];
        this.flags = new int[queueDepth];
        this.buffers = new ByteBuffer[queueDepth];
        this.tags = new long[queueDepth];
        this.completions = new IoCompletion[queueDepth];
        this.deadlines = new long[queueDepth];
        this.uses = new long[queueDepth];
        this.deviceOf = new RdmaBlockDevice[queueDepth];
        this.ioOptions = new ConnectionOptions(chunkSize, queueDepth + 16, queueDepth + 16);
        this.adminCq = provider.createCompletionQueue("session-" + name + "-control");
        this.queues = new ClientQueue[queueCount];
        for (int q = 0; q < queueCount; q++) {
            queues[q] = new ClientQueue(this, q, provider.createCompletionQueue("session-" + name + "-q" + q),
                    config.policy());
        }
        this.control = new Thread(this::controlLoop, "weft-rdma-client-" + name + "-control");
        control.setDaemon(true);
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
        s.control.start();
        long waitMs = config.connectTimeout().toMillis() * (paths.size() + 1) + 1000;
        try {
            s.firstOpen.get(waitMs, TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.TimeoutException | java.util.concurrent.ExecutionException e) {
            // reported below with every path's last error
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (!s.everOpened) {
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
        RdmaBlockDevice d = new RdmaBlockDevice(this, deviceName, mappingGrant, nextDeviceRequest.incrementAndGet(),
                ownsSession);
        devices.add(d);
        deviceCommands.add(d);
        wakeControl();
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
        devices.remove(d); // an answer still coming for it finds no device and is closed again (stepDevices)
        for (int permit = 0; permit < queueDepth; permit++) {
            if (deviceOf[permit] == d && completions[permit] != null) {
                queues[permit % queueCount].enqueueCancel(permit, uses[permit], IoStatus.ESHUTDOWN);
            }
        }
        deviceCommands.add(d);
        wakeControl();
    }

    /** Devices open (or being opened) in this session. */
    public List<RdmaBlockDevice> devices() {
        return List.copyOf(devices);
    }

    ClientPath path(int slot) {
        return slots.get(slot);
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
        ops[permit] = op;
        offsets[permit] = offset;
        lengths[permit] = length;
        flags[permit] = ioFlags;
        buffers[permit] = buffer;
        tags[permit] = tag;
        completions[permit] = completion;
        deadlines[permit] = deadline;
        deviceOf[permit] = device;
        uses[permit]++;
        if (op == IoOp.WRITE) {
            localPool.put(permit * chunkSize + RequestHeader.LENGTH, buffer, buffer.position(), length);
        }
        queues[permit % queueCount].enqueue(permit);
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
            if (completions[permit] == completion && tags[permit] == tag) {
                long use = uses[permit];
                queues[permit % queueCount].enqueueCancel(permit, use, IoStatus.ECANCELED);
            }
        }
    }

    /** Agents: has the storage side acknowledged the fence of IO connections of {@code generation}? */
    boolean isFenced(long generation) {
        return fencedGenerations.contains(generation);
    }

    private boolean onQueueAgent() {
        Thread current = Thread.currentThread();
        for (ClientQueue q : queues) {
            if (q.thread == current) {
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
                ClientPath p = new ClientPath(nextPathId.incrementAndGet(), slot, spec);
                slots.set(slot, p);
                wakeControl();
                return p.id;
            }
        }
        throw new IllegalStateException("session '" + name + "' already has " + MAX_PATHS + " paths");
    }

    /** Closes and forgets a path; its requests in flight move to the other paths. */
    public void removePath(int id) {
        find(id).removeRequested = true;
        wakeControl();
    }

    /** Takes a path down until {@link #reconnectPath}; its requests in flight move to the other paths. */
    public void disconnectPath(int id) {
        find(id).disconnectRequested = true;
        wakeControl();
    }

    /** Reconnects a path now (after an operator disconnect, or to skip a backoff wait). */
    public void reconnectPath(int id) {
        find(id).reconnectRequested = true;
        wakeControl();
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

    private void wakeControl() {
        commandPending = true;
        adminCq.wakeup();
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

    /** Session-wide counters. */
    public record SessionStats(String name, String device, int queueDepth, int maxIoSize, int permitsInUse,
                               long staleResponses, long malformedResponses, long lateResponses,
                               int fencesPending, List<PathStatus> paths) {
    }

    public SessionStats stats() {
        int maxIo = grantedMaxIo;
        return new SessionStats(name, openingDevice, queueDepth, maxIo == 0 ? config.maxIoSize() : maxIo,
                permits.inUse(), staleResponses.sum(), malformedResponses.sum(), lateResponses.sum(),
                fencesPendingSnapshot, paths());
    }

    // ------------------------------------------------------------------ control thread

    private void controlLoop() {
        while (running) {
            try {
                commandPending = false;
                long now = System.nanoTime();
                // The loop sleeps until the earliest timer of any path (heartbeat, its timeout, a reconnect) or
                // until woken (answers, commands): no polling while nothing is due.
                wakeAt = now + TimeUnit.SECONDS.toNanos(1);
                for (int slot = 0; slot < MAX_PATHS; slot++) {
                    ClientPath p = slots.get(slot);
                    if (p != null) {
                        step(p, now);
                    }
                }
                askFences();
                stepDevices();
                int work = adminCq.poll(adminHandler, 32);
                if (work == 0) {
                    long sleep = Math.max(TimeUnit.MICROSECONDS.toNanos(100), wakeAt - System.nanoTime());
                    adminCq.await(sleep, () -> commandPending || !running);
                }
            } catch (RuntimeException e) {
                LOG.error("session '{}' control loop error", name, e);
            }
        }
        for (int slot = 0; slot < MAX_PATHS; slot++) {
            ClientPath p = slots.get(slot);
            if (p != null) {
                sayClose(p);
                teardown(p, PathState.DISCONNECTED);
            }
        }
        adminCq.close();
    }

    /**
     * Asks for every unacknowledged fence on the admin channel of a connected path (any path of the session: the
     * failed one may be unreachable). Asked again when the channel it was asked on goes away.
     */
    private void askFences() {
        fencesPendingSnapshot = pendingFences.size();
        if (pendingFences.isEmpty()) {
            return;
        }
        ClientPath via = null;
        for (int slot = 0; slot < MAX_PATHS && via == null; slot++) {
            ClientPath p = slots.get(slot);
            if (p != null && p.state == PathState.CONNECTED && p.admin != null) {
                via = p;
            }
        }
        if (via == null) {
            return; // asked as soon as a path (re)connects
        }
        for (PendingFence f : pendingFences) {
            if (f.askedOn != via.admin) {
                ControlMessage m = via.admin.beginSend();
                if (via.admin.send(m.encodeFence(ControlMessage.FENCE, f.pathId, (int) f.generation))) {
                    f.askedOn = via.admin;
                }
            }
        }
    }

    /** Earliest time the control loop has something to do (control thread). */
    private long wakeAt;

    private void wakeBy(long at) {
        if (at - wakeAt < 0) {
            wakeAt = at;
        }
    }

    /**
     * Control thread: takes new device opens and closes, and sends the DEVICE_OPENs (re-opens after a new storage
     * session included) and DEVICE_CLOSEs due, on the admin channel of a connected path, at most
     * {@link #MAX_DEVICE_OPS_IN_FLIGHT} waiting for an answer at once.
     */
    private void stepDevices() {
        RdmaBlockDevice command;
        while ((command = deviceCommands.poll()) != null) {
            if (command.closed) {
                int id = command.remoteId;
                command.remoteId = -1;
                if (id >= 0) {
                    pendingCloses.add(new PendingClose(id)); // a DEVICE_OK still on its way is closed when it comes
                }
                command.state = RdmaBlockDevice.GONE;
                command.opened.completeExceptionally(new IOException("device closed"));
            }
        }
        ClientPath via = connectedPath();
        if (via == null) {
            return;
        }
        int inFlight = 0;
        for (PendingClose c : pendingCloses) {
            if (c.askedOn != null) {
                inFlight++;
            }
        }
        for (RdmaBlockDevice d : devices) {
            if (d.state == RdmaBlockDevice.CHALLENGED || d.state == RdmaBlockDevice.PROVING) {
                inFlight++;
            }
        }
        for (PendingClose c : pendingCloses) {
            if (inFlight >= MAX_DEVICE_OPS_IN_FLIGHT) {
                return;
            }
            if (c.askedOn == null) {
                ControlMessage m = via.admin.beginSend();
                if (via.admin.send(m.encodeDeviceClose(ControlMessage.DEVICE_CLOSE, c.id, 0))) {
                    c.askedOn = via.admin;
                    inFlight++;
                }
            }
        }
        for (RdmaBlockDevice d : devices) {
            if (inFlight >= MAX_DEVICE_OPS_IN_FLIGHT) {
                return;
            }
            if (d.state == RdmaBlockDevice.NEEDS_OPEN && d.usable()) {
                d.clientNonce = Capability.nonce();
                ControlMessage m = via.admin.beginSend();
                if (via.admin.send(m.encodeDeviceOpen(d.requestId, d.name, d.clientNonce))) {
                    d.state = RdmaBlockDevice.CHALLENGED;
                    d.askedOn = via.admin;
                    inFlight++;
                }
            }
        }
    }

    private ClientPath connectedPath() {
        for (int slot = 0; slot < MAX_PATHS; slot++) {
            ClientPath p = slots.get(slot);
            if (p != null && p.state == PathState.CONNECTED && p.admin != null) {
                return p;
            }
        }
        return null;
    }

    private RdmaBlockDevice deviceByRequest(int requestId) {
        for (RdmaBlockDevice d : devices) {
            if (d.requestId == requestId) {
                return d;
            }
        }
        return null;
    }

    /** Control thread: a device's open ended without an id (refused, or its proof failed). */
    private void deviceOpenFailed(RdmaBlockDevice d, String reason) {
        d.state = RdmaBlockDevice.GONE;
        d.remoteId = -1;
        d.failure = reason;
        if (!d.opened.completeExceptionally(new IOException(reason))) {
            LOG.warn("session '{}': device '{}' failed: {}", name, d.name, reason);
        }
        wakeQueues(); // its queued requests fail now instead of waiting for a path
    }

    private void wakeQueues() {
        for (ClientQueue q : queues) {
            q.cq.wakeup();
        }
    }

    private void onDeviceMessage(AdminChannel channel, ControlMessage m, int byteLength) {
        int type = m.type();
        if (type == ControlMessage.DEVICE_CLOSED) {
            int id = m.deviceCloseId();
            if (m.deviceCloseStatus() == IoStatus.ESHUTDOWN) {
                for (RdmaBlockDevice d : devices) {
                    if (d.remoteId == id && d.state == RdmaBlockDevice.OPEN) {
                        deviceOpenFailed(d, "the storage node no longer serves device '" + d.name + "'");
                    }
                }
            } else {
                pendingCloses.removeIf(c -> c.id == id && c.askedOn == channel);
            }
            return;
        }
        RdmaBlockDevice d = deviceByRequest(m.deviceRequestId());
        if (d == null) {
            if (type == ControlMessage.DEVICE_OK) {
                pendingCloses.add(new PendingClose(m.deviceOkId())); // closed while its open was answered
            }
            return;
        }
        if (d.askedOn != channel) {
            return; // an answer on a channel it is no longer waiting on
        }
        switch (type) {
            case ControlMessage.DEVICE_CHALLENGE: {
                if (d.state != RdmaBlockDevice.CHALLENGED) {
                    return;
                }
                ClientPath p = (ClientPath) channel.owner();
                Capability.Transcript t = new Capability.Transcript(d.clientNonce, m.challengeServerNonce(), name,
                        d.requestId, d.grant.clientNode(), d.grant.identity(), d.name);
                if (!Capability.matches(Capability.deviceServerProof(d.grant, t), m.challengeServerProof())) {
                    deviceOpenFailed(d, "the storage side at " + p.spec.remote() + " could not prove it holds the"
                            + " grant of device '" + d.name + "'");
                    return;
                }
                ControlMessage proof = channel.beginSend();
                channel.send(proof.encodeDeviceProof(d.requestId, Capability.deviceClientProof(d.grant, t)));
                d.state = RdmaBlockDevice.PROVING;
                break;
            }
            case ControlMessage.DEVICE_OK: {
                if (d.state != RdmaBlockDevice.PROVING) {
                    return;
                }
                DeviceInfo current = d.info;
                int maxIo = current != null ? current.maxIoSize()
                        : Math.min(Math.min(config.maxIoSize(), grantedMaxIo), m.deviceOkMaxIoSize());
                if (maxIo < 512 || m.deviceOkSize() < 0) {
                    deviceOpenFailed(d, "storage answered device '" + d.name + "' with max IO " + maxIo
                            + " and size " + m.deviceOkSize());
                    return;
                }
                DeviceInfo next = DeviceInfo.fromCapabilityBits(m.deviceOkSize(), m.deviceOkLogicalBlock(),
                        m.deviceOkPreferredBlock(), maxIo, m.deviceOkCapabilities());
                if (!next.equals(current)) {
                    d.info = next;
                }
                d.remoteId = m.deviceOkId();
                d.state = RdmaBlockDevice.OPEN;
                d.opened.complete(null);
                wakeQueues();
                break;
            }
            case ControlMessage.DEVICE_ERR:
                if (d.state == RdmaBlockDevice.CHALLENGED || d.state == RdmaBlockDevice.PROVING) {
                    deviceOpenFailed(d, "storage refused device '" + d.name + "': "
                            + IoStatus.name(m.deviceErrStatus()) + ": " + m.deviceErrReason(byteLength));
                }
                break;
            default:
                break;
        }
    }

    private void fenceAcknowledged(int pathId, int generation) {
        for (java.util.Iterator<PendingFence> it = pendingFences.iterator(); it.hasNext(); ) {
            PendingFence f = it.next();
            if (f.pathId == pathId && (int) f.generation == generation) {
                it.remove();
                // Published before the agents may act on the ack: once a request retried after this fence has
                // completed, stats() no longer counts the fence (the control thread can be descheduled right here).
                fencesPendingSnapshot = pendingFences.size();
                fencedGenerations.add(f.generation);
                fenceAcks++;
                for (ClientQueue q : queues) {
                    q.cq.wakeup();
                }
            }
        }
        fencesPendingSnapshot = pendingFences.size();
    }

    private void step(ClientPath p, long now) {
        if (p.removeRequested) {
            teardown(p, PathState.REMOVED);
            slots.compareAndSet(p.slot, p, null);
            LOG.info("session '{}' path {} ({}) removed", name, p.id, p.spec.remote());
            return;
        }
        if (p.disconnectRequested) {
            p.disconnectRequested = false;
            sayClose(p);
            teardown(p, PathState.DISCONNECTED);
            p.lastError = "disconnected by operator";
            LOG.info("session '{}' path {} ({}) disconnected by operator", name, p.id, p.spec.remote());
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

    private void connect(ClientPath p) {
        p.attempts++;
        long start = System.nanoTime();
        long deadline = start + config.connectTimeout().toNanos();
        VerbsConnection[] io = new VerbsConnection[queueCount];
        AdminChannel admin = null;
        try {
            admin = new AdminChannel(pd, p);
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
            ControlMessage open = admin.beginSend();
            admin.send(openingDevice != null
                    ? open.encodeOpen(queueDepth, config.maxIoSize(), p.id, name, openingDevice, grant.clientNode(),
                            clientNonce)
                    : open.encodeSessionOpen(queueDepth, config.maxIoSize(), p.id, name, grant.clientNode(),
                            Capability.identityDigest(grant.identity()), clientNonce));
            while (p.challengeNonce == null && p.openError == null && ac.isOpen()
                    && System.nanoTime() - deadline < 0) {
                if (adminCq.poll(adminHandler, 32) == 0) {
                    adminCq.await(TimeUnit.MILLISECONDS.toNanos(1), () -> false);
                }
            }
            if (p.openError != null) {
                throw new IOException("storage refused the session: " + p.openError);
            }
            if (p.challengeNonce == null) {
                throw new IOException(ac.isOpen() ? "no answer to session open within "
                        + config.connectTimeout().toMillis() + " ms" : "admin connection closed during session open");
            }
            Capability.Transcript transcript = new Capability.Transcript(clientNonce, p.challengeNonce, name, p.id,
                    grant.clientNode(), grant.identity(), openingDevice == null ? "" : openingDevice);
            if (!Capability.matches(Capability.serverProof(grant, transcript), p.challengeProof)) {
                throw new IOException("the storage side at " + p.spec.remote() + " could not prove it holds the"
                        + (openingDevice == null ? " session grant" : " grant of device '" + openingDevice + "'")
                        + " (another node at that address, or the grant was replaced)");
            }
            ControlMessage proof = admin.beginSend();
            admin.send(proof.encodeProof(Capability.clientProof(grant, transcript)));
            while (p.openResult == null && p.openError == null && ac.isOpen() && System.nanoTime() - deadline < 0) {
                if (adminCq.poll(adminHandler, 32) == 0) {
                    adminCq.await(TimeUnit.MILLISECONDS.toNanos(1), () -> false);
                }
            }
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
                io[q] = connectOrExplain(p, queues[q].cq, ioOptions,
                        ConnectData.request(ConnectData.KIND_IO, q, pool.token(), p.id, (int) generation), left, c -> {
                            c.attach(tag);
                            for (int i = 0; i < queueDepth + 1; i++) {
                                c.postReceive(localRegion, 0, 0, 0);
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
                // A new storage session (first open, storage restart, or every path was lost): device ids of the old
                // one mean nothing here. Unpublished before this path is, so no agent posts with a stale id.
                storageSessionToken = pool.token();
                pendingCloses.clear();
                for (RdmaBlockDevice d : devices) {
                    d.remoteId = -1;
                    if (d.state != RdmaBlockDevice.GONE) {
                        d.state = RdmaBlockDevice.NEEDS_OPEN;
                        d.askedOn = null;
                    }
                }
            }
            everOpened = true;
            firstOpen.complete(null);
            if (storageEpoch != 0 && storageEpoch != pool.epoch()) {
                LOG.warn("session '{}': storage side restarted (new epoch), session reopened on path {}", name, p.id);
            }
            storageEpoch = pool.epoch();
            long now = System.nanoTime();
            p.io = io;
            p.pool = pool;
            p.generation = generation;
            p.lastAckNanos = now;
            p.nextHeartbeatNanos = now;
            p.lastError = null;
            if (p.everConnected) {
                p.reconnects++;
            }
            p.everConnected = true;
            p.attempts = 0;
            p.state = PathState.CONNECTED;
            LOG.info("session '{}' path {} connected to {} ({} IO connection(s), {} provider)", name, p.id,
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
            scheduleReconnect(p, System.nanoTime());
        }
    }

    /** Connects, turning a reject reason into words (a peer of another protocol version, too many handshakes). */
    private VerbsConnection connectOrExplain(ClientPath p, CompletionQueue cq, ConnectionOptions options,
                                             byte[] privateData, Duration timeout,
                                             io.weft.rdma.verbs.ConnectionSetup setup) throws IOException {
        try {
            return provider.connect(p.spec.remote(), p.spec.local(), pd, cq, options, privateData, timeout, setup);
        } catch (ConnectionRejectedException e) {
            throw new IOException("storage at " + p.spec.remote() + " rejected the connection: "
                    + ConnectData.describeReject(e.reason()), e);
        }
    }

    private void scheduleReconnect(ClientPath p, long now) {
        long initial = config.reconnectInitial().toNanos();
        long max = config.reconnectMax().toNanos();
        int shift = Math.min(Math.max(0, p.attempts - 1), 30);
        long delay = Math.min(max, initial << shift);
        if (delay < 0) {
            delay = max;
        }
        // Jitter in [delay/2, delay]: clients that lost the same storage node do not reconnect in lock step.
        delay = delay / 2 + ThreadLocalRandom.current().nextLong(delay / 2 + 1);
        p.nextAttemptNanos = now + delay;
        p.state = PathState.RECONNECTING;
        if (p.attempts <= 1) {
            LOG.warn("session '{}' path {} ({}) down: {}; reconnecting with backoff", name, p.id, p.spec.remote(),
                    p.lastError);
        } else {
            LOG.debug("session '{}' path {} attempt {} failed: {}; next in {} ms", name, p.id, p.attempts,
                    p.lastError, TimeUnit.NANOSECONDS.toMillis(delay));
        }
    }

    private void fail(ClientPath p, String reason) {
        teardown(p, PathState.RECONNECTING);
        p.lastError = reason;
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
     * storage side is asked to fence them before their requests are posted again (see {@link #askFences}).
     */
    private void teardown(ClientPath p, PathState next) {
        boolean carriedIo = p.state == PathState.CONNECTED && p.generation >= 0 && running;
        p.state = next;
        if (carriedIo) {
            pendingFences.add(new PendingFence(p.id, p.generation));
        }
        for (PendingFence f : pendingFences) {
            if (f.askedOn == p.admin) {
                f.askedOn = null; // its answer cannot come on this channel any more
            }
        }
        for (RdmaBlockDevice d : devices) {
            if (d.askedOn == p.admin && p.admin != null
                    && (d.state == RdmaBlockDevice.CHALLENGED || d.state == RdmaBlockDevice.PROVING)) {
                d.state = RdmaBlockDevice.NEEDS_OPEN; // asked again on another path
                d.askedOn = null;
            }
        }
        for (PendingClose c : pendingCloses) {
            if (c.askedOn == p.admin && p.admin != null) {
                c.askedOn = null;
            }
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
        for (ClientQueue q : queues) {
            q.cq.wakeup();
        }
    }

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
                    fenceAcknowledged(m.fencePathId(), m.fenceGeneration());
                    break;
                case ControlMessage.DEVICE_CHALLENGE:
                case ControlMessage.DEVICE_OK:
                case ControlMessage.DEVICE_ERR:
                case ControlMessage.DEVICE_CLOSED:
                    onDeviceMessage(channel, m, byteLength);
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
            if (p.admin == channel && p.state == PathState.CONNECTED && running) {
                fail(p, "admin connection: " + reason);
            } else if (p.admin == channel) {
                p.lastError = "admin connection: " + reason;
            }
        }
    }

    /** Closes every path; requests still held complete with ESHUTDOWN. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        running = false;
        adminCq.wakeup();
        if (control.isAlive()) {
            try {
                control.join(5000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        } else {
            adminCq.close();
        }
        for (ClientQueue q : queues) {
            q.stop();
        }
        for (ClientQueue q : queues) {
            q.failAll(IoStatus.ESHUTDOWN);
            q.cq.close();
        }
        for (RdmaBlockDevice d : devices) {
            d.closed = true;
            d.opened.completeExceptionally(new IOException("session '" + name + "' closed"));
        }
        pd.close();
    }
}
