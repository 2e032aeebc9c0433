package io.weft.actors.client;

import io.weft.actors.DeviceSnapshot;
import io.weft.actors.DeviceState;
import io.weft.actors.MapSpec;
import io.weft.actors.NodeState;
import io.weft.actors.Reply;
import io.weft.actors.WeftSettings;
import io.weft.actors.protocol.SessionCommand;
import io.weft.actors.transport.Transport;
import io.weft.core.io.BlockDevice;
import io.weft.core.io.DeviceInfo;
import io.weft.core.mirror.LegState;
import io.weft.core.mirror.MirrorBlockDevice;
import io.weft.core.mirror.MirrorListener;
import io.weft.core.mirror.MirrorOptions;
import io.weft.core.mirror.WriteIntentBitmap;
import java.io.IOException;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
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
 * A mirrored device on a client node: one {@link SessionActor} per leg (each with its own {@link ChannelActor}),
 * a {@link MirrorBlockDevice} over the legs' paths (each a {@link LegPath}) with a persistent write-intent bitmap at
 * {@code <data-dir>/<device>.wib}, served through the device's {@link QueueingBlockDevice}.
 *
 * <pre>
 *  MAPPING ──every leg up──► READY ◄──all legs in sync── DEGRADED ◄── a leg dropped / its session lost
 *                              │                            │
 *                              └──every leg down──► RECONNECTING ──a leg with every acknowledged write back──► DEGRADED
 * </pre>
 * A leg whose session comes back is handed to {@link MirrorBlockDevice#legReturned} (only its dirty regions are
 * copied). While no leg is live the queueing device has no path, so IO queues and the io-timeout applies.
 *
 * <p>The map is answered once every leg has opened (sizes must match); a permanent refusal of any leg fails it.
 * Kept apart from {@link DeviceActor} so single-leg devices behave exactly as before.
 *
 * <p>Legs at run time ({@link AddLeg}, {@link RemoveLeg}): a leg's index is its mirror position (0..2). An added leg
 * takes the lowest free position, gets its own session and, once it has opened with the mirror's size,
 * {@link MirrorBlockDevice#addLeg} copies the whole device to it in the background (it serves no reads until then).
 * A removed leg leaves its position empty; the other legs keep their indexes. Which leg sits at which position is
 * kept in {@code <data-dir>/<device>.legs} next to the bitmap (whose leg masks are per position), so a later map —
 * after a client restart — puts every leg it names back at its old position, whatever the order in the map, and
 * gives a leg the file does not know a full sync (see {@link LegFile}).
 *
 * <p>Incarnations (as {@link DeviceActor}): when the node's actor system ends because the cluster downed or removed
 * the node, this actor stops without tearing the device down ({@link DeviceRegistry#keepsDataPlane}): the mirror
 * (its bitmap, its watchdog, its {@link LegPath}s, now without a path), the queueing device (disconnected, so IO
 * queues under the io-timeout) and the export stay. The next incarnation's actor ({@link #adopt}) takes the same
 * mirror over and opens a session per leg again; each leg's path up reconnects its {@link LegPath}, exactly as after
 * a lost session: a leg the mirror dropped meanwhile (a request found it without a path) is resynced from the bitmap.
 *
 * <p>State: this actor alone publishes the entry's {@link DeviceSnapshot} (state, transport, export, last error,
 * reconnects, the mirror, and the legs by position with their session views and devices, through
 * {@link MirrorLegs#publish}); each leg's session publishes its own {@link io.weft.actors.SessionSnapshot} in the
 * leg's view. An adopting actor takes up the mirror and legs from the snapshot its predecessor published last.
 *
 * <p>Its parts elsewhere: {@link DeviceLifecycle} (expiry tick, export, the one map answer, unmap and drain, shared
 * with {@link DeviceActor}), {@link MirrorLayout} (where each leg sits: bitmap and leg file) and {@link MirrorLegs}
 * (the per-position leg state, what it answers, and removing or resyncing a leg). Its leg sessions report
 * {@link SessionActor.Event}s, adapted here and matched to a position by the session that sent them. What stays here
 * — about 700 lines, most of them this comment and the refusals' wording — is what needs the actor: the map (every
 * leg's first open, then the mirror), the legs' path events and the device state, the add-leg protocol (a session,
 * a deadline, the join), the mirror's listener, and stopping or handing over to the next incarnation.
 */
public final class MirroredDeviceActor extends AbstractBehavior<DeviceActor.Command> {

    /**
     * Adds a leg on {@code leg.storageNode()} (a storage node no other leg uses) at the lowest free position: answered
     * once the leg has opened and its full sync has started, or refused (device not ready, all positions in use, size
     * differs, open refused or timed out).
     */
    public record AddLeg(MapSpec.Leg leg, ActorRef<Reply> replyTo) implements DeviceActor.Command {
    }

    /** Removes the leg at position {@code index}; refused for the last in-sync leg. */
    public record RemoveLeg(int index, ActorRef<Reply> replyTo) implements DeviceActor.Command {
    }

    /**
     * Resyncs the leg at position {@code index} from an in-sync leg ({@code full}: every region, else the regions
     * the bitmap marks): answered once the copy has started; refused for the only in-sync leg (the source).
     */
    public record ResyncLeg(int index, boolean full, ActorRef<Reply> replyTo) implements DeviceActor.Command {
    }

    /** What a leg's session reported; the leg is the position whose current session sent it. */
    private record FromLegSession(SessionActor.Event event) implements DeviceActor.Command {
    }

    private record AddDeadline(long attempt) implements DeviceActor.Command {
    }

    /** A leg being added: its session is opening; the leg joins the mirror at its first path up. */
    private record PendingAdd(int position, long attempt, MapSpec.Leg leg, ActorRef<Reply> replyTo) {
    }

    private record LegDropped(int leg, String reason) implements DeviceActor.Command {
    }

    private record LegInSync(int leg) implements DeviceActor.Command {
    }

    private record ResyncFailed(int leg, String reason) implements DeviceActor.Command {
    }

    private record LegSessionStopped(ActorRef<SessionCommand> session) implements DeviceActor.Command {
    }

    private record MapDeadline() implements DeviceActor.Command {
    }

    public static Behavior<DeviceActor.Command> create(NodeState.DeviceEntry entry, String clientNode,
                                                       Transport transport, WeftSettings settings,
                                                       DeviceExporter exporter, DeviceRegistry registry,
                                                       ActorRef<Reply> mapReplyTo) {
        return Behaviors.setup(ctx -> Behaviors.withTimers(timers ->
                new MirroredDeviceActor(ctx, timers, entry, clientNode, transport, settings, exporter, registry,
                        mapReplyTo, false)));
    }

    /**
     * Takes over a mirrored device a previous actor-system incarnation of this node mapped (see
     * {@link DeviceRegistry}): its mirror, queueing device and export are running; this actor opens every leg's
     * session again and reconnects each leg's path as it comes up.
     */
    public static Behavior<DeviceActor.Command> adopt(NodeState.DeviceEntry entry, String clientNode,
                                                      Transport transport, WeftSettings settings,
                                                      DeviceExporter exporter, DeviceRegistry registry) {
        return Behaviors.setup(ctx -> Behaviors.withTimers(timers ->
                new MirroredDeviceActor(ctx, timers, entry, clientNode, transport, settings, exporter, registry,
                        ctx.getSystem().ignoreRef(), true)));
    }

    private static final int POSITIONS = MirrorLegs.POSITIONS;

    private final TimerScheduler<DeviceActor.Command> timers;
    private final NodeState.DeviceEntry entry;
    private final String clientNode;
    private final Transport transport;
    private final WeftSettings settings;
    private final DeviceRegistry registry;
    private final DeviceLifecycle lifecycle;
    private final MirrorLayout layout;
    private final LegFile legFile;
    private final MirrorLegs members;
    // The members' per-position arrays (null = empty position), under shorter names.
    private final MapSpec.Leg[] legs;
    private final LegPath[] legPaths;
    private final String[] pathDownReason;
    private final BlockDevice[] pendingPaths;
    private final DeviceInfo[] pendingInfos;
    /** Every leg session reports here; which leg it is about is the position whose session sent it. */
    private final ActorRef<SessionActor.Event> sessionEvents;
    private final Set<ActorRef<SessionCommand>> liveSessions = new HashSet<>();
    private PendingAdd pendingAdd;
    private long addSeq;
    private long sessionSeq;
    private MirrorBlockDevice mirror;
    /** This actor's listener on the mirror: removed when an incarnation leaves the mirror to the next one. */
    private MirrorListener mirrorListener;

    private MirroredDeviceActor(ActorContext<DeviceActor.Command> ctx, TimerScheduler<DeviceActor.Command> timers,
                                NodeState.DeviceEntry entry, String clientNode, Transport transport,
                                WeftSettings settings, DeviceExporter exporter, DeviceRegistry registry,
                                ActorRef<Reply> mapReplyTo, boolean adopted) {
        super(ctx);
        this.registry = registry;
        this.timers = timers;
        this.entry = entry;
        this.clientNode = clientNode;
        this.transport = transport;
        this.settings = settings;
        this.lifecycle = new DeviceLifecycle(ctx, timers, entry, settings, exporter, registry, mapReplyTo, adopted,
                this::closeNow);
        entry.update(d -> d.withTransport(transport.name()));
        this.layout = new MirrorLayout(settings.dataDir(), entry.spec.deviceId());
        this.legFile = layout.legFile();
        this.members = new MirrorLegs(entry.spec.deviceId(), legFile);
        this.legs = members.legs;
        this.legPaths = members.paths;
        this.pathDownReason = members.pathDownReason;
        this.pendingPaths = members.pendingPaths;
        this.pendingInfos = members.pendingInfos;
        this.sessionEvents = ctx.messageAdapter(SessionActor.Event.class, FromLegSession::new);
        if (adopted) {
            takeOver();
        } else {
            layout.place(entry.spec.legs(), legs);
        }
        for (int i = 0; i < POSITIONS; i++) {
            if (legs[i] != null) {
                spawnSession(i, legs[i], "session-" + URLEncoder.encode(legs[i].storageNode(), StandardCharsets.UTF_8));
            }
        }
        members.publish(entry);
        lifecycle.startExpiryTick();
        if (adopted) {
            ctx.getLog().info("device {} adopted by this actor-system incarnation: mirror of {} and export {} kept, {}"
                    + " request(s) waiting; re-opening its legs", entry.spec.deviceId(), members.current(),
                    entry.snapshot().exportedAs(), entry.device.inFlight());
        } else {
            timers.startSingleTimer("map-deadline", new MapDeadline(), settings.mapTimeout());
        }
    }

    /**
     * Adoption: the mirror, its legs by position and their {@link LegPath}s (all without a path) as the previous
     * incarnation left them; the map was answered long ago.
     */
    private void takeOver() {
        DeviceSnapshot previous = entry.snapshot();
        mirror = previous.mirror();
        List<MapSpec.Leg> positions = previous.legPositions();
        List<BlockDevice> paths = previous.legDevices();
        for (int i = 0; i < POSITIONS && i < positions.size(); i++) {
            legs[i] = positions.get(i);
            legPaths[i] = legs[i] == null ? null : (LegPath) paths.get(i);
        }
        listenToMirror();
        entry.device.disconnect();
        entry.update(d -> d.withState(DeviceState.RECONNECTING));
    }

    private void spawnSession(int position, MapSpec.Leg leg, String name) {
        members.views[position] = new NodeState.SessionView(entry.spec.deviceId(), leg.storageNode());
        ActorContext<DeviceActor.Command> ctx = getContext();
        ActorRef<SessionCommand> session = ctx.spawn(
                Behaviors.supervise(SessionActor.create(
                                new MapSpec(entry.spec.deviceId(), leg.storageNode(), leg.path(), entry.spec.mode(),
                                        transport.name()),
                                members.views[position], clientNode, transport, settings, sessionEvents))
                        .onFailure(SupervisorStrategy.restartWithBackoff(settings.reconnectMinBackoff(),
                                settings.reconnectMaxBackoff(), 0.2)),
                name);
        ctx.watchWith(session, new LegSessionStopped(session));
        members.sessions[position] = session;
        liveSessions.add(session);
    }

    @Override
    public Receive<DeviceActor.Command> createReceive() {
        return newReceiveBuilder()
                .onMessage(FromLegSession.class, this::onLegEvent)
                .onMessage(LegDropped.class, this::onLegDropped)
                .onMessage(LegInSync.class, s -> {
                    getContext().getLog().info("device {}: leg {} ({}) in sync", entry.spec.deviceId(), s.leg(),
                            legs[s.leg()]);
                    return updateState();
                })
                .onMessage(ResyncFailed.class, f -> {
                    String error = entry.update(d -> d.withLastError("resync of leg " + f.leg() + " failed: "
                            + f.reason())).lastError();
                    getContext().getLog().warn("device {}: {}", entry.spec.deviceId(), error);
                    return updateState();
                })
                .onMessage(DeviceLifecycle.ExpireTick.class, t -> {
                    lifecycle.onExpireTick();
                    return this;
                })
                .onMessage(MapDeadline.class, this::onMapDeadline)
                .onMessage(DeviceActor.Unmap.class, u -> lifecycle.onUnmap(u, this))
                .onMessage(DeviceLifecycle.DrainTick.class, t -> lifecycle.onDrainTick(t, this))
                .onMessage(DeviceActor.Remap.class, r -> {
                    liveSessions.forEach(s -> s.tell(new SessionActor.Reconnect()));
                    r.replyTo().tell(Reply.ok("remapping " + entry.spec.deviceId()));
                    return this;
                })
                .onMessage(AddLeg.class, this::onAddLeg)
                .onMessage(AddDeadline.class, this::onAddDeadline)
                .onMessage(RemoveLeg.class, this::onRemoveLeg)
                .onMessage(ResyncLeg.class, this::onResyncLeg)
                .onMessage(LegSessionStopped.class, s -> {
                    liveSessions.remove(s.session());
                    return lifecycle.closing() && liveSessions.isEmpty() ? Behaviors.stopped() : this;
                })
                .onSignal(PostStop.class, s -> onStopped())
                .build();
    }

    private Behavior<DeviceActor.Command> onLegEvent(FromLegSession from) {
        SessionActor.Event event = from.event();
        int leg = members.positionOf(event.session());
        if (leg < 0) {
            return this; // from the session of a leg that was removed from its position
        }
        boolean adding = pendingAdd != null && pendingAdd.position() == leg;
        if (legs[leg] == null && !adding) {
            return this;
        }
        if (event instanceof SessionActor.PathUp up) {
            return adding ? onAddedLegUp(up) : onPathUp(leg, up);
        } else if (event instanceof SessionActor.PathDown down) {
            return adding ? this : onPathDown(leg, down.reason());
        } else if (event instanceof SessionActor.OpenFailed failed) {
            if (adding) {
                if (failed.permanent()) {
                    abortAdd("open of " + pendingAdd.leg() + " refused: " + failed.reason());
                }
                return this;
            }
            String error = "leg " + leg + " (" + legs[leg] + "): " + failed.reason();
            if (entry.update(d -> d.withLastError(error)).state() == DeviceState.MAPPING && failed.permanent()) {
                lifecycle.answerMap(Reply.error("map of leg " + legs[leg] + " refused: " + failed.reason()));
                return closeNow();
            }
        } else if (event instanceof SessionActor.SessionError err) {
            entry.update(d -> d.withLastError("leg " + leg + ": " + err.reason()));
        } else if (event instanceof SessionActor.GeometryChanged) {
            // Mirror legs keep the size they were mapped with; resizing a mirrored device is not supported.
            getContext().getLog().info("device {}: leg {} changed size; mirrored devices keep their size",
                    entry.spec.deviceId(), leg);
        }
        return this;
    }

    private Behavior<DeviceActor.Command> onPathUp(int leg, SessionActor.PathUp up) {
        if (lifecycle.closing()) {
            return this;
        }
        entry.update(d -> d.withTransport(up.transport()));
        if (mirror == null) {
            pendingPaths[leg] = up.path();
            pendingInfos[leg] = up.info();
            return members.allOpened() ? buildMirror() : this; // else wait for every leg's first open
        }
        legPaths[leg].connect(up.path());
        pathDownReason[leg] = null;
        entry.update(DeviceSnapshot::withReconnect);
        if (mirror.legState(leg) == LegState.FAILED) {
            returnLeg(leg);
        }
        getContext().getLog().info("device {}: leg {} ({}) reconnected", entry.spec.deviceId(), leg, legs[leg]);
        return updateState();
    }

    /**
     * The mirror dropped a leg. If its session still has a path (the leg answered an error or was too slow, or an old
     * request failed after a quick reconnect), the session is made to re-open: that revokes the old mapping on the
     * storage node, so none of the old requests can land, and the next path up returns the leg for a resync.
     */
    private Behavior<DeviceActor.Command> onLegDropped(LegDropped d) {
        if (legs[d.leg()] == null) {
            return this; // removed meanwhile
        }
        String pathDown = pathDownReason[d.leg()];
        String error = "leg " + d.leg() + " (" + legs[d.leg()] + ") dropped: " + d.reason()
                + (pathDown == null ? "" : " (its path was down: " + pathDown + ")");
        entry.update(s -> s.withLastError(error));
        getContext().getLog().warn("device {}: {}", entry.spec.deviceId(), error);
        if (!lifecycle.closing() && legPaths[d.leg()].connected()) {
            legPaths[d.leg()].disconnect();
            members.sessions[d.leg()].tell(new SessionActor.Reconnect());
        }
        return updateState();
    }

    /** Hands a reconnected, dropped leg back to the mirror: it copies the leg's dirty regions in the background. */
    private void returnLeg(int leg) {
        try {
            mirror.legReturned(leg);
        } catch (IllegalStateException notYet) {
            // No in-sync leg to copy from and this one is not authoritative: it must wait for the leg that is.
            entry.update(d -> d.withLastError("leg " + leg + " waits: " + notYet.getMessage()));
        }
    }

    private Behavior<DeviceActor.Command> buildMirror() {
        String differing = members.differingSizes();
        if (differing != null) {
            lifecycle.answerMap(Reply.error(differing));
            return closeNow();
        }
        long size = members.openedSize();
        if (!layout.error().isEmpty()) {
            lifecycle.answerMap(Reply.error("map of mirrored device " + entry.spec.deviceId() + " failed: "
                    + layout.error()));
            return closeNow();
        }
        WriteIntentBitmap bitmap;
        try {
            bitmap = layout.openBitmap(size, legs);
        } catch (IOException | RuntimeException e) {
            lifecycle.answerMap(Reply.error("map of mirrored device " + entry.spec.deviceId()
                    + " failed: write-intent bitmap: " + e.getMessage()));
            return closeNow();
        }
        List<BlockDevice> devices = new ArrayList<>();
        for (int i = 0; i < POSITIONS; i++) {
            if (legs[i] != null) {
                legPaths[i] = new LegPath(legs[i].toString(), pendingInfos[i], pendingPaths[i]);
            }
            devices.add(legPaths[i]);
            pendingPaths[i] = null;
        }
        members.publish(entry);
        try {
            mirror = new MirrorBlockDevice(devices, bitmap, MirrorOptions.defaults()
                    .withActivityLog(settings.mirrorActivityExtents(), settings.mirrorActivityExtentSize())
                    .withResyncBytesPerSecond(getContext().getSystem().settings().config()
                            .getBytes("weft.mirror.resync-rate")));
        } catch (RuntimeException e) {
            bitmap.close();
            lifecycle.answerMap(Reply.error("map of mirrored device " + entry.spec.deviceId() + " failed: "
                    + e.getMessage()));
            return closeNow();
        }
        listenToMirror();
        entry.update(d -> d.withMirror(mirror));
        if (mirror.recoveredExtents() > 0) {
            getContext().getLog().warn("device {}: the last client stopped uncleanly with writes in {} extent(s) of"
                    + " its activity log; resyncing them from leg {} before the other legs serve reads",
                    entry.spec.deviceId(), mirror.recoveredExtents(), members.firstInSync(mirror));
        }
        // A bitmap reopened after a client restart starts the legs that were out FAILED: they are up, return them.
        for (int i = 0; i < POSITIONS; i++) {
            if (legs[i] != null && mirror.legState(i) == LegState.FAILED) {
                returnLeg(i);
            }
        }
        timers.cancel("map-deadline");
        entry.update(d -> d.withLastError(""));
        entry.device.connect(mirror, mirror.info());
        lifecycle.export("mirror of " + members.current() + " (" + entry.spec.mode().wireName() + ")");
        updateState();
        registry.recorded(entry);
        DeviceSnapshot now = entry.snapshot();
        List<MapSpec.Leg> mapped = members.current();
        getContext().getLog().info("device {} mapped: mirror of {} ({} bytes, {}) over {}", entry.spec.deviceId(),
                mapped, size, entry.spec.mode().wireName(), now.transport());
        lifecycle.answerMap(Reply.ok("mapped " + entry.spec.deviceId() + " → mirror of " + mapped + " ("
                + entry.spec.mode().wireName() + ", " + size + " bytes, " + now.transport() + ")"
                + (now.exportedAs().isEmpty() ? "" : " exported at " + now.exportedAs())));
        return this;
    }

    /** Mirror events come to this actor (the watchdog and resync threads report through the listener). */
    private void listenToMirror() {
        ActorRef<DeviceActor.Command> self = getContext().getSelf();
        mirrorListener = new MirrorListener() {
            @Override
            public void legDropped(int leg, String reason, long nanoTime) {
                self.tell(new LegDropped(leg, reason));
            }

            @Override
            public void legInSync(int leg, long nanoTime) {
                self.tell(new LegInSync(leg));
            }

            @Override
            public void resyncFailed(int leg, String reason, long nanoTime) {
                self.tell(new ResyncFailed(leg, reason));
            }
        };
        mirror.addListener(mirrorListener);
    }

    // ------------------------------------------------------------------------------------------ legs at run time

    private Behavior<DeviceActor.Command> onAddLeg(AddLeg add) {
        String refused = null;
        int free = members.lowestFree();
        if (lifecycle.closing()) {
            refused = "device " + entry.spec.deviceId() + " is being unmapped";
        } else if (mirror == null) {
            refused = "device " + entry.spec.deviceId() + " is still mapping; add the leg once it is ready";
        } else if (pendingAdd != null) {
            refused = "leg " + pendingAdd.leg() + " is still being added to " + entry.spec.deviceId()
                    + "; add one leg at a time";
        } else {
            refused = members.refuseNewLeg(mirror, add.leg(), free);
        }
        if (refused != null) {
            add.replyTo().tell(Reply.error(refused));
            return this;
        }
        spawnSession(free, add.leg(), "session-" + URLEncoder.encode(add.leg().storageNode(), StandardCharsets.UTF_8)
                + "-" + (++sessionSeq));
        pendingAdd = new PendingAdd(free, ++addSeq, add.leg(), add.replyTo());
        timers.startSingleTimer("add-deadline", new AddDeadline(addSeq), settings.mapTimeout());
        getContext().getLog().info("device {}: adding leg {} ({}), waiting for it to open", entry.spec.deviceId(),
                free, add.leg());
        return this;
    }

    /** The leg being added has opened: check it, hand it to the mirror (full sync in the background), answer. */
    private Behavior<DeviceActor.Command> onAddedLegUp(SessionActor.PathUp up) {
        PendingAdd add = pendingAdd;
        int p = add.position();
        long size = mirror.info().size();
        if (lifecycle.closing()) {
            return abortAdd("device " + entry.spec.deviceId() + " is being unmapped");
        }
        String refused = members.refuseOpenedLeg(mirror, add.leg(), up.info());
        if (refused != null) {
            return abortAdd(refused);
        }
        LegPath path = new LegPath(add.leg().toString(), up.info(), up.path());
        int at;
        try {
            at = mirror.addLeg(path);
        } catch (RuntimeException e) {
            return abortAdd("the mirror refused leg " + add.leg() + ": " + e.getMessage());
        }
        if (at != p) {
            // The mirror takes its lowest empty position, which is this actor's lowest free one; never differs.
            mirror.removeLeg(at);
            return abortAdd("the mirror put leg " + add.leg() + " at position " + at + ", expected " + p);
        }
        legs[p] = add.leg();
        legPaths[p] = path;
        pendingAdd = null;
        timers.cancel("add-deadline");
        members.publish(entry);
        try {
            // After addLeg: the bitmap already says "full sync" for this position when the file first names it.
            legFile.write(legs);
        } catch (IOException e) {
            String error = entry.update(d -> d.withLastError("leg " + p + " added, but " + legFile.path()
                    + " could not be written (" + e.getMessage() + "): after a client restart map it again to"
                    + " full-sync it")).lastError();
            getContext().getLog().warn("device {}: {}", entry.spec.deviceId(), error);
        }
        getContext().getLog().info("device {}: leg {} ({}) added; full sync of {} bytes in the background",
                entry.spec.deviceId(), p, add.leg(), size);
        add.replyTo().tell(Reply.ok("added leg " + p + " (" + add.leg() + ") to " + entry.spec.deviceId()
                + "; copying all " + size + " bytes to it in the background, it serves no reads until in sync"));
        return updateState();
    }

    private Behavior<DeviceActor.Command> onAddDeadline(AddDeadline deadline) {
        if (pendingAdd != null && pendingAdd.attempt() == deadline.attempt()) {
            NodeState.SessionView view = members.views[pendingAdd.position()];
            String why = view == null ? "" : view.snapshot().lastError();
            return abortAdd("leg " + pendingAdd.leg() + " did not open within " + settings.mapTimeout().toMillis()
                    + " ms" + (why.isEmpty() ? "" : " (" + why + ")"));
        }
        return this;
    }

    private Behavior<DeviceActor.Command> abortAdd(String reason) {
        PendingAdd add = pendingAdd;
        pendingAdd = null;
        timers.cancel("add-deadline");
        members.closeSession(add.position());
        getContext().getLog().warn("device {}: adding leg {} failed: {}", entry.spec.deviceId(), add.leg(), reason);
        add.replyTo().tell(Reply.error(reason));
        return this;
    }

    private Behavior<DeviceActor.Command> onRemoveLeg(RemoveLeg remove) {
        int i = remove.index();
        String id = entry.spec.deviceId();
        if (i < 0 || i >= POSITIONS || (legs[i] == null && (pendingAdd == null || pendingAdd.position() != i))) {
            remove.replyTo().tell(Reply.error("no leg " + i + " on device " + id + " (legs: " + members.describe()
                    + ")"));
            return this;
        }
        if (lifecycle.closing() || mirror == null) {
            remove.replyTo().tell(Reply.error("device " + id
                    + (lifecycle.closing() ? " is being unmapped" : " is still mapping")));
            return this;
        }
        if (legs[i] == null) {
            remove.replyTo().tell(Reply.error("leg " + i + " of " + id + " is still being added; try again once it"
                    + " has opened"));
            return this;
        }
        MapSpec.Leg leg = legs[i];
        Reply reply = members.remove(mirror, i);
        if (reply.ok()) {
            members.publish(entry);
            getContext().getLog().info("device {}: leg {} ({}) removed", id, i, leg);
        }
        remove.replyTo().tell(reply);
        return reply.ok() ? updateState() : this;
    }

    private Behavior<DeviceActor.Command> onResyncLeg(ResyncLeg resync) {
        int i = resync.index();
        String id = entry.spec.deviceId();
        if (i < 0 || i >= POSITIONS || legs[i] == null) {
            resync.replyTo().tell(Reply.error("no leg " + i + " on device " + id + " (legs: " + members.describe()
                    + ")"));
            return this;
        }
        if (lifecycle.closing() || mirror == null) {
            resync.replyTo().tell(Reply.error("device " + id
                    + (lifecycle.closing() ? " is being unmapped" : " is still mapping")));
            return this;
        }
        Reply reply = members.resync(mirror, i, resync.full());
        if (reply.ok()) {
            getContext().getLog().info("device {}: resyncing leg {} ({}), {}", id, i, legs[i],
                    resync.full() ? "all " + mirror.info().size() + " bytes" : "the regions the bitmap marks");
        }
        resync.replyTo().tell(reply);
        return reply.ok() ? updateState() : this;
    }

    // ------------------------------------------------------------------------------------------ state

    private Behavior<DeviceActor.Command> onPathDown(int leg, String reason) {
        if (mirror == null) {
            pendingPaths[leg] = null;
            return this;
        }
        legPaths[leg].disconnect();
        pathDownReason[leg] = reason;
        entry.update(d -> d.withLastError("leg " + leg + " (" + legs[leg] + "): " + reason));
        getContext().getLog().warn("device {}: leg {} lost its path: {}", entry.spec.deviceId(), leg, reason);
        return updateState();
    }

    /**
     * READY when every leg is connected and in sync, RECONNECTING (IO queues) when no leg can serve, else DEGRADED.
     * A leg counts as serving while it is connected and IN_SYNC or RESYNCING (the mirror drops it on its next error).
     */
    private Behavior<DeviceActor.Command> updateState() {
        if (mirror == null || lifecycle.closing()) {
            return this;
        }
        DeviceState next = members.deviceState(mirror);
        if (next == DeviceState.RECONNECTING && entry.device.connected()) {
            entry.device.disconnect();
            getContext().getLog().warn("device {}: no leg left; IO queues for up to {} ms", entry.spec.deviceId(),
                    settings.ioTimeout().toMillis());
        } else if (next != DeviceState.RECONNECTING && !entry.device.connected()) {
            entry.device.connect(mirror, mirror.info());
        }
        if (next != entry.snapshot().state()) {
            getContext().getLog().info("device {} is {}", entry.spec.deviceId(), next);
        }
        entry.update(d -> d.withState(next));
        return this;
    }

    private Behavior<DeviceActor.Command> onMapDeadline(MapDeadline deadline) {
        DeviceSnapshot now = entry.snapshot();
        if (now.state() != DeviceState.MAPPING) {
            return this;
        }
        String missing = members.notOpened();
        lifecycle.answerMap(Reply.error("map of mirrored device " + entry.spec.deviceId() + " timed out after "
                + settings.mapTimeout().toMillis() + " ms; legs not open: " + missing
                + (now.lastError().isEmpty() ? "" : " (" + now.lastError() + ")")));
        return closeNow();
    }

    /** Every leg session closes its mapping and stops; this actor stops when all have. */
    private Behavior<DeviceActor.Command> closeNow() {
        lifecycle.beginClose();
        closeMirror();
        entry.update(d -> d.withState(DeviceState.CLOSED));
        if (pendingAdd != null) {
            pendingAdd.replyTo().tell(Reply.error("device " + entry.spec.deviceId() + " was unmapped before leg "
                    + pendingAdd.leg() + " could be added"));
            pendingAdd = null;
        }
        liveSessions.forEach(s -> s.tell(new SessionActor.Close()));
        return liveSessions.isEmpty() ? Behaviors.stopped() : this;
    }

    /** Closing the mirror persists the bitmap (the legs are {@link LegPath}s: their channels stay the sessions'). */
    private void closeMirror() {
        if (mirror != null) {
            mirror.close();
        }
    }

    private Behavior<DeviceActor.Command> onStopped() {
        if (!lifecycle.closing() && mirror != null && registry.keepsDataPlane(getContext().getSystem())) {
            // This actor-system incarnation ends (the node was downed or removed) and the node goes on: the mirror,
            // its queueing device and export belong to the node, and the next incarnation adopts them. Only the
            // legs' paths go (their sessions' channels closed with this incarnation; a request still on one is
            // completed by that channel, and a cancel still reaches it through the LegPath), so IO queues under the
            // io-timeout; the mirror's watchdog keeps running.
            mirror.removeListener(mirrorListener);
            entry.device.disconnect();
            for (LegPath path : legPaths) {
                if (path != null) {
                    path.disconnect();
                }
            }
            entry.update(d -> d.withState(DeviceState.RECONNECTING)
                    .withLastError("this node's actor system is restarting (downed or removed from the cluster)"));
            return this;
        }
        lifecycle.withdraw();
        closeMirror();
        lifecycle.forget();
        return this;
    }
}
