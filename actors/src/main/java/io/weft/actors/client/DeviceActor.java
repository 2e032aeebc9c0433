package io.weft.actors.client;

import io.weft.actors.DeviceState;
import io.weft.actors.NodeState;
import io.weft.actors.Reply;
import io.weft.actors.WeftSettings;
import io.weft.actors.transport.Transport;
import io.weft.core.io.BlockDevice;
import io.weft.core.io.DeviceInfo;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.PostStop;
import org.apache.pekko.actor.typed.SupervisorStrategy;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;

/**
 * One mapped device on a client node: its state machine, its {@link QueueingBlockDevice} and its export.
 *
 * <pre>
 *   MAPPING ──path up──► READY ──path down──► RECONNECTING ──path up──► READY
 *      │                   │                       │
 *      └─refused/timeout   └────── unmap ──────────┴──► CLOSED
 *          (map fails, actor stops)
 * </pre>
 * DEGRADED is reserved for mirrored devices (some legs down, IO continues); single-leg devices never enter it.
 * The export appears when the device first becomes READY and stays through RECONNECTING (IO queues and fails with
 * EIO after {@code weft.client.io-timeout}); a periodic tick fails requests older than the io-timeout.
 *
 * <p>Supervision: restarted by {@link ClientService} on failure. The queueing device and the export live in the
 * {@link NodeState.DeviceEntry} and survive the restart (IO waits); the session child is stopped and a fresh one
 * re-opens the mapping. The {@link SessionActor} child is restarted with backoff on failure.
 *
 * <p>Incarnations: when the node's actor system ends because the cluster downed or removed the node, this actor
 * stops without tearing its device down ({@link DeviceRegistry#keepsDataPlane}): the queueing device and the export
 * stay, IO queues, and the next incarnation's actor ({@link #adopt}) takes them over and re-opens the mapping.
 */
public final class DeviceActor extends AbstractBehavior<DeviceActor.Command> {

    public interface Command {
    }

    public record Unmap(boolean force, ActorRef<Reply> replyTo) implements Command {
    }

    public record Remap(ActorRef<Reply> replyTo) implements Command {
    }

    record PathUp(DeviceInfo info, BlockDevice path, String mappingId, String transport) implements Command {
    }

    record PathDown(String reason) implements Command {
    }

    record GeometryChanged(DeviceInfo info) implements Command {
    }

    record OpenFailed(String reason, boolean permanent) implements Command {
    }

    record SessionError(String reason) implements Command {
    }

    private record SessionStopped() implements Command {
    }

    private record ExpireTick() implements Command {
    }

    private record MapDeadline() implements Command {
    }

    private record DrainTick(boolean force, ActorRef<Reply> replyTo, long deadlineNanos) implements Command {
    }

    public static Behavior<Command> create(NodeState.DeviceEntry entry, String clientNode, Transport transport,
                                           WeftSettings settings, DeviceExporter exporter, DeviceRegistry registry,
                                           ActorRef<Reply> mapReplyTo) {
        return Behaviors.setup(ctx -> Behaviors.withTimers(timers ->
                new DeviceActor(ctx, timers, entry, clientNode, transport, settings, exporter, registry,
                        mapReplyTo, false)));
    }

    /**
     * Takes over a device a previous actor-system incarnation of this node mapped (see {@link DeviceRegistry}): its
     * queueing device and export are running; this actor opens the mapping again and connects the new path.
     */
    public static Behavior<Command> adopt(NodeState.DeviceEntry entry, String clientNode, Transport transport,
                                          WeftSettings settings, DeviceExporter exporter, DeviceRegistry registry) {
        return Behaviors.setup(ctx -> Behaviors.withTimers(timers ->
                new DeviceActor(ctx, timers, entry, clientNode, transport, settings, exporter, registry,
                        ctx.getSystem().ignoreRef(), true)));
    }

    private final TimerScheduler<Command> timers;
    private final NodeState.DeviceEntry entry;
    private final WeftSettings settings;
    private final DeviceExporter exporter;
    private final DeviceRegistry registry;
    private final ActorRef<Reply> mapReplyTo;
    private final ActorRef<SessionActor.Command> session;
    private final NodeState nodeState;
    private boolean closing;
    private boolean mapAnswered;

    private DeviceActor(ActorContext<Command> ctx, TimerScheduler<Command> timers, NodeState.DeviceEntry entry,
                        String clientNode, Transport transport, WeftSettings settings, DeviceExporter exporter,
                        DeviceRegistry registry, ActorRef<Reply> mapReplyTo, boolean adopted) {
        super(ctx);
        this.timers = timers;
        this.entry = entry;
        this.settings = settings;
        this.exporter = exporter;
        this.registry = registry;
        this.mapReplyTo = mapReplyTo;
        this.mapAnswered = adopted;
        this.nodeState = entry.nodeState;
        entry.transport = transport.name();
        this.session = ctx.spawn(
                Behaviors.supervise(SessionActor.create(entry, clientNode, transport, settings, ctx.getSelf()))
                        .onFailure(SupervisorStrategy.restartWithBackoff(settings.reconnectMinBackoff(),
                                settings.reconnectMaxBackoff(), 0.2)),
                "session-" + URLEncoder.encode(entry.spec.storageNode(), StandardCharsets.UTF_8));
        ctx.watchWith(session, new SessionStopped());
        Duration tick = settings.ioTimeout().dividedBy(4);
        if (tick.compareTo(Duration.ofMillis(20)) < 0) {
            tick = Duration.ofMillis(20);
        } else if (tick.compareTo(Duration.ofSeconds(1)) > 0) {
            tick = Duration.ofSeconds(1);
        }
        timers.startTimerWithFixedDelay("expire", new ExpireTick(), tick);
        if (entry.state == DeviceState.MAPPING) {
            timers.startSingleTimer("map-deadline", new MapDeadline(), settings.mapTimeout());
        } else if (entry.state == DeviceState.READY) {
            // Restarted after a failure, or adopted: the new session has no path yet.
            entry.device.disconnect();
            entry.state(DeviceState.RECONNECTING);
        }
        if (adopted) {
            ctx.getLog().info("device {} adopted by this actor-system incarnation: export {} kept, {} request(s) "
                    + "waiting; re-opening {}:{}", entry.spec.deviceId(), entry.exportedAs, entry.device.inFlight(),
                    entry.spec.storageNode(), entry.spec.path());
        }
    }

    @Override
    public Receive<Command> createReceive() {
        return newReceiveBuilder()
                .onMessage(PathUp.class, this::onPathUp)
                .onMessage(PathDown.class, this::onPathDown)
                .onMessage(GeometryChanged.class, this::onGeometry)
                .onMessage(OpenFailed.class, this::onOpenFailed)
                .onMessage(SessionError.class, e -> {
                    entry.lastError = e.reason();
                    return this;
                })
                .onMessage(ExpireTick.class, t -> {
                    entry.device.expire(System.nanoTime());
                    return this;
                })
                .onMessage(MapDeadline.class, this::onMapDeadline)
                .onMessage(Unmap.class, this::onUnmap)
                .onMessage(DrainTick.class, this::onDrainTick)
                .onMessage(Remap.class, this::onRemap)
                .onMessage(SessionStopped.class, s -> Behaviors.stopped())
                .onSignal(PostStop.class, s -> onStopped())
                .build();
    }

    private Behavior<Command> onPathUp(PathUp up) {
        if (closing) {
            return this;
        }
        entry.device.connect(up.path(), up.info());
        entry.transport = up.transport(); // for auto: the transport the path actually uses
        entry.lastError = "";
        if (entry.state == DeviceState.MAPPING) {
            timers.cancel("map-deadline");
            export();
            entry.state(DeviceState.READY);
            registry.recorded(entry);
            getContext().getLog().info("device {} mapped: {} {} on {} ({} bytes) over {}", entry.spec.deviceId(),
                    entry.spec.path(), entry.spec.mode().wireName(), entry.spec.storageNode(), up.info().size(),
                    up.transport());
            answerMap(Reply.ok("mapped " + entry.spec.deviceId() + " → " + entry.spec.storageNode() + ":"
                    + entry.spec.path() + " (" + entry.spec.mode().wireName() + ", " + up.info().size() + " bytes, "
                    + up.transport() + ")" + (entry.exportedAs.isEmpty() ? "" : " exported at " + entry.exportedAs)));
        } else {
            entry.reconnects.incrementAndGet();
            entry.state(DeviceState.READY);
            getContext().getLog().info("device {} reconnected to {}", entry.spec.deviceId(), entry.spec.storageNode());
        }
        return this;
    }

    private void export() {
        try {
            entry.exportedAs = exporter.export(entry.spec.deviceId(), entry.spec.storageNode() + ":"
                    + entry.spec.path() + " (" + entry.spec.mode().wireName() + ")", entry.device);
            entry.exportError = "";
        } catch (Exception e) {
            entry.exportError = e.toString();
            getContext().getLog().warn("device {} is mapped but could not be exported: {}", entry.spec.deviceId(),
                    e.toString());
        }
    }

    /** The map request gets exactly one answer, however the mapping ends. */
    private void answerMap(Reply reply) {
        if (!mapAnswered) {
            mapAnswered = true;
            mapReplyTo.tell(reply);
        }
    }

    private Behavior<Command> onPathDown(PathDown down) {
        entry.device.disconnect();
        entry.lastError = down.reason();
        if (entry.state == DeviceState.READY || entry.state == DeviceState.DEGRADED) {
            entry.state(DeviceState.RECONNECTING);
            getContext().getLog().warn("device {} lost its path: {}; IO queues for up to {} ms",
                    entry.spec.deviceId(), down.reason(), settings.ioTimeout().toMillis());
        }
        return this;
    }

    private Behavior<Command> onGeometry(GeometryChanged changed) {
        entry.device.updateInfo(changed.info());
        getContext().getLog().info("device {} is now {} bytes", entry.spec.deviceId(), changed.info().size());
        return this;
    }

    private Behavior<Command> onOpenFailed(OpenFailed failed) {
        entry.lastError = failed.reason();
        if (entry.state == DeviceState.MAPPING && failed.permanent()) {
            answerMap(Reply.error("map of " + entry.spec.storageNode() + ":" + entry.spec.path()
                    + " refused: " + failed.reason()));
            return closeNow();
        }
        return this;
    }

    private Behavior<Command> onMapDeadline(MapDeadline deadline) {
        if (entry.state != DeviceState.MAPPING) {
            return this;
        }
        String why = entry.lastError.isEmpty()
                ? "storage node '" + entry.spec.storageNode() + "' not found in the cluster (is it up, with role"
                  + " storage and that weft.node.name?)"
                : entry.lastError;
        answerMap(Reply.error("map of " + entry.spec.storageNode() + ":" + entry.spec.path() + " timed out after "
                + settings.mapTimeout().toMillis() + " ms: " + why));
        return closeNow();
    }

    private Behavior<Command> onRemap(Remap remap) {
        session.tell(new SessionActor.Reconnect());
        remap.replyTo().tell(Reply.ok("remapping " + entry.spec.deviceId()));
        return this;
    }

    private Behavior<Command> onUnmap(Unmap unmap) {
        if (closing) {
            unmap.replyTo().tell(Reply.error(entry.spec.deviceId() + " is already being unmapped"));
            return this;
        }
        closing = true;
        unexport();
        if (unmap.force()) {
            long failed = entry.device.inFlight();
            entry.device.forceClose();
            return finishUnmap(unmap.replyTo(), "force-unmapped " + entry.spec.deviceId() + "; " + failed
                    + " outstanding request(s) failed with EIO");
        }
        entry.device.stopAccepting();
        return onDrainTick(new DrainTick(false, unmap.replyTo(),
                System.nanoTime() + settings.unmapDrainTimeout().toNanos()));
    }

    private Behavior<Command> onDrainTick(DrainTick tick) {
        if (entry.device.inFlight() == 0) {
            entry.device.forceClose();
            return finishUnmap(tick.replyTo(), "unmapped " + entry.spec.deviceId());
        }
        if (System.nanoTime() - tick.deadlineNanos() > 0) {
            long failed = entry.device.inFlight();
            entry.device.forceClose();
            return finishUnmap(tick.replyTo(), "unmapped " + entry.spec.deviceId() + " after "
                    + settings.unmapDrainTimeout().toMillis() + " ms; " + failed + " request(s) failed with EIO");
        }
        timers.startSingleTimer("drain", tick, Duration.ofMillis(10));
        return this;
    }

    private Behavior<Command> finishUnmap(ActorRef<Reply> replyTo, String message) {
        getContext().getLog().info(message);
        registry.forgotten(entry.spec.deviceId()); // before the answer: whoever reads the record next sees it gone
        replyTo.tell(Reply.ok(message));
        return closeNow();
    }

    /** The session closes the mapping on the storage node and stops; this actor stops when it has. */
    private Behavior<Command> closeNow() {
        if (entry.state == DeviceState.MAPPING) {
            answerMap(Reply.error("device " + entry.spec.deviceId() + " was unmapped before it was ready"));
        }
        closing = true;
        entry.device.forceClose();
        entry.state(DeviceState.CLOSED);
        session.tell(new SessionActor.Close());
        return this;
    }

    /** Withdraws the export; an exporter that throws must not stop an unmap half way. */
    private void unexport() {
        try {
            exporter.unexport(entry.spec.deviceId());
        } catch (RuntimeException e) {
            getContext().getLog().warn("device {}: withdrawing the export failed: {}", entry.spec.deviceId(),
                    e.toString());
        }
    }

    private Behavior<Command> onStopped() {
        if (!closing && entry.state != DeviceState.MAPPING && registry.keepsDataPlane(getContext().getSystem())) {
            // This actor-system incarnation ends (the node was downed or removed) and the node goes on: the queueing
            // device and its export belong to the node, and the next incarnation adopts them. Only the path goes
            // (the session's channel closed with this incarnation), so IO queues under the io-timeout.
            entry.device.disconnect();
            entry.state(DeviceState.RECONNECTING);
            entry.lastError = "this node's actor system is restarting (downed or removed from the cluster)";
            entry.session = null;
            entry.sessionState = "searching";
            return this;
        }
        unexport();
        entry.device.forceClose();
        entry.state(DeviceState.CLOSED);
        nodeState.removeDevice(entry.spec.deviceId(), entry);
        if (closing) {
            registry.forgotten(entry.spec.deviceId());
        }
        return this;
    }
}
