package io.weft.actors.management;

import io.weft.actors.AccessMode;
import io.weft.actors.MapSpec;
import io.weft.actors.NodeState;
import io.weft.actors.Reply;
import java.lang.management.ManagementFactory;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import javax.management.JMException;
import javax.management.MBeanServer;
import javax.management.ObjectName;

/**
 * Keeps the platform MBean server in step with a node: one MBean for the node, one per device, one per backend.
 * Registrations follow {@link NodeState}'s devices and backends as they come and go: each change queues one re-sync
 * on a daemon thread of its own (MBean registration stays off the actor threads that change the state), and that
 * thread waits for the next change, so an idle node's JMX costs no wake-up (issue 12; it used to re-sync twice a
 * second). The attributes are read live from {@link NodeState} when asked; operations go through
 * {@link NodeOperations} (the runtime).
 *
 * <p>Operations that change state honour {@link #changesAllowed}: off unless {@code weft.management.jmx.allow-changes}
 * is true and the JVM's remote JMX connector, if it has one, requires authentication (docs/security.md,
 * "Management"). JMX carries no bearer token; its own authentication is what stands in for it.
 */
public final class JmxPublisher implements AutoCloseable {
    private final NodeOperations runtime;
    private final MBeanServer server = ManagementFactory.getPlatformMBeanServer();
    private final ExecutorService syncer;
    private final Map<ObjectName, Object> registered = new HashMap<>();
    /** True while a re-sync is queued and not started: changes meanwhile are covered by it. */
    private final AtomicBoolean syncQueued = new AtomicBoolean();
    private final Runnable onMembershipChange = this::requestSync;

    private JmxPublisher(NodeOperations runtime) {
        this.runtime = runtime;
        this.syncer = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "weft-jmx-" + runtime.nodeName());
            t.setDaemon(true);
            return t;
        });
    }

    public static JmxPublisher start(NodeOperations runtime) {
        JmxPublisher p = new JmxPublisher(runtime);
        p.register(p.name("Node", "name", runtime.nodeName()), new NodeBean(runtime));
        runtime.state().addMembershipListener(p.onMembershipChange);
        p.sync(); // after the listener: a change from here on queues another sync
        return p;
    }

    private void requestSync() {
        if (syncQueued.compareAndSet(false, true)) {
            try {
                syncer.execute(() -> {
                    syncQueued.set(false); // before reading the state: a change during this sync queues the next
                    sync();
                });
            } catch (java.util.concurrent.RejectedExecutionException closed) {
                syncQueued.set(false); // closed: nothing to keep in step any more
            }
        }
    }

    /** Node name is part of every name: several nodes may share a JVM (tests). */
    private ObjectName name(String type, String key, String value) {
        try {
            return new ObjectName("io.weft:type=" + type + ",node=" + ObjectName.quote(runtime.nodeName()) + ","
                    + key + "=" + ObjectName.quote(value));
        } catch (JMException e) {
            throw new IllegalArgumentException(e);
        }
    }

    private synchronized void sync() {
        try {
            Set<ObjectName> wanted = new HashSet<>();
            wanted.add(name("Node", "name", runtime.nodeName()));
            for (NodeState.DeviceEntry e : runtime.state().devices()) {
                ObjectName n = name("Device", "name", e.spec.deviceId());
                wanted.add(n);
                Object existing = registered.get(n);
                if (existing == null || ((DeviceBean) existing).entry != e) {
                    unregister(n);
                    register(n, new DeviceBean(runtime, e));
                }
            }
            for (NodeState.BackendEntry b : runtime.state().backends()) {
                ObjectName n = name("Backend", "path", b.path);
                wanted.add(n);
                Object existing = registered.get(n);
                if (existing == null || ((BackendBean) existing).entry != b) {
                    unregister(n);
                    register(n, new BackendBean(runtime, b));
                }
            }
            for (ObjectName n : new HashSet<>(registered.keySet())) {
                if (!wanted.contains(n)) {
                    unregister(n);
                }
            }
        } catch (RuntimeException e) {
            runtime.system().log().warn("JMX sync failed: {}", e.toString());
        }
    }

    private void register(ObjectName n, Object bean) {
        try {
            if (server.isRegistered(n)) {
                server.unregisterMBean(n);
            }
            server.registerMBean(bean, n);
            registered.put(n, bean);
        } catch (JMException e) {
            runtime.system().log().warn("could not register MBean {}: {}", n, e.toString());
        }
    }

    private void unregister(ObjectName n) {
        registered.remove(n);
        try {
            if (server.isRegistered(n)) {
                server.unregisterMBean(n);
            }
        } catch (JMException e) {
            runtime.system().log().warn("could not unregister MBean {}: {}", n, e.toString());
        }
    }

    @Override
    public synchronized void close() {
        runtime.state().removeMembershipListener(onMembershipChange);
        syncer.shutdownNow();
        for (ObjectName n : new HashSet<>(registered.keySet())) {
            unregister(n);
        }
    }

    /**
     * Why state-changing operations are refused, or empty when they may run: {@code allowChanges} must be true and
     * a remote connector ({@code com.sun.management.jmxremote.port}) must not run with
     * {@code com.sun.management.jmxremote.authenticate=false}.
     */
    static java.util.Optional<String> refusal(boolean allowChanges, java.util.Properties system) {
        if (!allowChanges) {
            return java.util.Optional.of("error: JMX operations that change state are off "
                    + "(weft.management.jmx.allow-changes = false; use the HTTP API with the management token, or "
                    + "enable them together with JMX authentication, docs/security.md)");
        }
        boolean remote = system.getProperty("com.sun.management.jmxremote.port") != null;
        if (remote && "false".equalsIgnoreCase(system.getProperty("com.sun.management.jmxremote.authenticate"))) {
            return java.util.Optional.of("error: JMX operations that change state are off: this JVM's remote JMX "
                    + "connector runs without authentication (com.sun.management.jmxremote.authenticate=false), "
                    + "so weft.management.jmx.allow-changes does not apply");
        }
        return java.util.Optional.empty();
    }

    /** Runs a state-changing operation if {@link #refusal} allows it. */
    static String change(NodeOperations rt, java.util.function.Supplier<String> operation) {
        boolean allow = rt.system().settings().config().getBoolean("weft.management.jmx.allow-changes");
        return refusal(allow, System.getProperties()).orElseGet(operation);
    }

    static String await(NodeOperations rt, CompletionStage<Reply> stage) {
        try {
            Reply r = stage.toCompletableFuture().get(rt.settings().askTimeout().toMillis() * 2,
                    TimeUnit.MILLISECONDS);
            return (r.ok() ? "ok: " : "error: ") + r.message();
        } catch (Exception e) {
            return "error: no answer in time (" + e + ")";
        }
    }

    static final class NodeBean implements NodeMXBean {
        private final NodeOperations rt;

        NodeBean(NodeOperations rt) {
            this.rt = rt;
        }

        @Override
        public String getName() {
            return rt.nodeName();
        }

        @Override
        public String[] getRoles() {
            return rt.settings().roles().stream().sorted().toArray(String[]::new);
        }

        @Override
        public String[] getDeviceIds() {
            return rt.state().devices().stream().map(d -> d.spec.deviceId()).toArray(String[]::new);
        }

        @Override
        public String[] getBackendPaths() {
            return rt.state().backends().stream().map(b -> b.path).toArray(String[]::new);
        }

        @Override
        public String map(String deviceId, String storageNode, String path, String mode, String transport) {
            return change(rt, () -> {
                try {
                    return await(rt, rt.map(new MapSpec(deviceId, storageNode, path, AccessMode.parse(mode),
                            transport)));
                } catch (IllegalArgumentException e) {
                    return "error: " + e.getMessage();
                }
            });
        }

        @Override
        public String createVolume(String storageNode, String path, long sizeBytes) {
            return change(rt, () -> await(rt, rt.createVolume(storageNode, path, sizeBytes)));
        }

        @Override
        public String resize(String storageNode, String path, long newSizeBytes) {
            return change(rt, () -> await(rt, rt.resize(storageNode, path, newSizeBytes)));
        }
    }

    static final class DeviceBean implements DeviceMXBean {
        private final NodeOperations rt;
        final NodeState.DeviceEntry entry;

        DeviceBean(NodeOperations rt, NodeState.DeviceEntry entry) {
            this.rt = rt;
            this.entry = entry;
        }

        private IoFigures io() {
            return IoFigures.of(entry.device.stats().snapshot());
        }

        @Override public String getId() { return entry.spec.deviceId(); }
        @Override public String getState() {
            return entry.snapshot().state().name().toLowerCase(java.util.Locale.ROOT);
        }
        @Override public String getStorageNode() { return entry.spec.storageNode(); }
        @Override public String getPath() { return entry.spec.path(); }
        @Override public String getMode() { return entry.spec.mode().wireName(); }
        @Override public String getTransport() { return entry.snapshot().transport(); }
        @Override public String getExport() { return entry.snapshot().exportedAs(); }
        @Override public String getLastError() { return entry.snapshot().lastError(); }
        @Override public long getSize() { return entry.device.info().size(); }
        @Override public long getInFlight() { return entry.device.inFlight(); }
        @Override public long getReconnects() { return entry.snapshot().reconnects(); }
        @Override public long getReads() { return io().reads(); }
        @Override public long getWrites() { return io().writes(); }
        @Override public long getBytesRead() { return io().bytesRead(); }
        @Override public long getBytesWritten() { return io().bytesWritten(); }
        @Override public long getErrors() { return io().errors(); }
        @Override public double getReadLatencyP50Micros() { return io().readP50Micros(); }
        @Override public double getReadLatencyP99Micros() { return io().readP99Micros(); }
        @Override public double getWriteLatencyP50Micros() { return io().writeP50Micros(); }
        @Override public double getWriteLatencyP99Micros() { return io().writeP99Micros(); }
        @Override public String getSessionState() { return entry.sessionView.snapshot().phase().wireName(); }
        @Override public long getLastHeartbeatAgoMillis() { return entry.sessionStatus().lastHeartbeatAgoMillis(); }
        @Override public int getLegCount() {
            var published = entry.snapshot().legPositions();
            var positions = published.isEmpty() ? entry.spec.legs() : published;
            return (int) positions.stream().filter(java.util.Objects::nonNull).count();
        }
        @Override public boolean isDegraded() {
            var m = entry.mirrorStatus();
            return m != null && m.degraded();
        }
        @Override public int getResyncPercent() {
            var m = entry.mirrorStatus();
            return m == null ? 100 : m.resync().percent();
        }
        @Override public String unmap(boolean force) {
            return change(rt, () -> await(rt, rt.unmap(entry.spec.deviceId(), force)));
        }
        @Override public String remap() { return change(rt, () -> await(rt, rt.remap(entry.spec.deviceId()))); }
        @Override public String addLeg(String storage, String path) {
            return change(rt, () -> {
                try {
                    return await(rt, rt.addLeg(entry.spec.deviceId(), new io.weft.actors.MapSpec.Leg(storage, path)));
                } catch (IllegalArgumentException e) {
                    return "error: " + e.getMessage();
                }
            });
        }
        @Override public String removeLeg(int index) {
            return change(rt, () -> await(rt, rt.removeLeg(entry.spec.deviceId(), index)));
        }
        @Override public String resyncLeg(int index, boolean full) {
            return change(rt, () -> await(rt, rt.resyncLeg(entry.spec.deviceId(), index, full)));
        }
        @Override public String probe() {
            try {
                var r = rt.probe(entry.spec.deviceId()).toCompletableFuture().get(
                        rt.settings().ioTimeout().plus(rt.settings().askTimeout()).toMillis(), TimeUnit.MILLISECONDS);
                return r == null ? "error: device gone" : r.status() + " in " + r.latencyMicros() + " µs";
            } catch (Exception e) {
                return "error: " + e;
            }
        }
    }

    static final class BackendBean implements BackendMXBean {
        private final NodeOperations rt;
        final NodeState.BackendEntry entry;

        BackendBean(NodeOperations rt, NodeState.BackendEntry entry) {
            this.rt = rt;
            this.entry = entry;
        }

        private IoFigures io() {
            return IoFigures.of(entry.stats.snapshot());
        }

        @Override public String getPath() { return entry.path; }
        @Override public long getSize() { return entry.snapshot().size(); }
        @Override public int getMappingCount() { return entry.snapshot().mappings().size(); }
        @Override public String[] getMappings() {
            return entry.snapshot().mappings().stream().map(m -> m.clientNode() + "/" + m.deviceId() + " ("
                    + m.mode() + ", "
                    + m.transport() + ")").toArray(String[]::new);
        }
        @Override public long getReads() { return io().reads(); }
        @Override public long getWrites() { return io().writes(); }
        @Override public long getBytesRead() { return io().bytesRead(); }
        @Override public long getBytesWritten() { return io().bytesWritten(); }
        @Override public long getErrors() { return io().errors(); }
        @Override public String resize(long newSizeBytes) {
            return change(rt, () -> await(rt, rt.resize(rt.nodeName(), entry.path, newSizeBytes)));
        }
    }
}
