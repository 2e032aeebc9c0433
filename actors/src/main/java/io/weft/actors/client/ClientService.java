package io.weft.actors.client;

import io.weft.actors.MapSpec;
import io.weft.actors.NodeState;
import io.weft.actors.Reply;
import io.weft.actors.WeftSettings;
import io.weft.actors.transport.Transport;
import io.weft.actors.transport.Transports;
import io.weft.core.io.DeviceInfo;
import io.weft.core.stats.IoStats;
import java.util.Optional;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.SupervisorStrategy;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;

/**
 * The client role of a node: maps, unmaps and remaps devices, one {@link DeviceActor} each (child named
 * {@code device-<id>}, so the service keeps no state of its own beyond its children and {@link NodeState}).
 *
 * <p>Supervision (applied by {@code NodeGuardian}): restarted on failure without stopping its children, so mapped
 * devices are untouched. Its {@link DeviceActor} children are restarted on failure (see there).
 *
 * <p>When it starts in a new actor-system incarnation of the node (the previous one was downed), it adopts the
 * devices the previous incarnation left running from the node's {@link DeviceRegistry}: one {@link DeviceActor} each
 * (a {@link MirroredDeviceActor} for a mirrored one, over the same mirror), over the same queueing device and export.
 */
public final class ClientService extends AbstractBehavior<ClientService.Command> {

    public interface Command {
    }

    public record Map(MapSpec spec, ActorRef<Reply> replyTo) implements Command {
    }

    public record Unmap(String deviceId, boolean force, ActorRef<Reply> replyTo) implements Command {
    }

    public record Remap(String deviceId, ActorRef<Reply> replyTo) implements Command {
    }

    /** Adds a leg to a mirrored device (see {@link MirroredDeviceActor.AddLeg}). */
    public record AddLeg(String deviceId, MapSpec.Leg leg, ActorRef<Reply> replyTo) implements Command {
    }

    /** Removes the leg at {@code index} from a mirrored device (see {@link MirroredDeviceActor.RemoveLeg}). */
    public record RemoveLeg(String deviceId, int index, ActorRef<Reply> replyTo) implements Command {
    }

    /** Resyncs the leg at {@code index} of a mirrored device (see {@link MirroredDeviceActor.ResyncLeg}). */
    public record ResyncLeg(String deviceId, int index, boolean full, ActorRef<Reply> replyTo) implements Command {
    }

    /** Geometry a device reports before its first path: empty, so IO before mapping fails fast with EOVERFLOW. */
    static final DeviceInfo UNMAPPED = new DeviceInfo(0, 512, 4096, 4096, true, false, false, false, false, false,
            false, false);

    public static Behavior<Command> create(WeftSettings settings, NodeState nodeState, Transports transports,
                                           DeviceExporter exporter, DeviceRegistry registry) {
        return Behaviors.setup(ctx -> new ClientService(ctx, settings, nodeState, transports, exporter, registry));
    }

    private final WeftSettings settings;
    private final NodeState nodeState;
    private final Transports transports;
    private final DeviceExporter exporter;
    private final DeviceRegistry registry;

    private ClientService(ActorContext<Command> ctx, WeftSettings settings, NodeState nodeState,
                          Transports transports, DeviceExporter exporter, DeviceRegistry registry) {
        super(ctx);
        this.settings = settings;
        this.nodeState = nodeState;
        this.transports = transports;
        this.exporter = exporter;
        this.registry = registry;
        adoptRunningDevices();
    }

    /**
     * A new actor-system incarnation of this node (the previous one was downed or removed): takes over every device
     * the previous one left running (see {@link DeviceRegistry}). Also runs after a restart of this service on
     * failure, where its children kept running: a device that still has its actor is left alone.
     */
    private void adoptRunningDevices() {
        for (NodeState.DeviceEntry entry : registry.adoptable()) {
            String id = entry.spec.deviceId();
            if (device(id).isPresent()) {
                continue;
            }
            Transport transport = transports.get(entry.spec.transport());
            if (transport == null) {
                getContext().getLog().error("device {}: its transport {} is gone; cannot adopt it", id,
                        entry.spec.transport());
                continue;
            }
            getContext().spawn(entry.spec.mirrored()
                    // Not restarted, as when mapped (see onMap).
                    ? MirroredDeviceActor.adopt(entry, nodeState.nodeName(), transport, settings, exporter, registry)
                    : Behaviors.supervise(DeviceActor.adopt(entry, nodeState.nodeName(), transport, settings,
                            exporter, registry)).onFailure(SupervisorStrategy.restart()), childName(id));
        }
    }

    @Override
    public Receive<Command> createReceive() {
        return newReceiveBuilder()
                .onMessage(Map.class, this::onMap)
                .onMessage(Unmap.class, this::onUnmap)
                .onMessage(Remap.class, this::onRemap)
                .onMessage(AddLeg.class, a -> toMirror(a.deviceId(), a.replyTo(),
                        new MirroredDeviceActor.AddLeg(a.leg(), a.replyTo())))
                .onMessage(RemoveLeg.class, r -> toMirror(r.deviceId(), r.replyTo(),
                        new MirroredDeviceActor.RemoveLeg(r.index(), r.replyTo())))
                .onMessage(ResyncLeg.class, r -> toMirror(r.deviceId(), r.replyTo(),
                        new MirroredDeviceActor.ResyncLeg(r.index(), r.full(), r.replyTo())))
                .build();
    }

    private Behavior<Command> onMap(Map map) {
        MapSpec spec = map.spec();
        String transportName = spec.transport() == null || spec.transport().isBlank()
                ? settings.defaultTransport() : spec.transport();
        Transport transport = transports.get(transportName);
        if (transport == null) {
            map.replyTo().tell(Reply.error("transport '" + transportName + "' is not enabled on this node (enabled: "
                    + transports.names() + ")"));
            return this;
        }
        if (nodeState.device(spec.deviceId()) != null || device(spec.deviceId()).isPresent()) {
            map.replyTo().tell(Reply.error("device " + spec.deviceId() + " already exists on this node; unmap it"
                    + " first or pick another id"));
            return this;
        }
        QueueingBlockDevice device = new QueueingBlockDevice(UNMAPPED, settings.maxInFlight(),
                settings.ioTimeout().toNanos(), new IoStats(spec.deviceId()));
        NodeState.DeviceEntry entry = new NodeState.DeviceEntry(nodeState, spec.withTransport(transportName), device);
        nodeState.putDevice(entry);
        getContext().spawn(
                spec.mirrored()
                        // Not restarted: a fresh actor would rebuild the mirror over the same bitmap and legs.
                        ? MirroredDeviceActor.create(entry, nodeState.nodeName(), transport, settings, exporter,
                                registry, map.replyTo())
                        : Behaviors.supervise(DeviceActor.create(entry, nodeState.nodeName(), transport, settings,
                                exporter, registry, map.replyTo())).onFailure(SupervisorStrategy.restart()),
                childName(spec.deviceId()));
        return this;
    }

    private Behavior<Command> onUnmap(Unmap unmap) {
        Optional<ActorRef<DeviceActor.Command>> device = device(unmap.deviceId());
        if (device.isEmpty()) {
            unmap.replyTo().tell(Reply.error("no device " + unmap.deviceId() + " on this node"));
        } else {
            device.get().tell(new DeviceActor.Unmap(unmap.force(), unmap.replyTo()));
        }
        return this;
    }

    private Behavior<Command> onRemap(Remap remap) {
        Optional<ActorRef<DeviceActor.Command>> device = device(remap.deviceId());
        if (device.isEmpty()) {
            remap.replyTo().tell(Reply.error("no device " + remap.deviceId() + " on this node"));
        } else {
            device.get().tell(new DeviceActor.Remap(remap.replyTo()));
        }
        return this;
    }

    /** Leg operations: only a mirrored device's actor understands them (a single-leg device would never answer). */
    private Behavior<Command> toMirror(String deviceId, ActorRef<Reply> replyTo, DeviceActor.Command command) {
        Optional<ActorRef<DeviceActor.Command>> device = device(deviceId);
        NodeState.DeviceEntry entry = nodeState.device(deviceId);
        if (device.isEmpty() || entry == null) {
            replyTo.tell(Reply.error("no device " + deviceId + " on this node"));
        } else if (!entry.spec.mirrored()) {
            replyTo.tell(Reply.error("device " + deviceId + " is not mirrored; legs can be added to, removed from and"
                    + " resynced on a device mapped with 2 or 3 legs"));
        } else {
            device.get().tell(command);
        }
        return this;
    }

    private Optional<ActorRef<DeviceActor.Command>> device(String id) {
        return getContext().getChild(childName(id)).map(ref -> ref.unsafeUpcast());
    }

    private static String childName(String deviceId) {
        return "device-" + deviceId;
    }
}
