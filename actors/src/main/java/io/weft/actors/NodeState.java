package io.weft.actors;

import io.weft.actors.client.QueueingBlockDevice;
import io.weft.actors.management.IoFigures;
import io.weft.core.stats.IoStats;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * What one node's actors publish for management to read without asking them: devices, sessions and backends. The
 * actors own and update the entries; HTTP, JMX and metrics only read. Mutations go through actor messages.
 */
public final class NodeState {
    private final Map<String, DeviceEntry> devices = new ConcurrentHashMap<>();
    private final Map<String, BackendEntry> backends = new ConcurrentHashMap<>();
    private volatile String nodeName = "";

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
    }

    public void removeDevice(String id, DeviceEntry e) {
        devices.remove(id, e);
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
    }

    public void removeBackend(String path, BackendEntry e) {
        backends.remove(path, e);
    }

    public List<BackendEntry> backends() {
        List<BackendEntry> list = new ArrayList<>(backends.values());
        list.sort(Comparator.comparing(b -> b.path));
        return list;
    }

    public BackendEntry backend(String path) {
        return backends.get(path);
    }

    /** A mapped device, as the DeviceActor and its SessionActor last left it. */
    public static final class DeviceEntry {
        public final NodeState nodeState;
        public final MapSpec spec;
        public final QueueingBlockDevice device;
        public volatile DeviceState state = DeviceState.MAPPING;
        public volatile String exportedAs = "";
        public volatile String exportError = "";
        public volatile String lastError = "";
        public volatile String transport = "";
        public final AtomicLong reconnects = new AtomicLong();
        public volatile Instant stateSince = Instant.now();
        // Mirrored devices only: the mirror once every leg has opened, and each leg's session view.
        public volatile io.weft.core.mirror.MirrorBlockDevice mirror;
        /** Per mirror position (index = leg index): that leg's session view, null for an empty position. */
        public volatile List<SessionView> legSessions = List.of();
        /**
         * Per mirror position: the leg there, null for an empty position (legs are added and removed at run time,
         * so this, not {@code spec.legs()}, is the device's current leg set; empty until the device actor sets it).
         */
        public volatile List<MapSpec.Leg> legPositions = List.of();
        /**
         * Per mirror position: the leg's own device as the mirror sees it (its current session path), null for an
         * empty position. Read directly, it bypasses the mirror's read policy: drills compare the legs through it.
         */
        public volatile List<io.weft.core.io.BlockDevice> legDevices = List.of();
        /** A single-leg device's session (a mirrored device's are in {@link #legSessions}). */
        public final SessionView sessionView;

        public DeviceEntry(NodeState nodeState, MapSpec spec, QueueingBlockDevice device) {
            this.nodeState = nodeState;
            this.spec = spec;
            this.device = device;
            this.sessionView = new SessionView(spec.deviceId(), spec.storageNode());
        }

        public void state(DeviceState s) {
            if (state != s) {
                state = s;
                stateSince = Instant.now();
            }
        }

        public DeviceStatus status() {
            var info = device.info();
            return new DeviceStatus(spec.deviceId(), spec.storageNode(), spec.path(), spec.mode().wireName(),
                    transport, state.name().toLowerCase(java.util.Locale.ROOT), stateSince.toString(), info.size(),
                    info.logicalBlockSize(), info.readOnly(), exportedAs, exportError, lastError, reconnects.get(),
                    device.inFlight(), IoFigures.of(device.stats().snapshot()), mirrorStatus());
        }

        /** The legs and resync of a mirrored device; null for a single-leg one (or before its mirror exists). */
        public MirrorView mirrorStatus() {
            var m = mirror;
            List<SessionView> sessions = legSessions;
            if (spec.legs().isEmpty()) {
                return null;
            }
            List<MapSpec.Leg> positions = legPositions.isEmpty() ? spec.legs() : legPositions;
            List<LegView> legs = new ArrayList<>();
            var status = m == null ? null : m.status();
            for (int i = 0; i < positions.size(); i++) {
                MapSpec.Leg leg = positions.get(i);
                if (leg == null) {
                    continue; // an empty position: the leg there was removed
                }
                SessionView session = i < sessions.size() ? sessions.get(i) : null;
                boolean connected = session != null && session.phase == SessionPhase.CONNECTED;
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
                        session == null ? "" : session.phase.wireName(), session == null ? "" : session.lastError));
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
            SessionView v = sessionView;
            long hb = v.lastHeartbeatMillis;
            return new SessionStatus(spec.deviceId(), spec.storageNode(), v.phase.wireName(), v.storageAddress,
                    v.mappingId, reconnects.get(), hb == 0 ? -1 : Math.max(0, System.currentTimeMillis() - hb),
                    lastError);
        }
    }

    /**
     * What one session (a single-leg device's, or one mirror leg's) last published: written by its SessionActor (and
     * the node's lease renewer, for the last renewal), read by management and drills.
     */
    public static final class SessionView {
        public final String deviceId;
        public final String storageNode;
        /** How a drill reaches the session to cut its transport; null while no session serves this view. */
        public volatile org.apache.pekko.actor.typed.ActorRef<io.weft.actors.protocol.SessionCommand> session;
        public volatile SessionPhase phase = SessionPhase.SEARCHING;
        public volatile String storageAddress = "";
        public volatile String mappingId = "";
        /** Why the session last lost its path or failed to open ("" before any). */
        public volatile String lastError = "";
        public volatile long lastHeartbeatMillis;
        /** How many transport paths the current channel has (0 while it has none). */
        public volatile int transportPaths;

        public SessionView(String deviceId, String storageNode) {
            this.deviceId = deviceId;
            this.storageNode = storageNode;
        }
    }

    /** An opened backing store on this (storage) node. */
    public static final class BackendEntry {
        public final String path;
        public final IoStats stats;
        public volatile long size;
        public volatile List<MappingStatus> mappings = List.of();

        public BackendEntry(String path, long size) {
            this.path = path;
            this.size = size;
            this.stats = new IoStats(path);
        }

        public BackendStatus status() {
            return new BackendStatus(path, size, mappings, IoFigures.of(stats.snapshot()));
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
