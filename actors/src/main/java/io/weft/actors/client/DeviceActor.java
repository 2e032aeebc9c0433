package io.weft.actors.client;

import io.weft.actors.DeviceSnapshot;
import io.weft.actors.DeviceState;
import io.weft.actors.NodeState;
import io.weft.actors.Reply;
import io.weft.actors.WeftSettings;
import io.weft.actors.protocol.SessionCommand;
import io.weft.actors.transport.Transport;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
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
 * <p>State: this actor alone publishes the entry's {@link DeviceSnapshot} (state, transport, export, last error,
 * reconnects; through {@link DeviceLifecycle} too, which runs on its thread); its session publishes its own
 * {@link io.weft.actors.SessionSnapshot} in {@link NodeState.DeviceEntry#sessionView}. A restarted or adopting
 * actor takes up the snapshot its predecessor published last.
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

    /** What its session reported ({@link SessionActor.Event}), adapted into this actor's protocol. */
    private record FromSession(SessionActor.Event event) implements Command {
    }

    private record SessionStopped() implements Command {
    }

    private record MapDeadline() implements Command {
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
    private final DeviceRegistry registry;
    private final DeviceLifecycle lifecycle;
    private final ActorRef<SessionCommand> session;

    private DeviceActor(ActorContext<Command> ctx, TimerScheduler<Command> timers, NodeState.DeviceEntry entry,
                        String clientNode, Transport transport, WeftSettings settings, DeviceExporter exporter,
                        DeviceRegistry registry, ActorRef<Reply> mapReplyTo, boolean adopted) {
        super(ctx);
        this.timers = timers;
        this.entry = entry;
        this.settings = settings;
        this.registry = registry;
        this.lifecycle = new DeviceLifecycle(ctx, timers, entry, settings, exporter, registry, mapReplyTo, adopted,
                this::closeNow);
        entry.update(d -> d.withTransport(transport.name()));
        this.session = ctx.spawn(
                Behaviors.supervise(SessionActor.create(entry.spec, entry.sessionView, clientNode, transport,
                                settings, ctx.messageAdapter(SessionActor.Event.class, FromSession::new)))
                        .onFailure(SupervisorStrategy.restartWithBackoff(settings.reconnectMinBackoff(),
                                settings.reconnectMaxBackoff(), 0.2)),
                "session-" + URLEncoder.encode(entry.spec.storageNode(), StandardCharsets.UTF_8));
        ctx.watchWith(session, new SessionStopped());
        lifecycle.startExpiryTick();
        DeviceState state = entry.snapshot().state();
        if (state == DeviceState.MAPPING) {
            timers.startSingleTimer("map-deadline", new MapDeadline(), settings.mapTimeout());
        } else if (state == DeviceState.READY) {
            // Restarted after a failure, or adopted: the new session has no path yet.
            entry.device.disconnect();
            entry.update(d -> d.withState(DeviceState.RECONNECTING));
        }
        if (adopted) {
            ctx.getLog().info("device {} adopted by this actor-system incarnation: export {} kept, {} request(s) "
                    + "waiting; re-opening {}:{}", entry.spec.deviceId(), entry.snapshot().exportedAs(),
                    entry.device.inFlight(),
                    entry.spec.storageNode(), entry.spec.path());
        }
    }

    @Override
    public Receive<Command> createReceive() {
        return newReceiveBuilder()
                .onMessage(FromSession.class, this::onSessionEvent)
                .onMessage(DeviceLifecycle.ExpireTick.class, t -> {
                    lifecycle.onExpireTick();
                    return this;
                })
                .onMessage(MapDeadline.class, this::onMapDeadline)
                .onMessage(Unmap.class, u -> lifecycle.onUnmap(u, this))
                .onMessage(DeviceLifecycle.DrainTick.class, t -> lifecycle.onDrainTick(t, this))
                .onMessage(Remap.class, this::onRemap)
                .onMessage(SessionStopped.class, s -> Behaviors.stopped())
                .onSignal(PostStop.class, s -> onStopped())
                .build();
    }

    private Behavior<Command> onSessionEvent(FromSession from) {
        SessionActor.Event event = from.event();
        if (event instanceof SessionActor.PathUp up) {
            return onPathUp(up);
        } else if (event instanceof SessionActor.PathDown down) {
            return onPathDown(down);
        } else if (event instanceof SessionActor.GeometryChanged changed) {
            return onGeometry(changed);
        } else if (event instanceof SessionActor.OpenFailed failed) {
            return onOpenFailed(failed);
        } else if (event instanceof SessionActor.SessionError error) {
            entry.update(d -> d.withLastError(error.reason()));
        }
        return this;
    }

    private Behavior<Command> onPathUp(SessionActor.PathUp up) {
        if (lifecycle.closing()) {
            return this;
        }
        entry.device.connect(up.path(), up.info());
        // For auto: the transport the path actually uses.
        DeviceSnapshot now = entry.update(d -> d.withTransport(up.transport()).withLastError(""));
        if (now.state() == DeviceState.MAPPING) {
            timers.cancel("map-deadline");
            lifecycle.export(entry.spec.storageNode() + ":" + entry.spec.path() + " ("
                    + entry.spec.mode().wireName() + ")");
            String exportedAs = entry.update(d -> d.withState(DeviceState.READY)).exportedAs();
            registry.recorded(entry);
            getContext().getLog().info("device {} mapped: {} {} on {} ({} bytes) over {}", entry.spec.deviceId(),
                    entry.spec.path(), entry.spec.mode().wireName(), entry.spec.storageNode(), up.info().size(),
                    up.transport());
            lifecycle.answerMap(Reply.ok("mapped " + entry.spec.deviceId() + " → " + entry.spec.storageNode() + ":"
                    + entry.spec.path() + " (" + entry.spec.mode().wireName() + ", " + up.info().size() + " bytes, "
                    + up.transport() + ")" + (exportedAs.isEmpty() ? "" : " exported at " + exportedAs)));
        } else {
            entry.update(d -> d.withReconnect().withState(DeviceState.READY));
            getContext().getLog().info("device {} reconnected to {}", entry.spec.deviceId(), entry.spec.storageNode());
        }
        return this;
    }

    private Behavior<Command> onPathDown(SessionActor.PathDown down) {
        entry.device.disconnect();
        DeviceState was = entry.snapshot().state();
        boolean hadPath = was == DeviceState.READY || was == DeviceState.DEGRADED;
        entry.update(d -> hadPath ? d.withLastError(down.reason()).withState(DeviceState.RECONNECTING)
                : d.withLastError(down.reason()));
        if (hadPath) {
            getContext().getLog().warn("device {} lost its path: {}; IO queues for up to {} ms",
                    entry.spec.deviceId(), down.reason(), settings.ioTimeout().toMillis());
        }
        return this;
    }

    private Behavior<Command> onGeometry(SessionActor.GeometryChanged changed) {
        entry.device.updateInfo(changed.info());
        getContext().getLog().info("device {} is now {} bytes", entry.spec.deviceId(), changed.info().size());
        return this;
    }

    private Behavior<Command> onOpenFailed(SessionActor.OpenFailed failed) {
        DeviceSnapshot now = entry.update(d -> d.withLastError(failed.reason()));
        if (now.state() == DeviceState.MAPPING && failed.permanent()) {
            lifecycle.answerMap(Reply.error("map of " + entry.spec.storageNode() + ":" + entry.spec.path()
                    + " refused: " + failed.reason()));
            return closeNow();
        }
        return this;
    }

    private Behavior<Command> onMapDeadline(MapDeadline deadline) {
        DeviceSnapshot now = entry.snapshot();
        if (now.state() != DeviceState.MAPPING) {
            return this;
        }
        String why = now.lastError().isEmpty()
                ? "storage node '" + entry.spec.storageNode() + "' not found in the cluster (is it up, with role"
                  + " storage and that weft.node.name?)"
                : now.lastError();
        lifecycle.answerMap(Reply.error("map of " + entry.spec.storageNode() + ":" + entry.spec.path()
                + " timed out after "
                + settings.mapTimeout().toMillis() + " ms: " + why));
        return closeNow();
    }

    private Behavior<Command> onRemap(Remap remap) {
        session.tell(new SessionActor.Reconnect());
        remap.replyTo().tell(Reply.ok("remapping " + entry.spec.deviceId()));
        return this;
    }

    /** The session closes the mapping on the storage node and stops; this actor stops when it has. */
    private Behavior<Command> closeNow() {
        lifecycle.beginClose();
        entry.update(d -> d.withState(DeviceState.CLOSED));
        session.tell(new SessionActor.Close());
        return this;
    }

    private Behavior<Command> onStopped() {
        if (!lifecycle.closing() && entry.snapshot().state() != DeviceState.MAPPING
                && registry.keepsDataPlane(getContext().getSystem())) {
            // This actor-system incarnation ends (the node was downed or removed) and the node goes on: the queueing
            // device and its export belong to the node, and the next incarnation adopts them. Only the path goes
            // (the session's channel closed with this incarnation), so IO queues under the io-timeout.
            entry.device.disconnect();
            // The session, stopped before this actor, has left its view without a session (see SessionActor).
            entry.update(d -> d.withState(DeviceState.RECONNECTING)
                    .withLastError("this node's actor system is restarting (downed or removed from the cluster)"));
            return this;
        }
        lifecycle.withdraw();
        lifecycle.forget();
        return this;
    }
}
