package io.weft.actors.client;

import io.weft.actors.DeviceState;
import io.weft.actors.MapSpec;
import io.weft.actors.NodeState;
import io.weft.actors.NodeStateFiles;
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
import java.util.Arrays;
import java.util.Collections;
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
 *   MAPPING ──every leg up──► READY ◄──all legs in sync── DEGRADED ◄── a leg dropped / its session lost
 *                               │                            │
 *                               └── every leg down ──► RECONNECTING ──a leg with every acknowledged write back──► DEGRADED
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

    /** A session event, tagged with the leg position and session generation it came from (see {@link #legForwarder}). */
    private record LegEvent(int leg, long generation, DeviceActor.Command event) implements DeviceActor.Command {
    }

    private record AddDeadline(long generation) implements DeviceActor.Command {
    }

    /** A leg being added: its session is opening; the leg joins the mirror at its first path up. */
    private record PendingAdd(int position, long generation, MapSpec.Leg leg, ActorRef<Reply> replyTo) {
    }

    private record LegDropped(int leg, String reason) implements DeviceActor.Command {
    }

    private record LegInSync(int leg) implements DeviceActor.Command {
    }

    private record ResyncFailed(int leg, String reason) implements DeviceActor.Command {
    }

    private record LegSessionStopped(ActorRef<SessionActor.Command> session) implements DeviceActor.Command {
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

    private static final int POSITIONS = MirrorBlockDevice.MAX_LEGS;

    private final TimerScheduler<DeviceActor.Command> timers;
    private final NodeState.DeviceEntry entry;
    private final String clientNode;
    private final Transport transport;
    private final WeftSettings settings;
    private final DeviceExporter exporter;
    private final DeviceRegistry registry;
    private final ActorRef<Reply> mapReplyTo;
    private final NodeState nodeState;
    private final LegFile legFile;
    // Per mirror position (null = empty): the leg, its session, the session's view, its LegPath once in the mirror.
    private final MapSpec.Leg[] legs = new MapSpec.Leg[POSITIONS];
    @SuppressWarnings("unchecked")
    private final ActorRef<SessionActor.Command>[] sessions = new ActorRef[POSITIONS];
    private final NodeState.DeviceEntry[] legEntries = new NodeState.DeviceEntry[POSITIONS];
    private final LegPath[] legPaths = new LegPath[POSITIONS];
    /** Bumped per session spawned at a position, so a removed leg's late events never reach its successor. */
    private final long[] legGeneration = new long[POSITIONS];
    private final Set<ActorRef<SessionActor.Command>> liveSessions = new HashSet<>();
    /** Why a leg's session last lost its path (null while it has one): says what a following drop was caused by. */
    private final String[] pathDownReason = new String[POSITIONS];
    // Until the mirror exists: each leg's first path.
    private final BlockDevice[] pendingPaths = new BlockDevice[POSITIONS];
    private final DeviceInfo[] pendingInfos = new DeviceInfo[POSITIONS];
    /** Positions whose leg the leg file did not know: they get a full sync when the mirror is built. */
    private int unknownLegs;
    private String layoutError = "";
    private PendingAdd pendingAdd;
    private long sessionSeq;
    private MirrorBlockDevice mirror;
    /** This actor's listener on the mirror: removed when an incarnation leaves the mirror to the next one. */
    private MirrorListener mirrorListener;
    private boolean closing;
    private boolean mapAnswered;

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
        this.exporter = exporter;
        this.mapReplyTo = mapReplyTo;
        this.nodeState = entry.nodeState;
        entry.transport = transport.name();
        this.legFile = new LegFile(settings.dataDir().resolve(entry.spec.deviceId() + NodeStateFiles.LEGS_SUFFIX));
        if (adopted) {
            takeOver();
        } else {
            placeLegs(Files.exists(wibPath()));
        }
        for (int i = 0; i < POSITIONS; i++) {
            if (legs[i] != null) {
                spawnSession(i, legs[i], "session-" + URLEncoder.encode(legs[i].storageNode(), StandardCharsets.UTF_8));
            }
        }
        publishLegs();
        Duration tick = settings.ioTimeout().dividedBy(4);
        if (tick.compareTo(Duration.ofMillis(20)) < 0) {
            tick = Duration.ofMillis(20);
        } else if (tick.compareTo(Duration.ofSeconds(1)) > 0) {
            tick = Duration.ofSeconds(1);
        }
        timers.startTimerWithFixedDelay("expire", new ExpireTick(), tick);
        if (adopted) {
            ctx.getLog().info("device {} adopted by this actor-system incarnation: mirror of {} and export {} kept, {}"
                    + " request(s) waiting; re-opening its legs", entry.spec.deviceId(), currentLegs(),
                    entry.exportedAs, entry.device.inFlight());
        } else {
            timers.startSingleTimer("map-deadline", new MapDeadline(), settings.mapTimeout());
        }
    }

    /**
     * Adoption: the mirror, its legs by position and their {@link LegPath}s (all without a path) as the previous
     * incarnation left them; the map was answered long ago.
     */
    private void takeOver() {
        mapAnswered = true;
        mirror = entry.mirror;
        List<MapSpec.Leg> positions = entry.legPositions;
        List<BlockDevice> paths = entry.legDevices;
        for (int i = 0; i < POSITIONS && i < positions.size(); i++) {
            legs[i] = positions.get(i);
            legPaths[i] = legs[i] == null ? null : (LegPath) paths.get(i);
        }
        listenToMirror();
        entry.device.disconnect();
        entry.state(DeviceState.RECONNECTING);
    }

    private Path wibPath() {
        return settings.dataDir().resolve(entry.spec.deviceId() + NodeStateFiles.BITMAP_SUFFIX);
    }

    /**
     * Decides each mapped leg's position. A fresh mirror (no bitmap yet): the map's order. An existing bitmap with a
     * leg file: a leg the file names goes back to its position (the bitmap's in-sync and full-sync masks are per
     * position); a leg it does not name takes a free position and a full sync; legs the file names but the map
     * does not are left out (their positions become empty, so a later map of them full-syncs them too).
     */
    private void placeLegs(boolean bitmapExists) {
        List<MapSpec.Leg> wanted = entry.spec.legs();
        MapSpec.Leg[] known = null;
        if (bitmapExists) {
            try {
                known = legFile.read();
            } catch (IOException | RuntimeException e) {
                layoutError = legFile.path() + " is unreadable (" + e.getMessage() + "); to start over, remove it"
                        + " and " + wibPath().getFileName() + ", map the legs again (a new mirror assumes its legs"
                        + " identical) and run `weft leg resync " + entry.spec.deviceId() + " INDEX --full` for"
                        + " every leg but the one that holds the data";
            }
        }
        if (known == null) {
            for (int i = 0; i < wanted.size(); i++) {
                legs[i] = wanted.get(i);
            }
            return;
        }
        List<MapSpec.Leg> unknown = new ArrayList<>();
        for (MapSpec.Leg leg : wanted) {
            int at = Arrays.asList(known).indexOf(leg);
            if (at >= 0) {
                legs[at] = leg;
            } else {
                unknown.add(leg);
            }
        }
        if (unknown.size() == wanted.size()) {
            layoutError = "none of the legs " + wanted + " is one of the legs " + legFile.describe(known) + " that "
                    + wibPath() + " tracks; map at least one of those, or remove " + wibPath().getFileName() + " and "
                    + legFile.path().getFileName() + " to start a new mirror (its legs are then assumed identical)";
        }
        for (MapSpec.Leg leg : unknown) {
            for (int i = 0; i < POSITIONS; i++) {
                if (legs[i] == null && (known[i] == null || !wanted.contains(known[i]))) {
                    legs[i] = leg;
                    unknownLegs |= 1 << i;
                    break;
                }
            }
        }
    }

    private void spawnSession(int position, MapSpec.Leg leg, String name) {
        long generation = ++legGeneration[position];
        // A per-leg entry carries the leg's session view; its queueing device is never used.
        legEntries[position] = new NodeState.DeviceEntry(nodeState,
                new MapSpec(entry.spec.deviceId(), leg.storageNode(), leg.path(), entry.spec.mode(), transport.name()),
                entry.device);
        ActorContext<DeviceActor.Command> ctx = getContext();
        ActorRef<DeviceActor.Command> forwarder = ctx.spawn(legForwarder(position, generation, ctx.getSelf()),
                "leg-" + position + "-" + generation);
        ActorRef<SessionActor.Command> session = ctx.spawn(
                Behaviors.supervise(SessionActor.create(legEntries[position], clientNode, transport, settings,
                                forwarder))
                        .onFailure(SupervisorStrategy.restartWithBackoff(settings.reconnectMinBackoff(),
                                settings.reconnectMaxBackoff(), 0.2)),
                name);
        ctx.watchWith(session, new LegSessionStopped(session));
        sessions[position] = session;
        liveSessions.add(session);
    }

    /** Tags a leg session's messages with the leg position (message adapters are one per class, so a child does it). */
    private static Behavior<DeviceActor.Command> legForwarder(int leg, long generation,
                                                              ActorRef<DeviceActor.Command> device) {
        return Behaviors.receive(DeviceActor.Command.class)
                .onAnyMessage(m -> {
                    device.tell(new LegEvent(leg, generation, m));
                    return Behaviors.same();
                })
                .build();
    }

    /** Publishes the current leg set (by position) for HTTP, JMX and metrics. */
    private void publishLegs() {
        entry.legPositions = Collections.unmodifiableList(Arrays.asList(legs.clone()));
        List<NodeState.DeviceEntry> views = new ArrayList<>(POSITIONS);
        for (int i = 0; i < POSITIONS; i++) {
            views.add(legs[i] == null ? null : legEntries[i]);
        }
        entry.legSessions = Collections.unmodifiableList(views);
        entry.legDevices = Collections.unmodifiableList(Arrays.asList(legPaths.clone()));
    }

    @Override
    public Receive<DeviceActor.Command> createReceive() {
        return newReceiveBuilder()
                .onMessage(LegEvent.class, this::onLegEvent)
                .onMessage(LegDropped.class, this::onLegDropped)
                .onMessage(LegInSync.class, s -> {
                    getContext().getLog().info("device {}: leg {} ({}) in sync", entry.spec.deviceId(), s.leg(),
                            legs[s.leg()]);
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
                    return closing && liveSessions.isEmpty() ? Behaviors.stopped() : this;
                })
                .onSignal(PostStop.class, s -> onStopped())
                .build();
    }

    private Behavior<DeviceActor.Command> onLegEvent(LegEvent e) {
        int leg = e.leg();
        if (e.generation() != legGeneration[leg]) {
            return this; // from the session of a leg that was removed from this position
        }
        boolean adding = pendingAdd != null && pendingAdd.position() == leg;
        if (legs[leg] == null && !adding) {
            return this;
        }
        DeviceActor.Command event = e.event();
        if (event instanceof DeviceActor.PathUp up) {
            return adding ? onAddedLegUp(up) : onPathUp(leg, up);
        } else if (event instanceof DeviceActor.PathDown down) {
            return adding ? this : onPathDown(leg, down.reason());
        } else if (event instanceof DeviceActor.OpenFailed failed) {
            if (adding) {
                if (failed.permanent()) {
                    abortAdd("open of " + pendingAdd.leg() + " refused: " + failed.reason());
                }
                return this;
            }
            entry.lastError = "leg " + leg + " (" + legs[leg] + "): " + failed.reason();
            if (entry.state == DeviceState.MAPPING && failed.permanent()) {
                answerMap(Reply.error("map of leg " + legs[leg] + " refused: " + failed.reason()));
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
            for (int i = 0; i < POSITIONS; i++) {
                if (legs[i] != null && pendingPaths[i] == null) {
                    return this; // wait for every leg's first open
                }
            }
            return buildMirror();
        }
        legPaths[leg].connect(up.path());
        pathDownReason[leg] = null;
        entry.reconnects.incrementAndGet();
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
        entry.lastError = "leg " + d.leg() + " (" + legs[d.leg()] + ") dropped: " + d.reason()
                + (pathDown == null ? "" : " (its path was down: " + pathDown + ")");
        getContext().getLog().warn("device {}: {}", entry.spec.deviceId(), entry.lastError);
        if (!closing && legPaths[d.leg()].connected()) {
            legPaths[d.leg()].disconnect();
            sessions[d.leg()].tell(new SessionActor.Reconnect());
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
        long size = -1;
        MapSpec.Leg first = null;
        for (int i = 0; i < POSITIONS; i++) {
            if (legs[i] == null) {
                continue;
            }
            if (size < 0) {
                size = pendingInfos[i].size();
                first = legs[i];
            } else if (pendingInfos[i].size() != size) {
                answerMap(Reply.error("mirror legs differ in size: " + first + " is " + size + " bytes, "
                        + legs[i] + " is " + pendingInfos[i].size() + " bytes; all legs must be the same size"));
                return closeNow();
            }
        }
        if (!layoutError.isEmpty()) {
            answerMap(Reply.error("map of mirrored device " + entry.spec.deviceId() + " failed: " + layoutError));
            return closeNow();
        }
        Path wib = wibPath();
        WriteIntentBitmap bitmap;
        try {
            Files.createDirectories(wib.getParent());
            boolean reopened = Files.exists(wib);
            bitmap = reopened ? WriteIntentBitmap.open(wib)
                    : WriteIntentBitmap.create(wib, size, WriteIntentBitmap.DEFAULT_REGION_SIZE);
            if (bitmap.deviceSize() != size) {
                bitmap.close();
                throw new IOException(wib + " is for a " + bitmap.deviceSize() + "-byte device, the legs have "
                        + size + " bytes; to start over, remove it and " + legFile.path().getFileName() + ", map"
                        + " the legs again (a new mirror assumes its legs identical) and run `weft leg resync "
                        + entry.spec.deviceId() + " INDEX --full` for every leg but the one that holds the data");
            }
            if (reopened && unknownLegs != 0) {
                // Legs the bitmap never tracked: copy everything to them (before the leg file names them).
                bitmap.updateLegs(bitmap.inSyncMask() & ~unknownLegs, bitmap.fullSyncMask() | unknownLegs);
            }
            // Before the mirror clears the masks of positions this map leaves empty: a leg file naming a leg whose
            // masks are gone would later resync it partially instead of fully.
            legFile.write(legs);
        } catch (IOException | RuntimeException e) {
            answerMap(Reply.error("map of mirrored device " + entry.spec.deviceId() + " failed: write-intent bitmap: "
                    + e.getMessage()));
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
        entry.legDevices = Collections.unmodifiableList(Arrays.asList(legPaths.clone()));
        try {
            mirror = new MirrorBlockDevice(devices, bitmap, MirrorOptions.defaults()
                    .withActivityLog(settings.mirrorActivityExtents(), settings.mirrorActivityExtentSize())
                    .withResyncBytesPerSecond(getContext().getSystem().settings().config()
                            .getBytes("weft.mirror.resync-rate")));
        } catch (RuntimeException e) {
            bitmap.close();
            answerMap(Reply.error("map of mirrored device " + entry.spec.deviceId() + " failed: " + e.getMessage()));
            return closeNow();
        }
        listenToMirror();
        entry.mirror = mirror;
        if (mirror.recoveredExtents() > 0) {
            getContext().getLog().warn("device {}: the last client stopped uncleanly with writes in {} extent(s) of"
                    + " its activity log; resyncing them from leg {} before the other legs serve reads",
                    entry.spec.deviceId(), mirror.recoveredExtents(), firstInSync());
        }
        // A bitmap reopened after a client restart starts the legs that were out FAILED: they are up, return them.
        for (int i = 0; i < POSITIONS; i++) {
            if (legs[i] != null && mirror.legState(i) == LegState.FAILED) {
                returnLeg(i);
            }
        }
        timers.cancel("map-deadline");
        entry.lastError = "";
        entry.device.connect(mirror, mirror.info());
        export();
        updateState();
        registry.recorded(entry);
        List<MapSpec.Leg> mapped = currentLegs();
        getContext().getLog().info("device {} mapped: mirror of {} ({} bytes, {}) over {}", entry.spec.deviceId(),
                mapped, size, entry.spec.mode().wireName(), entry.transport);
        answerMap(Reply.ok("mapped " + entry.spec.deviceId() + " → mirror of " + mapped + " ("
                + entry.spec.mode().wireName() + ", " + size + " bytes, " + entry.transport + ")"
                + (entry.exportedAs.isEmpty() ? "" : " exported at " + entry.exportedAs)));
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

    private List<MapSpec.Leg> currentLegs() {
        List<MapSpec.Leg> out = new ArrayList<>();
        for (MapSpec.Leg l : legs) {
            if (l != null) {
                out.add(l);
            }
        }
        return out;
    }

    // ------------------------------------------------------------------------------------------ legs at run time

    private Behavior<DeviceActor.Command> onAddLeg(AddLeg add) {
        String refused = null;
        int free = -1;
        for (int i = POSITIONS - 1; i >= 0; i--) {
            if (legs[i] == null) {
                free = i;
            }
        }
        if (closing) {
            refused = "device " + entry.spec.deviceId() + " is being unmapped";
        } else if (mirror == null) {
            refused = "device " + entry.spec.deviceId() + " is still mapping; add the leg once it is ready";
        } else if (pendingAdd != null) {
            refused = "leg " + pendingAdd.leg() + " is still being added to " + entry.spec.deviceId()
                    + "; add one leg at a time";
        } else if (free < 0) {
            refused = "device " + entry.spec.deviceId() + " already has " + POSITIONS + " legs, the most a mirror"
                    + " can have; remove one first";
        } else if (currentLegs().stream().anyMatch(l -> l.storageNode().equals(add.leg().storageNode()))) {
            refused = "device " + entry.spec.deviceId() + " already has a leg on storage node "
                    + add.leg().storageNode() + "; mirror legs must be on different storage nodes";
        } else if (!anyServingLeg()) {
            refused = "device " + entry.spec.deviceId() + " has no connected in-sync leg to copy from";
        } else if (mirror.legState(free) != LegState.EMPTY) {
            refused = "mirror position " + free + " is not free (" + mirror.legState(free) + ")";
        }
        if (refused != null) {
            add.replyTo().tell(Reply.error(refused));
            return this;
        }
        spawnSession(free, add.leg(), "session-" + URLEncoder.encode(add.leg().storageNode(), StandardCharsets.UTF_8)
                + "-" + (++sessionSeq));
        pendingAdd = new PendingAdd(free, legGeneration[free], add.leg(), add.replyTo());
        timers.startSingleTimer("add-deadline", new AddDeadline(legGeneration[free]), settings.mapTimeout());
        getContext().getLog().info("device {}: adding leg {} ({}), waiting for it to open", entry.spec.deviceId(),
                free, add.leg());
        return this;
    }

    /** The leg being added has opened: check it, hand it to the mirror (full sync in the background), answer. */
    private Behavior<DeviceActor.Command> onAddedLegUp(DeviceActor.PathUp up) {
        PendingAdd add = pendingAdd;
        int p = add.position();
        long size = mirror.info().size();
        if (closing) {
            return abortAdd("device " + entry.spec.deviceId() + " is being unmapped");
        }
        if (up.info().size() != size) {
            return abortAdd("leg " + add.leg() + " has " + up.info().size() + " bytes, the mirror "
                    + entry.spec.deviceId() + " has " + size + "; a new leg must be the same size");
        }
        DeviceInfo served = mirror.info();
        DeviceInfo offered = up.info();
        if (offered.maxIoSize() < served.maxIoSize() || offered.logicalBlockSize() > served.logicalBlockSize()
                || (offered.readOnly() && !served.readOnly())) {
            // The export already promised its clients these limits; a narrower leg would refuse their requests.
            return abortAdd("leg " + add.leg() + " takes requests of at most " + offered.maxIoSize() + " bytes in "
                    + offered.logicalBlockSize() + "-byte blocks" + (offered.readOnly() ? ", read-only" : "")
                    + "; the device serves up to " + served.maxIoSize() + " bytes in " + served.logicalBlockSize()
                    + "-byte blocks: add a leg over the same transport as the others");
        }
        if (!anyServingLeg()) {
            return abortAdd("device " + entry.spec.deviceId() + " has no connected in-sync leg to copy from");
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
        publishLegs();
        try {
            // After addLeg: the bitmap already says "full sync" for this position when the file first names it.
            legFile.write(legs);
        } catch (IOException e) {
            entry.lastError = "leg " + p + " added, but " + legFile.path() + " could not be written (" + e.getMessage()
                    + "): after a client restart map it again to full-sync it";
            getContext().getLog().warn("device {}: {}", entry.spec.deviceId(), entry.lastError);
        }
        getContext().getLog().info("device {}: leg {} ({}) added; full sync of {} bytes in the background",
                entry.spec.deviceId(), p, add.leg(), size);
        add.replyTo().tell(Reply.ok("added leg " + p + " (" + add.leg() + ") to " + entry.spec.deviceId()
                + "; copying all " + size + " bytes to it in the background, it serves no reads until in sync"));
        return updateState();
    }

    private Behavior<DeviceActor.Command> onAddDeadline(AddDeadline deadline) {
        if (pendingAdd != null && pendingAdd.generation() == deadline.generation()) {
            NodeState.DeviceEntry view = legEntries[pendingAdd.position()];
            return abortAdd("leg " + pendingAdd.leg() + " did not open within " + settings.mapTimeout().toMillis()
                    + " ms" + (view == null || view.lastError.isEmpty() ? "" : " (" + view.lastError + ")"));
        }
        return this;
    }

    private Behavior<DeviceActor.Command> abortAdd(String reason) {
        PendingAdd add = pendingAdd;
        pendingAdd = null;
        timers.cancel("add-deadline");
        int p = add.position();
        sessions[p].tell(new SessionActor.Close());
        sessions[p] = null;
        legEntries[p] = null;
        legGeneration[p]++; // its remaining events are ignored
        getContext().getLog().warn("device {}: adding leg {} failed: {}", entry.spec.deviceId(), add.leg(), reason);
        add.replyTo().tell(Reply.error(reason));
        return this;
    }

    private Behavior<DeviceActor.Command> onRemoveLeg(RemoveLeg remove) {
        int i = remove.index();
        String id = entry.spec.deviceId();
        if (i < 0 || i >= POSITIONS || (legs[i] == null && (pendingAdd == null || pendingAdd.position() != i))) {
            remove.replyTo().tell(Reply.error("no leg " + i + " on device " + id + " (legs: " + describeLegs() + ")"));
            return this;
        }
        if (closing || mirror == null) {
            remove.replyTo().tell(Reply.error("device " + id + (closing ? " is being unmapped" : " is still mapping")));
            return this;
        }
        if (legs[i] == null) {
            remove.replyTo().tell(Reply.error("leg " + i + " of " + id + " is still being added; try again once it"
                    + " has opened"));
            return this;
        }
        // The bitmap's in-sync mask also names the leg that stays authoritative while every leg is down.
        boolean holdsEverything = mirror.legState(i) == LegState.IN_SYNC
                || (mirror.bitmap().inSyncMask() & (1 << i)) != 0;
        if (holdsEverything && !otherInSync(i)) {
            remove.replyTo().tell(Reply.error("leg " + i + " (" + legs[i] + ") is the last in-sync leg of " + id
                    + "; removing it would lose the device's data (add or resync another leg first)"));
            return this;
        }
        MapSpec.Leg removed = legs[i];
        legs[i] = null;
        try {
            // Before the mirror forgets the position: a crash in between must not leave the file naming a leg
            // whose bitmap masks are gone (a later map would resync it partially instead of fully).
            legFile.write(legs);
            mirror.removeLeg(i);
        } catch (IOException | RuntimeException e) {
            legs[i] = removed;
            try {
                legFile.write(legs);
            } catch (IOException again) {
                // The file lacks a leg that is still there: a later map full-syncs it. Safe, only slower.
            }
            remove.replyTo().tell(Reply.error("leg " + i + " (" + removed + ") of " + id + " not removed: "
                    + e.getMessage()));
            return this;
        }
        legPaths[i] = null;
        pathDownReason[i] = null;
        sessions[i].tell(new SessionActor.Close());
        sessions[i] = null;
        legEntries[i] = null;
        legGeneration[i]++;
        publishLegs();
        getContext().getLog().info("device {}: leg {} ({}) removed", id, i, removed);
        remove.replyTo().tell(Reply.ok("removed leg " + i + " (" + removed + ") from " + id + "; its session is"
                + " closed, the other legs keep their indexes (" + describeLegs() + ")"));
        return updateState();
    }

    private Behavior<DeviceActor.Command> onResyncLeg(ResyncLeg resync) {
        int i = resync.index();
        String id = entry.spec.deviceId();
        if (i < 0 || i >= POSITIONS || legs[i] == null) {
            resync.replyTo().tell(Reply.error("no leg " + i + " on device " + id + " (legs: " + describeLegs() + ")"));
            return this;
        }
        if (closing || mirror == null) {
            resync.replyTo().tell(Reply.error("device " + id + (closing ? " is being unmapped" : " is still mapping")));
            return this;
        }
        if (!anyServingLeg()) {
            resync.replyTo().tell(Reply.error("device " + id + " has no connected in-sync leg to copy from"));
            return this;
        }
        if (!legPaths[i].connected()) {
            resync.replyTo().tell(Reply.error("leg " + i + " (" + legs[i] + ") of " + id + " is not connected; it"
                    + " is resynced when its path returns" + (resync.full() ? " (run this again then for a full"
                    + " copy)" : "")));
            return this;
        }
        try {
            mirror.resyncLeg(i, resync.full());
        } catch (IllegalStateException e) {
            resync.replyTo().tell(Reply.error("leg " + i + " (" + legs[i] + ") of " + id + " not resynced: "
                    + e.getMessage()));
            return this;
        }
        String what = resync.full() ? "all " + mirror.info().size() + " bytes" : "the regions the bitmap marks";
        getContext().getLog().info("device {}: resyncing leg {} ({}), {}", id, i, legs[i], what);
        resync.replyTo().tell(Reply.ok("resyncing leg " + i + " (" + legs[i] + ") of " + id + ": copying " + what
                + " to it in the background from an in-sync leg; it serves no reads until in sync"));
        return updateState();
    }

    private int firstInSync() {
        for (int j = 0; j < POSITIONS; j++) {
            if (legs[j] != null && mirror.legState(j) == LegState.IN_SYNC) {
                return j;
            }
        }
        return -1;
    }

    private boolean otherInSync(int leg) {
        for (int j = 0; j < POSITIONS; j++) {
            if (j != leg && legs[j] != null && mirror.legState(j) == LegState.IN_SYNC) {
                return true;
            }
        }
        return false;
    }

    private boolean anyServingLeg() {
        for (int j = 0; j < POSITIONS; j++) {
            if (legs[j] != null && legPaths[j] != null && legPaths[j].connected()
                    && mirror.legState(j) == LegState.IN_SYNC) {
                return true;
            }
        }
        return false;
    }

    private String describeLegs() {
        StringBuilder b = new StringBuilder();
        for (int j = 0; j < POSITIONS; j++) {
            if (legs[j] != null) {
                b.append(b.length() == 0 ? "" : ", ").append(j).append(" = ").append(legs[j]);
            }
        }
        return b.length() == 0 ? "none" : b.toString();
    }

    // ------------------------------------------------------------------------------------------ state

    private Behavior<DeviceActor.Command> onPathDown(int leg, String reason) {
        if (mirror == null) {
            pendingPaths[leg] = null;
            return this;
        }
        legPaths[leg].disconnect();
        pathDownReason[leg] = reason;
        entry.lastError = "leg " + leg + " (" + legs[leg] + "): " + reason;
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
        for (int i = 0; i < POSITIONS; i++) {
            if (legs[i] == null) {
                continue;
            }
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
            entry.exportedAs = exporter.export(entry.spec.deviceId(), "mirror of " + currentLegs() + " ("
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
        for (int i = 0; i < POSITIONS; i++) {
            if (legs[i] != null && pendingPaths[i] == null) {
                missing.append(missing.length() == 0 ? "" : ", ").append(legs[i]);
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
        registry.forgotten(entry.spec.deviceId()); // before the answer: whoever reads the record next sees it gone
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

    private void unexport() {
        try {
            exporter.unexport(entry.spec.deviceId());
        } catch (RuntimeException e) {
            getContext().getLog().warn("device {}: withdrawing the export failed: {}", entry.spec.deviceId(),
                    e.toString());
        }
    }

    private Behavior<DeviceActor.Command> onStopped() {
        if (!closing && mirror != null && registry.keepsDataPlane(getContext().getSystem())) {
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
            entry.state(DeviceState.RECONNECTING);
            entry.lastError = "this node's actor system is restarting (downed or removed from the cluster)";
            return this;
        }
        unexport();
        entry.device.forceClose();
        closeMirror();
        entry.state(DeviceState.CLOSED);
        nodeState.removeDevice(entry.spec.deviceId(), entry);
        if (closing) {
            registry.forgotten(entry.spec.deviceId());
        }
        return this;
    }
}
