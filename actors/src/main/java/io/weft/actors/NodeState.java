package io.weft.actors;

import io.weft.actors.client.QueueingBlockDevice;
import io.weft.actors.management.IoFigures;
import io.weft.core.stats.IoStats;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.UnaryOperator;

/**
 * What one node's actors publish for management to read without asking them: devices, sessions and backends. Each
 * entry's state is an immutable snapshot ({@link DeviceSnapshot}, {@link SessionSnapshot}, {@link BackendSnapshot})
 * behind one volatile reference that only the owning actor replaces (see each entry for who owns what); HTTP, JMX,
 * metrics and drills take one snapshot and read it, so they never mix two moments. Mutations go through actor
 * messages.
 */
public final class NodeState {
    private final Map<String, DeviceEntry> devices = new ConcurrentHashMap<>();
    private final Map<String, BackendEntry> backends = new ConcurrentHashMap<>();
    private volatile String nodeName = "";
    /** Told after a device or backend entry is put or removed (JMX registrations follow them, issue 12). */
    private final List<Runnable> membershipListeners = new java.util.concurrent.CopyOnWriteArrayList<>();

    /** The cluster address an actor lives at ("pekko://weft@host:port"), also for actors on this node. */
    public static String addressOf(org.apache.pekko.actor.typed.ActorSystem<?> system,
                                   org.apache.pekko.actor.typed.ActorRef<?> ref) {
        var address = ref.path().address();
        if (address.hasGlobalScope()) {
            return address.toString();
        }
        var classic = (org.apache.pekko.actor.ExtendedActorSystem)
                org.apache.pekko.actor.typed.javadsl.Adapter.toClassic(system);
        return classic.provider().getDefaultAddress().toString();
    }

    public String nodeName() {
        return nodeName;
    }

    void nodeName(String name) {
        this.nodeName = name;
    }

    public void putDevice(DeviceEntry e) {
        devices.put(e.spec.deviceId(), e);
        membershipChanged();
    }

    public void removeDevice(String id, DeviceEntry e) {
        if (devices.remove(id, e)) {
            membershipChanged();
        }
    }

    /** {@code listener} runs on the changing thread after every put or removal: keep it short, never blocking. */
    public void addMembershipListener(Runnable listener) {
        membershipListeners.add(listener);
    }

    public void removeMembershipListener(Runnable listener) {
        membershipListeners.remove(listener);
    }

    private void membershipChanged() {
        for (Runnable l : membershipListeners) {
            l.run();
        }
    }

    public DeviceEntry device(String id) {
        return devices.get(id);
    }

    public List<DeviceEntry> devices() {
        List<DeviceEntry> list = new ArrayList<>(devices.values());
        list.sort(Comparator.comparing(d -> d.spec.deviceId()));
        return list;
    }

    public void putBackend(BackendEntry e) {
        backends.put(e.path, e);
        membershipChanged();
    }

    public void removeBackend(String path, BackendEntry e) {
        if (backends.remove(path, e)) {
            membershipChanged();
        }
    }

    public List<BackendEntry> backends() {
        List<BackendEntry> list = new ArrayList<>(backends.values());
        list.sort(Comparator.comparing(b -> b.path));
        return list;
    }

    public BackendEntry backend(String path) {
        return backends.get(path);
    }

    /**
     * One published snapshot: an immutable value behind one volatile reference that only its owner replaces (each
     * subclass says who). A reader takes one with {@link #snapshot()} and reads that, never the holder twice.
     */
    public abstract static class Published<T> {
        private volatile T snapshot;

        Published(T initial) {
            this.snapshot = initial;
        }

        /** What the owner last published: read once, then read the snapshot, not the holder again. */
        public final T snapshot() {
            return snapshot;
        }

        /**
         * Publishes {@code change} applied to the current snapshot. Only the owner calls it, on its own thread (one
         * actor incarnation after the other), so the read and the replacement cannot interleave with another
         * writer's.
         */
        public final T update(UnaryOperator<T> change) {
            T next = change.apply(snapshot);
            snapshot = next;
            return next;
        }
    }

    /**
     * A mapped device. Its state is published as snapshots, each by the one actor that decides it:
     * <ul>
     *   <li>{@link #snapshot()} ({@link DeviceSnapshot}: state, transport, export, last error, reconnects, a mirror's
     *       legs) — by the device's actor ({@code client.DeviceActor} or {@code client.MirroredDeviceActor}, with
     *       its {@code DeviceLifecycle}), one incarnation after the other;</li>
     *   <li>each {@link SessionView}'s {@link SessionSnapshot} — by that view's {@code client.SessionActor}; its
     *       last lease renewal by the node's {@code client.LeaseRenewer}.</li>
     * </ul>
     * The {@link #device} is a data-plane handle, not state: set once when the device is mapped, it lives as long as
     * the entry (across actor restarts and incarnations). The status records are built from one snapshot plus the
     * live IO figures.
     */
    public static final class DeviceEntry extends Published<DeviceSnapshot> {
        public final NodeState nodeState;
        public final MapSpec spec;
        public final QueueingBlockDevice device;
        /** A single-leg device's session (a mirrored device's are in {@link DeviceSnapshot#legSessions()}). */
        public final SessionView sessionView;

        public DeviceEntry(NodeState nodeState, MapSpec spec, QueueingBlockDevice device) {
            super(DeviceSnapshot.mapping(spec.transport()));
            this.nodeState = nodeState;
            this.spec = spec;
            this.device = device;
            this.sessionView = new SessionView(spec.deviceId(), spec.storageNode());
        }

        public DeviceStatus status() {
            DeviceSnapshot s = snapshot();
            var info = device.info();
            return new DeviceStatus(spec.deviceId(), spec.storageNode(), spec.path(), spec.mode().wireName(),
                    s.transport(), s.state().name().toLowerCase(java.util.Locale.ROOT), s.stateSince().toString(),
                    info.size(), info.logicalBlockSize(), info.readOnly(), s.exportedAs(), s.exportError(),
                    s.lastError(), s.reconnects(), device.inFlight(), IoFigures.of(device.stats().snapshot()),
                    mirrorStatus(s));
        }

        /** The legs and resync of a mirrored device; null for a single-leg one (or before its mirror exists). */
        public MirrorView mirrorStatus() {
            return mirrorStatus(snapshot());
        }

        private MirrorView mirrorStatus(DeviceSnapshot s) {
            var m = s.mirror();
            List<SessionView> sessions = s.legSessions();
            if (spec.legs().isEmpty()) {
                return null;
            }
            List<MapSpec.Leg> positions = s.legPositions().isEmpty() ? spec.legs() : s.legPositions();
            List<LegView> legs = new ArrayList<>();
            var status = m == null ? null : m.status();
            for (int i = 0; i < positions.size(); i++) {
                MapSpec.Leg leg = positions.get(i);
                if (leg == null) {
                    continue; // an empty position: the leg there was removed
                }
                SessionView view = i < sessions.size() ? sessions.get(i) : null;
                SessionSnapshot session = view == null ? null : view.snapshot();
                boolean connected = session != null && session.phase() == SessionPhase.CONNECTED;
                String state;
                if (status == null || !connected) {
                    state = "failed";
                } else {
                    state = switch (status.legs().get(i).state()) {
                        case IN_SYNC -> "in-sync";
                        case RESYNCING, FAILED -> "out-of-sync";
                        default -> "failed";
                    };
                }
                legs.add(new LegView(i, leg.storageNode(), leg.path(), state,
                        status == null ? "" : status.legs().get(i).state().name().toLowerCase(java.util.Locale.ROOT),
                        session == null ? "" : session.phase().wireName(),
                        session == null ? "" : session.lastError()));
            }
            var p = status == null ? io.weft.core.mirror.ResyncProgress.IDLE : status.resync();
            ResyncView resync = new ResyncView(p.leg(), p.running(), p.full(), p.regionsDone(), p.regionsTotal(),
                    p.bytesCopied(), p.bytesPerSecond(), p.etaMillis(),
                    p.regionsTotal() == 0 ? (p.running() ? 0 : 100) : (int) (100 * p.regionsDone() / p.regionsTotal()),
                    p.lastError() == null ? "" : p.lastError());
            long degraded = legs.stream().filter(l -> !l.state().equals("in-sync")).count();
            return new MirrorView(legs.size(), degraded > 0, List.copyOf(legs),
                    status == null ? 0 : status.dirtyRegions(), status == null ? 0 : status.regionSize(), resync);
        }

        public SessionStatus sessionStatus() {
            DeviceSnapshot d = snapshot();
            SessionSnapshot v = sessionView.snapshot();
            long hb = sessionView.lastHeartbeatMillis();
            return new SessionStatus(spec.deviceId(), spec.storageNode(), v.phase().wireName(), v.storageAddress(),
                    v.mappingId(), d.reconnects(), hb == 0 ? -1 : Math.max(0, System.currentTimeMillis() - hb),
                    d.lastError());
        }
    }

    /**
     * One session's publication slot (a single-leg device's, or one mirror leg's), read by management and drills.
     * Two writers, each of its own value: the {@link SessionSnapshot} by the view's {@code client.SessionActor}
     * (one after the other as it is restarted), the last lease renewal by the node's {@code client.LeaseRenewer}
     * (it renews every session's lease in batches, and telling each session would cost a message per session per
     * interval).
     */
    public static final class SessionView extends Published<SessionSnapshot> {
        public final String deviceId;
        public final String storageNode;
        private volatile long lastHeartbeatMillis;

        public SessionView(String deviceId, String storageNode) {
            super(SessionSnapshot.NONE);
            this.deviceId = deviceId;
            this.storageNode = storageNode;
        }

        /** When the lease renewer last had this session's lease renewed (epoch millis; 0 = never). */
        public long lastHeartbeatMillis() {
            return lastHeartbeatMillis;
        }

        /** The lease renewer's record of a renewal; only it calls this. */
        public void leaseRenewed(long epochMillis) {
            lastHeartbeatMillis = epochMillis;
        }
    }

    /**
     * An opened backing store on this (storage) node. Its {@link BackendSnapshot} (size, mappings) is published by
     * its {@code storage.BackendActor} alone; {@link #stats} are the live IO figures its mappings count into.
     */
    public static final class BackendEntry extends Published<BackendSnapshot> {
        public final String path;
        public final IoStats stats;

        public BackendEntry(String path, long size) {
            super(new BackendSnapshot(size, List.of()));
            this.path = path;
            this.stats = new IoStats(path);
        }

        public BackendStatus status() {
            BackendSnapshot s = snapshot();
            return new BackendStatus(path, s.size(), s.mappings(), IoFigures.of(stats.snapshot()));
        }
    }

    /** JSON/JMX view of a device. */
    public record DeviceStatus(String id, String storageNode, String path, String mode, String transport,
                               String state, String stateSince, long size, int blockSize, boolean readOnly,
                               String export, String exportError, String lastError, long reconnects, long inFlight,
                               IoFigures io, MirrorView mirror) {
    }

    /** JSON/JMX view of a mirrored device's legs and resync (absent for single-leg devices). */
    public record MirrorView(int legCount, boolean degraded, List<LegView> legs, long dirtyRegions, int regionSize,
                             ResyncView resync) {
    }

    /**
     * One leg: {@code state} is in-sync (serves reads), out-of-sync (connected, waiting for or in its resync) or
     * failed (no path); {@code mirrorState} and {@code session} are the mirror's and the session's own words.
     */
    public record LegView(int index, String storageNode, String path, String state, String mirrorState,
                          String session, String lastError) {
    }

    /** The current or last resync: leg -1 = none yet; percent 0-100; ETA -1 = unknown. */
    public record ResyncView(int leg, boolean running, boolean full, long regionsDone, long regionsTotal,
                             long bytesCopied, long bytesPerSecond, long etaMillis, int percent, String lastError) {
    }

    /** JSON/JMX view of a client↔storage session. */
    public record SessionStatus(String deviceId, String storageNode, String state, String storageAddress,
                                String mappingId, long reconnects, long lastHeartbeatAgoMillis, String lastError) {
    }

    /** JSON/JMX view of one client's mapping of a backend. */
    public record MappingStatus(String mappingId, String clientNode, String deviceId, String mode, String transport,
                                String clientAddress) {
    }

    /** JSON/JMX view of a backend. */
    public record BackendStatus(String path, long size, List<MappingStatus> mappings, IoFigures io) {
    }
}
