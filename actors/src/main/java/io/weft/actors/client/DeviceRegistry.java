package io.weft.actors.client;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import io.weft.actors.DeviceSnapshot;
import io.weft.actors.DeviceState;
import io.weft.actors.MapSpec;
import io.weft.actors.NodeState;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import org.apache.pekko.actor.CoordinatedShutdown;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A client node's own record of its mappings, and the owner of their data plane across actor-system incarnations
 * (ROADMAP "Devices outlive a cluster incarnation").
 *
 * <p>The data plane of a mapped device — its {@link QueueingBlockDevice} (in its {@link NodeState.DeviceEntry}) and
 * its NBD export — belongs to the node, not to the actor system that maps it. When an incarnation ends because the
 * cluster downed or removed the node (not because the node stops), the device actors leave the data plane alone
 * ({@link #keepsDataPlane}): only their transport path goes (a mirrored device keeps its mirror, whose legs lose
 * their paths), IO queues under the io-timeout, the export stays. The
 * next incarnation's {@link ClientService} takes the devices back ({@link #adoptable}) and each new device actor
 * re-opens its mapping. Created once per node by {@code WeftRuntime}, which also closes what is left when the node
 * stops ({@link #closeAll}).
 *
 * <p>On disk, {@code <weft.data-dir>/mappings.json} (only when {@code weft.data-dir} is set, as node-app always
 * does) lists what is mapped: id, storage node, path, mode, transport, legs, export. It is rewritten on every map
 * and unmap. A process started afresh does not map those devices again (the user maps, as before); it logs what the
 * previous process had mapped and starts the file over.
 *
 * <p>Thread-safety: device actors of any incarnation call in; the file is written under this object's lock.
 */
public final class DeviceRegistry {
    private static final Logger LOG = LoggerFactory.getLogger(DeviceRegistry.class);
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT)
            .setSerializationInclusion(JsonInclude.Include.NON_EMPTY);

    /** The file's name under the data directory. */
    public static final String FILE_NAME = "mappings.json";

    /** One mapping as recorded on disk. {@code legs} is empty for a single-leg device. */
    public record Mapping(String id, String storageNode, String path, String mode, String transport,
                          List<Leg> legs, String export) {
    }

    /** One mirror leg as recorded on disk. */
    public record Leg(String storageNode, String path) {
    }

    /** The file's layout: {@code {"version":1,"node":"c","mappings":[...]}}. */
    public record File(int version, String node, List<Mapping> mappings) {
    }

    private final NodeState nodeState;
    private final DeviceExporter exporter;
    private final Optional<Path> file;
    private final Map<String, Mapping> recorded = new TreeMap<>();
    private final java.util.Set<ActorSystem<?>> abandoned = java.util.concurrent.ConcurrentHashMap.newKeySet();
    private volatile boolean stopping;

    /**
     * @param file where to keep the record ({@code <data-dir>/mappings.json}), or empty to keep none
     */
    public DeviceRegistry(NodeState nodeState, DeviceExporter exporter, Optional<Path> file) {
        this.nodeState = nodeState;
        this.exporter = exporter;
        this.file = file;
        file.ifPresent(DeviceRegistry::reportPreviousRun);
        synchronized (this) {
            write();
        }
    }

    /** A registry with no file (tests, bare control-plane nodes). */
    public static DeviceRegistry inMemory(NodeState nodeState, DeviceExporter exporter) {
        return new DeviceRegistry(nodeState, exporter, Optional.empty());
    }

    /** Reads a record file; empty when there is none. */
    public static List<Mapping> read(Path path) throws IOException {
        if (!Files.exists(path)) {
            return List.of();
        }
        File f = JSON.readValue(path.toFile(), File.class);
        return f.mappings() == null ? List.of() : f.mappings();
    }

    private static void reportPreviousRun(Path path) {
        try {
            List<Mapping> previous = read(path);
            if (!previous.isEmpty()) {
                LOG.info("the previous run of this node had mapped {} device(s), not mapped again by a fresh start "
                        + "(map them again): {}", previous.size(), previous);
            }
        } catch (IOException | RuntimeException e) {
            LOG.warn("{} is unreadable ({}); starting it over", path, e.toString());
        }
    }

    /** Records a device that became ready (first map), and writes the file. */
    public void recorded(NodeState.DeviceEntry entry) {
        MapSpec spec = entry.spec;
        List<Leg> legs = spec.legs().stream().map(l -> new Leg(l.storageNode(), l.path())).toList();
        Mapping m = new Mapping(spec.deviceId(), spec.storageNode(), spec.path(), spec.mode().wireName(),
                spec.transport(), legs, entry.snapshot().exportedAs());
        synchronized (this) {
            recorded.put(spec.deviceId(), m);
            write();
        }
    }

    /** Forgets an unmapped (or failed) device, and writes the file. */
    public void forgotten(String deviceId) {
        synchronized (this) {
            if (recorded.remove(deviceId) != null) {
                write();
            }
        }
    }

    /** What is recorded now, by device id. */
    public synchronized List<Mapping> mappings() {
        return List.copyOf(recorded.values());
    }

    private void write() {
        if (file.isEmpty()) {
            return;
        }
        Path path = file.get();
        try {
            Files.createDirectories(path.toAbsolutePath().getParent());
            Path tmp = path.resolveSibling(path.getFileName() + ".tmp");
            JSON.writeValue(tmp.toFile(), new File(1, nodeState.nodeName(), List.copyOf(recorded.values())));
            Files.move(tmp, path, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException | RuntimeException e) {
            LOG.warn("could not write {}: {}", path, e.toString());
        }
    }

    /**
     * Whether a device actor stopping now (not unmapping) must leave its data plane to the node: true while the
     * actor system shuts down because the node's cluster membership ended ({@link #membershipEnded}) and the node
     * itself is not stopping. A device actor that stops for any other reason tears its device down as before.
     */
    public boolean keepsDataPlane(ActorSystem<?> system) {
        return !stopping && (membershipEnded(system) || abandoned.contains(system));
    }

    /**
     * An incarnation that did not finish starting is terminated again: its device actors (which may already have
     * adopted devices) leave the data plane to the next attempt.
     */
    public void abandoning(ActorSystem<?> system) {
        abandoned.add(system);
    }

    /**
     * Whether {@code system} is shutting down because its cluster membership ended — downed (by the split-brain
     * resolver or an operator), removed, left, or its join given up — rather than because the node or the JVM stops.
     */
    public static boolean membershipEnded(ActorSystem<?> system) {
        Optional<CoordinatedShutdown.Reason> reason =
                CoordinatedShutdown.get(Adapter.toClassic(system)).getShutdownReason();
        return reason.isPresent() && (reason.get() == CoordinatedShutdown.clusterDowningReason()
                || reason.get() == CoordinatedShutdown.clusterLeavingReason()
                || reason.get() == CoordinatedShutdown.clusterJoinUnsuccessfulReason());
    }

    /**
     * The devices a new incarnation's client service takes over: every device still open in this process that had
     * become ready (its export exists; for a mirrored device, its mirror exists); the recorded spec and the
     * in-process data plane meet here.
     */
    public List<NodeState.DeviceEntry> adoptable() {
        List<NodeState.DeviceEntry> adopt = new ArrayList<>();
        Map<String, Mapping> known;
        synchronized (this) {
            known = Map.copyOf(recorded);
        }
        for (NodeState.DeviceEntry e : nodeState.devices()) {
            DeviceSnapshot s = e.snapshot();
            boolean running = s.state() == DeviceState.READY || s.state() == DeviceState.DEGRADED
                    || s.state() == DeviceState.RECONNECTING;
            if (running && (!e.spec.mirrored() || s.mirror() != null)) {
                if (!known.containsKey(e.spec.deviceId())) {
                    LOG.warn("device {} is mapped but not in the record; adopting it anyway", e.spec.deviceId());
                }
                adopt.add(e);
            }
        }
        return adopt;
    }

    /** The node is stopping for good: device actors stopping from now on tear their devices down. */
    public void stopping() {
        stopping = true;
    }

    /**
     * After the last incarnation ended: withdraws every export still there and fails what is still queued (EIO),
     * then removes the devices. The record file keeps what was mapped (the next start reports it): only an unmap
     * or a failed map removes a device from it.
     */
    public void closeAll() {
        stopping = true;
        for (NodeState.DeviceEntry e : nodeState.devices()) {
            try {
                exporter.unexport(e.spec.deviceId());
            } catch (RuntimeException ex) {
                LOG.warn("device {}: withdrawing the export failed: {}", e.spec.deviceId(), ex.toString());
            }
            e.device.forceClose();
            // No device actor is left: the registry, owner of the data plane, publishes the device's last snapshot.
            DeviceSnapshot s = e.update(d -> d.withState(DeviceState.CLOSED));
            if (s.mirror() != null) {
                s.mirror().close(); // persists the bitmap; the legs' paths belong to sessions long gone
            }
            nodeState.removeDevice(e.spec.deviceId(), e);
        }
    }

    /**
     * Fails queued requests older than the io-timeout on every device, for the time between two incarnations when
     * no device actor ticks (safe alongside an actor's own tick: slots move by CAS).
     */
    public void expireOrphans(long nowNanos) {
        for (NodeState.DeviceEntry e : nodeState.devices()) {
            e.device.expire(nowNanos);
        }
    }
}
