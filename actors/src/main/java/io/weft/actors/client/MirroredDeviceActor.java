package io.weft.actors.client;

import io.weft.actors.DeviceState;
import io.weft.actors.MapSpec;
import io.weft.actors.NodeState;
import io.weft.actors.Reply;
import io.weft.actors.WeftSettings;
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
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
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
 *   MAPPING ──every leg up──► READY ◄──all legs in sync── DEGRADED ◄── a leg dropped / its session lost
 *                               │                            │
 *                               └── every leg down ──► RECONNECTING ──a leg with every acknowledged write back──► DEGRADED
 * </pre>
 * A leg whose session comes back is handed to {@link MirrorBlockDevice#legReturned} (only its dirty regions are
 * copied). While no leg is live the queueing device has no path, so IO queues and the io-timeout applies.
 *
 * <p>The map is answered once every leg has opened (sizes must match); a permanent refusal of any leg fails it.
 * Kept apart from {@link DeviceActor} so single-leg devices behave exactly as before.
 */
public final class MirroredDeviceActor extends AbstractBehavior<DeviceActor.Command> {

    /** A session event, tagged with the leg it came from (see {@link #legForwarder}). */
    private record LegEvent(int leg, DeviceActor.Command event) implements DeviceActor.Command {
    }

    private record LegDropped(int leg, String reason) implements DeviceActor.Command {
    }

    private record LegInSync(int leg) implements DeviceActor.Command {
    }

    private record ResyncFailed(int leg, String reason) implements DeviceActor.Command {
    }

    private record LegSessionStopped(int leg) implements DeviceActor.Command {
    }

    private record ExpireTick() implements DeviceActor.Command {
    }

    private record MapDeadline() implements DeviceActor.Command {
    }

    private record DrainTick(boolean force, ActorRef<Reply> replyTo, long deadlineNanos)
            implements DeviceActor.Command {
    }

    public static Behavior<DeviceActor.Command> create(NodeState.DeviceEntry entry, String clientNode,
                                                       Transport transport, WeftSettings settings,
                                                       DeviceExporter exporter, ActorRef<Reply> mapReplyTo) {
        return Behaviors.setup(ctx -> Behaviors.withTimers(timers ->
                new MirroredDeviceActor(ctx, timers, entry, clientNode, transport, settings, exporter, mapReplyTo)));
    }

    private final TimerScheduler<DeviceActor.Command> timers;
    private final NodeState.DeviceEntry entry;
    private final WeftSettings settings;
    private final DeviceExporter exporter;
    private final ActorRef<Reply> mapReplyTo;
    private final NodeState nodeState;
    private final List<MapSpec.Leg> legSpecs;
    private final List<ActorRef<SessionActor.Command>> sessions = new ArrayList<>();
    private final NodeState.DeviceEntry[] legEntries;
    private final BlockDevice[] pendingPaths;
    private final DeviceInfo[] pendingInfos;
    private LegPath[] legPaths;
    private MirrorBlockDevice mirror;
    private int sessionsStopped;
    private boolean closing;
    private boolean mapAnswered;

    private MirroredDeviceActor(ActorContext<DeviceActor.Command> ctx, TimerScheduler<DeviceActor.Command> timers,
                                NodeState.DeviceEntry entry, String clientNode, Transport transport,
                                WeftSettings settings, DeviceExporter exporter, ActorRef<Reply> mapReplyTo) {
        super(ctx);
        this.timers = timers;
        this.entry = entry;
        this.settings = settings;
        this.exporter = exporter;
        this.mapReplyTo = mapReplyTo;
        this.nodeState = entry.nodeState;
        this.legSpecs = entry.spec.legs();
        int n = legSpecs.size();
        this.legEntries = new NodeState.DeviceEntry[n];
        this.pendingPaths = new BlockDevice[n];
        this.pendingInfos = new DeviceInfo[n];
        entry.transport = transport.name();
        for (int i = 0; i < n; i++) {
            // A per-leg entry carries the leg's session view; its queueing device is never used.
            legEntries[i] = new NodeState.DeviceEntry(nodeState, entry.spec.leg(i).withTransport(transport.name()),
                    entry.device);
            ActorRef<DeviceActor.Command> forwarder = ctx.spawn(legForwarder(i, ctx.getSelf()), "leg-" + i);
            ActorRef<SessionActor.Command> session = ctx.spawn(
                    Behaviors.supervise(SessionActor.create(legEntries[i], clientNode, transport, settings,
                                    forwarder))
                            .onFailure(SupervisorStrategy.restartWithBackoff(settings.reconnectMinBackoff(),
                                    settings.reconnectMaxBackoff(), 0.2)),
                    "session-" + URLEncoder.encode(legSpecs.get(i).storageNode(), StandardCharsets.UTF_8));
            ctx.watchWith(session, new LegSessionStopped(i));
            sessions.add(session);
        }
        entry.legSessions = List.of(legEntries);
        Duration tick = settings.ioTimeout().dividedBy(4);
        if (tick.compareTo(Duration.ofMillis(20)) < 0) {
            tick = Duration.ofMillis(20);
        } else if (tick.compareTo(Duration.ofSeconds(1)) > 0) {
            tick = Duration.ofSeconds(1);
        }
        timers.startTimerWithFixedDelay("expire", new ExpireTick(), tick);
        timers.startSingleTimer("map-deadline", new MapDeadline(), settings.mapTimeout());
    }

    /** Tags a leg session's messages with the leg index (message adapters are one per class, so a child does it). */
    private static Behavior<DeviceActor.Command> legForwarder(int leg, ActorRef<DeviceActor.Command> device) {
        return Behaviors.receive(DeviceActor.Command.class)
                .onAnyMessage(m -> {
                    device.tell(new LegEvent(leg, m));
                    return Behaviors.same();
                })
                .build();
    }

    @Override
    public Receive<DeviceActor.Command> createReceive() {
        return newReceiveBuilder()
                .onMessage(LegEvent.class, this::onLegEvent)
                .onMessage(LegDropped.class, this::onLegDropped)
                .onMessage(LegInSync.class, s -> {
                    getContext().getLog().info("device {}: leg {} ({}) in sync", entry.spec.deviceId(), s.leg(),
                            legSpecs.get(s.leg()));
                    return updateState();
                })
                .onMessage(ResyncFailed.class, f -> {
                    entry.lastError = "resync of leg " + f.leg() + " failed: " + f.reason();
                    getContext().getLog().warn("device {}: {}", entry.spec.deviceId(), entry.lastError);
                    return updateState();
                })
                .onMessage(ExpireTick.class, t -> {
                    entry.device.expire(System.nanoTime());
                    return this;
                })
                .onMessage(MapDeadline.class, this::onMapDeadline)
                .onMessage(DeviceActor.Unmap.class, this::onUnmap)
                .onMessage(DrainTick.class, this::onDrainTick)
                .onMessage(DeviceActor.Remap.class, r -> {
                    sessions.forEach(s -> s.tell(new SessionActor.Reconnect()));
                    r.replyTo().tell(Reply.ok("remapping " + entry.spec.deviceId()));
                    return this;
                })
                .onMessage(LegSessionStopped.class, s -> ++sessionsStopped == sessions.size()
                        ? Behaviors.stopped() : this)
                .onSignal(PostStop.class, s -> onStopped())
                .build();
    }

    private Behavior<DeviceActor.Command> onLegEvent(LegEvent e) {
        int leg = e.leg();
        DeviceActor.Command event = e.event();
        if (event instanceof DeviceActor.PathUp up) {
            return onPathUp(leg, up);
        } else if (event instanceof DeviceActor.PathDown down) {
            return onPathDown(leg, down.reason());
        } else if (event instanceof DeviceActor.OpenFailed failed) {
            entry.lastError = "leg " + leg + " (" + legSpecs.get(leg) + "): " + failed.reason();
            if (entry.state == DeviceState.MAPPING && failed.permanent()) {
                answerMap(Reply.error("map of leg " + legSpecs.get(leg) + " refused: " + failed.reason()));
                return closeNow();
            }
        } else if (event instanceof DeviceActor.SessionError err) {
            entry.lastError = "leg " + leg + ": " + err.reason();
        } else if (event instanceof DeviceActor.GeometryChanged) {
            // Mirror legs keep the size they were mapped with; resizing a mirrored device is not supported.
            getContext().getLog().info("device {}: leg {} changed size; mirrored devices keep their size",
                    entry.spec.deviceId(), leg);
        }
        return this;
    }

    private Behavior<DeviceActor.Command> onPathUp(int leg, DeviceActor.PathUp up) {
        if (closing) {
            return this;
        }
        entry.transport = up.transport();
        if (mirror == null) {
            pendingPaths[leg] = up.path();
            pendingInfos[leg] = up.info();
            for (BlockDevice p : pendingPaths) {
                if (p == null) {
                    return this; // wait for every leg's first open
                }
            }
            return buildMirror();
        }
        legPaths[leg].connect(up.path());
        entry.reconnects.incrementAndGet();
        if (mirror.legState(leg) == LegState.FAILED) {
            returnLeg(leg);
        }
        getContext().getLog().info("device {}: leg {} ({}) reconnected", entry.spec.deviceId(), leg,
                legSpecs.get(leg));
        return updateState();
    }

    /**
     * The mirror dropped a leg. If its session still has a path (the leg answered an error or was too slow, or an old
     * request failed after a quick reconnect), the session is made to re-open: that revokes the old mapping on the
     * storage node, so none of the old requests can land, and the next path up returns the leg for a resync.
     */
    private Behavior<DeviceActor.Command> onLegDropped(LegDropped d) {
        entry.lastError = "leg " + d.leg() + " (" + legSpecs.get(d.leg()) + ") dropped: " + d.reason();
        getContext().getLog().warn("device {}: {}", entry.spec.deviceId(), entry.lastError);
        if (!closing && legPaths[d.leg()].connected()) {
            legPaths[d.leg()].disconnect();
            sessions.get(d.leg()).tell(new SessionActor.Reconnect());
        }
        return updateState();
    }

    /** Hands a reconnected, dropped leg back to the mirror: it copies the leg's dirty regions in the background. */
    private void returnLeg(int leg) {
        try {
            mirror.legReturned(leg);
        } catch (IllegalStateException notYet) {
            // No in-sync leg to copy from and this one is not authoritative: it must wait for the leg that is.
            entry.lastError = "leg " + leg + " waits: " + notYet.getMessage();
        }
    }

    private Behavior<DeviceActor.Command> buildMirror() {
        long size = pendingInfos[0].size();
        for (int i = 1; i < pendingInfos.length; i++) {
            if (pendingInfos[i].size() != size) {
                answerMap(Reply.error("mirror legs differ in size: " + legSpecs.get(0) + " is " + size + " bytes, "
                        + legSpecs.get(i) + " is " + pendingInfos[i].size() + " bytes; all legs must be the same"
                        + " size"));
                return closeNow();
            }
        }
        Path wib = settings.dataDir().resolve(entry.spec.deviceId() + ".wib");
        WriteIntentBitmap bitmap;
        try {
            Files.createDirectories(wib.getParent());
            bitmap = Files.exists(wib) ? WriteIntentBitmap.open(wib)
                    : WriteIntentBitmap.create(wib, size, WriteIntentBitmap.DEFAULT_REGION_SIZE);
            if (bitmap.deviceSize() != size) {
                bitmap.close();
                throw new IOException(wib + " is for a " + bitmap.deviceSize() + "-byte device, the legs have "
                        + size + " bytes; remove it to start over with a full sync");
            }
        } catch (IOException | RuntimeException e) {
            answerMap(Reply.error("map of mirrored device " + entry.spec.deviceId() + " failed: write-intent bitmap: "
                    + e.getMessage()));
            return closeNow();
        }
        legPaths = new LegPath[pendingPaths.length];
        List<BlockDevice> legs = new ArrayList<>();
        for (int i = 0; i < pendingPaths.length; i++) {
            legPaths[i] = new LegPath(legSpecs.get(i).toString(), pendingInfos[i], pendingPaths[i]);
            legs.add(legPaths[i]);
        }
        mirror = new MirrorBlockDevice(legs, bitmap, MirrorOptions.defaults());
        ActorRef<DeviceActor.Command> self = getContext().getSelf();
        mirror.addListener(new MirrorListener() {
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
        });
        entry.mirror = mirror;
        // A bitmap reopened after a client restart starts the legs that were out FAILED: they are up, return them.
        for (int i = 0; i < legPaths.length; i++) {
            if (mirror.legState(i) == LegState.FAILED) {
                returnLeg(i);
            }
        }
        timers.cancel("map-deadline");
        entry.lastError = "";
        entry.device.connect(mirror, mirror.info());
        export();
        updateState();
        getContext().getLog().info("device {} mapped: mirror of {} ({} bytes, {}) over {}", entry.spec.deviceId(),
                legSpecs, size, entry.spec.mode().wireName(), entry.transport);
        answerMap(Reply.ok("mapped " + entry.spec.deviceId() + " → mirror of " + legSpecs + " ("
                + entry.spec.mode().wireName() + ", " + size + " bytes, " + entry.transport + ")"
                + (entry.exportedAs.isEmpty() ? "" : " exported at " + entry.exportedAs)));
        return this;
    }

    private Behavior<DeviceActor.Command> onPathDown(int leg, String reason) {
        if (mirror == null) {
            pendingPaths[leg] = null;
            return this;
        }
        legPaths[leg].disconnect();
        entry.lastError = "leg " + leg + " (" + legSpecs.get(leg) + "): " + reason;
        getContext().getLog().warn("device {}: leg {} lost its path: {}", entry.spec.deviceId(), leg, reason);
        return updateState();
    }

    /**
     * READY when every leg is connected and in sync, RECONNECTING (IO queues) when no leg can serve, else DEGRADED.
     * A leg counts as serving while it is connected and IN_SYNC or RESYNCING (the mirror drops it on its next error).
     */
    private Behavior<DeviceActor.Command> updateState() {
        if (mirror == null || closing) {
            return this;
        }
        boolean anyServing = false;
        boolean allInSync = true;
        for (int i = 0; i < legPaths.length; i++) {
            LegState s = mirror.legState(i);
            boolean connected = legPaths[i].connected();
            anyServing |= connected && s == LegState.IN_SYNC;
            allInSync &= connected && s == LegState.IN_SYNC;
        }
        DeviceState next = !anyServing ? DeviceState.RECONNECTING
                : allInSync ? DeviceState.READY : DeviceState.DEGRADED;
        if (next == DeviceState.RECONNECTING && entry.device.connected()) {
            entry.device.disconnect();
            getContext().getLog().warn("device {}: no leg left; IO queues for up to {} ms", entry.spec.deviceId(),
                    settings.ioTimeout().toMillis());
        } else if (next != DeviceState.RECONNECTING && !entry.device.connected()) {
            entry.device.connect(mirror, mirror.info());
        }
        if (next != entry.state) {
            getContext().getLog().info("device {} is {}", entry.spec.deviceId(), next);
        }
        entry.state(next);
        return this;
    }

    private void export() {
        try {
            entry.exportedAs = exporter.export(entry.spec.deviceId(), "mirror of " + legSpecs + " ("
                    + entry.spec.mode().wireName() + ")", entry.device);
            entry.exportError = "";
        } catch (Exception e) {
            entry.exportError = e.toString();
            getContext().getLog().warn("device {} is mapped but could not be exported: {}", entry.spec.deviceId(),
                    e.toString());
        }
    }

    private void answerMap(Reply reply) {
        if (!mapAnswered) {
            mapAnswered = true;
            mapReplyTo.tell(reply);
        }
    }

    private Behavior<DeviceActor.Command> onMapDeadline(MapDeadline deadline) {
        if (entry.state != DeviceState.MAPPING) {
            return this;
        }
        StringBuilder missing = new StringBuilder();
        for (int i = 0; i < legSpecs.size(); i++) {
            if (pendingPaths[i] == null) {
                missing.append(missing.length() == 0 ? "" : ", ").append(legSpecs.get(i));
            }
        }
        answerMap(Reply.error("map of mirrored device " + entry.spec.deviceId() + " timed out after "
                + settings.mapTimeout().toMillis() + " ms; legs not open: " + missing
                + (entry.lastError.isEmpty() ? "" : " (" + entry.lastError + ")")));
        return closeNow();
    }

    private Behavior<DeviceActor.Command> onUnmap(DeviceActor.Unmap unmap) {
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

    private Behavior<DeviceActor.Command> onDrainTick(DrainTick tick) {
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

    private Behavior<DeviceActor.Command> finishUnmap(ActorRef<Reply> replyTo, String message) {
        getContext().getLog().info(message);
        replyTo.tell(Reply.ok(message));
        return closeNow();
    }

    /** Every leg session closes its mapping and stops; this actor stops when all have. */
    private Behavior<DeviceActor.Command> closeNow() {
        if (entry.state == DeviceState.MAPPING) {
            answerMap(Reply.error("device " + entry.spec.deviceId() + " was unmapped before it was ready"));
        }
        closing = true;
        entry.device.forceClose();
        closeMirror();
        entry.state(DeviceState.CLOSED);
        sessions.forEach(s -> s.tell(new SessionActor.Close()));
        return this;
    }

    /** Closing the mirror persists the bitmap (the legs are {@link LegPath}s: their channels stay the sessions'). */
    private void closeMirror() {
        if (mirror != null) {
            mirror.close();
        }
    }

    private void unexport() {
        try {
            exporter.unexport(entry.spec.deviceId());
        } catch (RuntimeException e) {
            getContext().getLog().warn("device {}: withdrawing the export failed: {}", entry.spec.deviceId(),
                    e.toString());
        }
    }

    private Behavior<DeviceActor.Command> onStopped() {
        unexport();
        entry.device.forceClose();
        closeMirror();
        entry.state(DeviceState.CLOSED);
        nodeState.removeDevice(entry.spec.deviceId(), entry);
        return this;
    }
}
