package io.weft.actors.client;

import io.weft.actors.ChannelActor;
import io.weft.actors.MapSpec;
import io.weft.actors.NodeServices;
import io.weft.actors.NodeState;
import io.weft.actors.Reply;
import io.weft.actors.SessionPhase;
import io.weft.actors.WeftSettings;
import io.weft.actors.cluster.ClusterDirectory;
import io.weft.actors.protocol.CloseMapping;
import io.weft.actors.protocol.LeaseRenewerCommand;
import io.weft.actors.protocol.MappingRevoked;
import io.weft.actors.protocol.OpenRefused;
import io.weft.actors.protocol.OpenReply;
import io.weft.actors.protocol.OpenStore;
import io.weft.actors.protocol.SessionCommand;
import io.weft.actors.protocol.StorageServiceCommand;
import io.weft.actors.protocol.StoreInfoChanged;
import io.weft.actors.protocol.StoreOpened;
import io.weft.actors.transport.MappingChannel;
import io.weft.actors.transport.Transport;
import io.weft.actors.transport.TransportGeometry;
import io.weft.core.io.BlockDevice;
import io.weft.core.io.DeviceInfo;
import io.weft.core.retry.Backoff;
import java.time.Duration;
import java.util.List;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.PostStop;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;
import org.apache.pekko.cluster.ClusterEvent;
import org.apache.pekko.cluster.UniqueAddress;

/**
 * One client device's association with one storage node (an RTRS session): finds the node's storage service from
 * cluster membership ({@link ClusterDirectory}),
 * opens the backing store, keeps the mapping alive through the node's {@link LeaseRenewer} (one batched renewal per
 * storage node and interval for every session, not a heartbeat per device), and re-opens by itself whenever the path
 * is lost.
 *
 * <p>Phases: SEARCHING (no Up storage member reachable from here has the node's name) → OPENING (open sent) →
 * CONNECTING (opened; the {@link ChannelActor} is attaching the data path) → CONNECTED (IO flows; the lease renewed
 * every {@code weft.client.heartbeat-interval}, or, when the storage node counts this data path's heartbeats as
 * renewals ({@link StoreOpened#leaseByDataPath()}), carried by them and audited every
 * {@code weft.client.lease-audit-interval}). The path is lost — and the parent told ({@link Event}), so IO
 * queues — when the node's member is unreachable from here or removed, {@code heartbeat-misses} renewal batches in
 * a row go unanswered, the storage forgets or revokes the mapping, or the channel dies. It then re-opens after an
 * exponential backoff ({@code weft.client.reconnect.*}); a restarted storage node (a new member, a new uid) re-opens
 * once it is Up.
 *
 * <p>State: this actor alone publishes its {@link io.weft.actors.SessionSnapshot} (phase, storage address, mapping
 * id, last error, transport paths, itself) in its {@link NodeState.SessionView}; the node's {@link LeaseRenewer}
 * records the last renewal there, apart.
 *
 * <p>Drills ({@code io.weft.actors.drill}) reach a session through its snapshot's {@code session} and cut it with
 * {@link Cut}: the whole session (as if the transport failed, but re-opened only when the cut ends) or one path of
 * a multipath channel; {@link EndCut} or the cut's own time limit ends it.
 *
 * <p>Supervision: restarted with backoff by its parent on failure (a failed path is replaced: the new
 * incarnation opens again, and the storage node replaces the old mapping because the owner is the same). Its
 * {@link ChannelActor} child is restarted with backoff when the data agent dies.
 */
public final class SessionActor extends AbstractBehavior<SessionCommand> {

    /** Its own messages, from this node; the cross-node ones are in {@code io.weft.actors.protocol}. */
    public interface Command extends SessionCommand {
    }

    /** Drop the path and open again (operator remap). */
    public record Reconnect() implements Command {
    }

    /** Close the mapping on the storage node and stop (unmap). */
    public record Close() implements Command {
    }

    /**
     * Drill: cut this session's transport for at most {@code holdFor}. {@code path} null cuts the whole session: the
     * channel is closed, the device told its path is down, and the session opens again only when the cut ends.
     * {@code path} i takes down only that transport path of a multipath channel (the others carry the IO). Refused
     * (error reply) while another cut runs, without a connected channel for a single-path cut, or when the channel
     * has one path.
     */
    public record Cut(Duration holdFor, Integer path, ActorRef<Reply> replyTo) implements Command {
    }

    /** Drill: end the current cut now (no-op without one); the session reconnects. */
    public record EndCut(ActorRef<Reply> replyTo) implements Command {
    }

    /** A cluster membership or reachability event, folded into {@link #directory}. */
    private record MembershipChanged(ClusterEvent.ClusterDomainEvent event) implements Command {
    }

    private record OpenResult(int attempt, OpenReply reply, Throwable failure) implements Command {
    }

    /** From the node's {@link LeaseRenewer}: {@code missed} renewal batches in a row to the storage node unanswered. */
    public record RenewalsUnanswered(String mappingId, int missed) implements Command {
    }

    private record Channel(ChannelActor.Event event) implements Command {
    }

    private record Retry() implements Command {
    }

    private record CutExpired(long cut) implements Command {
    }

    /**
     * What this session tells its parent (a {@link DeviceActor}, or a {@link MirroredDeviceActor} per leg), which
     * adapts them into its own protocol. Only the parent's behaviour hangs on them; what management shows is in the
     * session's {@link NodeState.SessionView}.
     */
    public sealed interface Event {
        /** The session that reports it: a parent with several (one per mirror leg) tells them apart by it. */
        ActorRef<SessionCommand> session();
    }

    /** A path is up: IO may flow through {@code path}, whose geometry is {@code info}. */
    public record PathUp(ActorRef<SessionCommand> session, DeviceInfo info, BlockDevice path, String mappingId,
                         String transport) implements Event {
    }

    /** The path is gone; IO queues until the next {@link PathUp}. */
    public record PathDown(ActorRef<SessionCommand> session, String reason) implements Event {
    }

    /** The store was resized while mapped. */
    public record GeometryChanged(ActorRef<SessionCommand> session, DeviceInfo info) implements Event {
    }

    /** The storage node refused the open ({@code permanent}: retrying cannot help) or is unreachable for good. */
    public record OpenFailed(ActorRef<SessionCommand> session, String reason, boolean permanent) implements Event {
    }

    /** The session will retry after its backoff, for this reason (an open that got no answer or was refused). */
    public record SessionError(ActorRef<SessionCommand> session, String reason) implements Event {
    }

    /**
     * @param spec   the device id, storage node, path and mode to open (a mirror leg's, for a mirrored device)
     * @param view   where this session publishes its state for management and drills
     * @param events its parent's adapter for {@link Event}s
     */
    public static Behavior<SessionCommand> create(MapSpec spec, NodeState.SessionView view, String clientNode,
                                                  Transport transport, WeftSettings settings,
                                                  ActorRef<Event> events) {
        return Behaviors.setup(ctx -> Behaviors.withTimers(timers ->
                new SessionActor(ctx, timers, spec, view, clientNode, transport, settings, events)));
    }

    private final TimerScheduler<SessionCommand> timers;
    private final MapSpec spec;
    private final NodeState.SessionView view;
    private final String clientNode;
    private final Transport transport;
    private final WeftSettings settings;
    private final ActorRef<Event> parent;
    private final ActorRef<ChannelActor.Event> channelEvents;
    /** This session's view of the cluster: where its storage node's service is. */
    private final ClusterDirectory directory;

    /** The storage node's reachable, Up members (normally one; two while a restarted one's old member lingers). */
    private List<ClusterDirectory.Located<StorageServiceCommand>> reachable = List.of();
    /** The member {@link #storage} is on, or null. */
    private UniqueAddress storageMember;
    private SessionPhase phase = SessionPhase.SEARCHING;
    private int attempt;
    private int channelSeq;
    /** The wait before the next open after a failed one ({@code weft.client.reconnect.*}); reset once connected. */
    private final Backoff backoff;
    private ActorRef<StorageServiceCommand> storage;
    private UniqueAddress lastLost;
    private StoreOpened opened;
    private ActorRef<ChannelActor.Command> channel;
    private String channelId;
    /** The node's lease renewer (one batch per storage node per heartbeat interval, for every session). */
    private final ActorRef<LeaseRenewerCommand> renewer;
    /** The connected channel's own geometry (its per-request limit), or null. */
    private DeviceInfo channelInfo;
    /** The connected channel, or null. */
    private MappingChannel connectedChannel;
    // A drill's cut: active while cutActive; cutPath null = the whole session, else the path cut on cutChannel.
    private boolean cutActive;
    private long cutSeq;
    private Integer cutPath;
    private MappingChannel cutChannel;

    private SessionActor(ActorContext<SessionCommand> ctx, TimerScheduler<SessionCommand> timers, MapSpec spec,
                         NodeState.SessionView view, String clientNode, Transport transport, WeftSettings settings,
                         ActorRef<Event> parent) {
        super(ctx);
        this.timers = timers;
        this.spec = spec;
        this.view = view;
        this.clientNode = clientNode;
        this.transport = transport;
        this.settings = settings;
        this.parent = parent;
        this.backoff = Backoff.exponential(settings.reconnectMinBackoff(), settings.reconnectMaxBackoff());
        this.renewer = LeaseRenewer.of(ctx.getSystem(), clientNode, settings.heartbeatInterval(),
                settings.heartbeatMisses(), settings.leaseAuditInterval());
        this.channelEvents = ctx.messageAdapter(ChannelActor.Event.class, Channel::new);
        this.directory = new ClusterDirectory(ctx.getSystem());
        ClusterDirectory.subscribe(ctx, MembershipChanged::new);
        view.update(v -> v.withSession(ctx.getSelf()).withPhase(SessionPhase.SEARCHING));
        phase = SessionPhase.SEARCHING;
    }

    @Override
    public Receive<SessionCommand> createReceive() {
        return newReceiveBuilder()
                .onMessage(MembershipChanged.class, this::onMembershipChanged)
                .onMessage(OpenResult.class, this::onOpenResult)
                .onMessage(Channel.class, this::onChannel)
                .onMessage(RenewalsUnanswered.class, this::onRenewalsUnanswered)
                .onMessage(StoreInfoChanged.class, this::onInfoChanged)
                .onMessage(MappingRevoked.class, this::onRevoked)
                .onMessage(Reconnect.class, r -> pathLost("remap requested", Duration.ZERO))
                // While a drill holds the session cut, only the end of the cut opens it again.
                .onMessage(Retry.class, r -> cutActive && cutPath == null ? this : tryOpen())
                .onMessage(Cut.class, this::onCut)
                .onMessage(EndCut.class, e -> {
                    endCut();
                    e.replyTo().tell(Reply.ok("cut ended"));
                    return this;
                })
                .onMessage(CutExpired.class, e -> {
                    if (e.cut() == cutSeq) {
                        endCut();
                    }
                    return this;
                })
                .onMessage(Close.class, this::onClose)
                .onSignal(PostStop.class, s -> onStopped())
                .build();
    }

    private Behavior<SessionCommand> onMembershipChanged(MembershipChanged changed) {
        if (!directory.apply(changed.event())) {
            return this;
        }
        reachable = directory.find(NodeServices.STORAGE, spec.storageNode());
        if (storage != null && reachable.stream().noneMatch(l -> l.member().equals(storageMember))) {
            // Unreachable (failure detector), downed, or replaced by a restarted incarnation.
            return pathLost("storage node " + spec.storageNode() + " is unreachable or gone", Duration.ZERO, false);
        }
        if (phase == SessionPhase.SEARCHING) {
            return tryOpen();
        }
        return this;
    }

    private Behavior<SessionCommand> tryOpen() {
        if (phase == SessionPhase.OPENING || phase == SessionPhase.CONNECTING || phase == SessionPhase.CONNECTED) {
            return this;
        }
        reachable = directory.find(NodeServices.STORAGE, spec.storageNode());
        if (reachable.isEmpty()) {
            phase(SessionPhase.SEARCHING);
            if (directory.hidden(NodeServices.STORAGE, spec.storageNode())) {
                // Unreachable from here: its return is announced only if no other member still reports it, so look.
                timers.startSingleTimer("retry", new Retry(), backoff.nextDelay());
            }
            return this;
        }
        // Normally one member; while a restarted node's old incarnation lingers, prefer the one not just lost.
        ClusterDirectory.Located<StorageServiceCommand> located = null;
        for (ClusterDirectory.Located<StorageServiceCommand> l : reachable) {
            if (located == null || located.member().equals(lastLost)) {
                located = l;
            }
        }
        ActorRef<StorageServiceCommand> target = located.ref();
        storage = target;
        storageMember = located.member();
        String address = NodeState.addressOf(getContext().getSystem(), target);
        view.update(v -> v.withStorageAddress(address));
        int thisAttempt = ++attempt;
        phase(SessionPhase.OPENING);
        getContext().ask(OpenReply.class, target, settings.openTimeout(),
                replyTo -> new OpenStore(clientNode, spec.deviceId(), spec.path(),
                        spec.mode(), transport.name(), getContext().getSelf(), replyTo),
                (reply, failure) -> new OpenResult(thisAttempt, reply, failure));
        return this;
    }

    private Behavior<SessionCommand> onOpenResult(OpenResult result) {
        if (result.attempt() != attempt || phase != SessionPhase.OPENING) {
            return this;
        }
        if (result.failure() != null) {
            return retryLater("open of " + spec.path() + " on " + spec.storageNode()
                    + " got no answer within " + settings.openTimeout().toMillis() + " ms");
        }
        if (result.reply() instanceof OpenRefused refused) {
            parent.tell(new OpenFailed(getContext().getSelf(), refused.reason(), refused.permanent()));
            if (refused.permanent()) {
                backoff.jumpToMax();
            }
            return retryLater(refused.reason());
        }
        opened = (StoreOpened) result.reply();
        view.update(v -> v.withMappingId(opened.mappingId()));
        channelId = opened.mappingId() + "-" + (++channelSeq);
        var endpoint = opened.endpoint();
        channel = getContext().spawn(
                ChannelActor.create(channelId, l -> transport.connector().connect(endpoint, l), channelEvents,
                        settings.reconnectMinBackoff(), settings.reconnectMaxBackoff()),
                "channel-" + channelSeq);
        phase(SessionPhase.CONNECTING);
        registerLease();
        return this;
    }

    private Behavior<SessionCommand> onChannel(Channel msg) {
        ChannelActor.Event event = msg.event();
        if (!event.channelId().equals(channelId) || opened == null) {
            return this;
        }
        if (event instanceof ChannelActor.Up up) {
            backoff.reset();
            MappingChannel connected = (MappingChannel) up.channel();
            connectedChannel = connected;
            phase = SessionPhase.CONNECTED;
            view.update(v -> v.withPhase(SessionPhase.CONNECTED).withTransportPaths(connected.pathCount()));
            String carriedBy = connected.transportName() != null ? connected.transportName() : transport.name();
            channelInfo = connected.device().info();
            parent.tell(new PathUp(getContext().getSelf(), TransportGeometry.narrow(opened.info(), channelInfo),
                    connected.device(), opened.mappingId(), carriedBy));
            registerLease();
        } else if (event instanceof ChannelActor.Down down) {
            // The channel actor opens a new agent after its backoff; meanwhile IO queues.
            connectedChannel = null;
            if (phase == SessionPhase.CONNECTED) {
                phase = SessionPhase.CONNECTING;
            }
            view.update(v -> v.withPhase(phase).withTransportPaths(0));
            registerLease();
            if (down.unreachable()) {
                parent.tell(new OpenFailed(getContext().getSelf(), down.reason(), true));
            }
            parent.tell(new PathDown(getContext().getSelf(), "data channel: " + down.reason()));
        }
        return this;
    }

    /**
     * From now on the node's renewer renews this mapping's lease (again, with a changed size, or because the data path
     * came or went): only as an audit while a data path the storage node counts as renewal is connected.
     */
    private void registerLease() {
        boolean carried = opened.leaseByDataPath() && connectedChannel != null && connectedChannel.carriesLiveness();
        renewer.tell(new LeaseRenewer.Register(opened.mappingId(), storage, opened.backend(), opened.info().size(),
                getContext().getSelf(), view, carried));
    }

    private Behavior<SessionCommand> onRenewalsUnanswered(RenewalsUnanswered unanswered) {
        if (opened == null || !unanswered.mappingId().equals(opened.mappingId())) {
            return this;
        }
        return pathLost(unanswered.missed() + " lease renewals in a row unanswered by " + spec.storageNode(),
                Duration.ZERO, false);
    }

    private Behavior<SessionCommand> onInfoChanged(StoreInfoChanged changed) {
        if (opened != null && changed.mappingId().equals(opened.mappingId())) {
            applyInfo(changed.info());
        }
        return this;
    }

    private void applyInfo(DeviceInfo info) {
        opened = new StoreOpened(opened.mappingId(), opened.backendPath(), info, opened.endpoint(),
                opened.backend(), opened.leaseByDataPath());
        registerLease();
        parent.tell(new GeometryChanged(getContext().getSelf(), TransportGeometry.narrow(info, channelInfo)));
    }

    private Behavior<SessionCommand> onRevoked(MappingRevoked revoked) {
        if (opened != null && revoked.mappingId().equals(opened.mappingId())) {
            return pathLost("storage revoked the mapping: " + revoked.reason(), Duration.ZERO);
        }
        return this;
    }

    private Behavior<SessionCommand> onClose(Close close) {
        if (opened != null) {
            renewer.tell(new LeaseRenewer.Unregister(opened.mappingId()));
            opened.backend().tell(new CloseMapping(opened.mappingId(),
                    getContext().getSystem().ignoreRef()));
        }
        phase(SessionPhase.CLOSED);
        return Behaviors.stopped();
    }

    /** Drops the current path (if any), tells the device, and opens again after {@code delay} or the backoff. */
    private Behavior<SessionCommand> pathLost(String reason, Duration delay) {
        return pathLost(reason, delay, true);
    }

    /**
     * @param closeMapping false when the storage node merely looks unreachable from here: the mapping stays until
     *                     its lease runs out or the cluster removes this node. A one-way partition delivers a close
     *                     and would hand this writer's rw slot to another client while this node is still a member
     *                     (PartitionIT: a partitioned writer keeps its backend until fenced).
     */
    private Behavior<SessionCommand> pathLost(String reason, Duration delay, boolean closeMapping) {
        boolean hadPath = opened != null || phase == SessionPhase.OPENING;
        dropPath(closeMapping);
        lastLost = storageMember;
        storage = null;
        storageMember = null;
        if (hadPath) {
            parent.tell(new PathDown(getContext().getSelf(), reason));
        } else {
            parent.tell(new SessionError(getContext().getSelf(), reason));
        }
        phase = SessionPhase.BACKOFF;
        view.update(v -> v.withLastError(reason).withPhase(SessionPhase.BACKOFF));
        getContext().getLog().info("session {} → {}: path lost: {}", spec.deviceId(),
                spec.storageNode(), reason);
        timers.startSingleTimer("retry", new Retry(), delay.isZero() ? settings.reconnectMinBackoff() : delay);
        return this;
    }

    private Behavior<SessionCommand> retryLater(String reason) {
        dropPath(true);
        storage = null;
        storageMember = null;
        phase = SessionPhase.BACKOFF;
        view.update(v -> v.withLastError(reason).withPhase(SessionPhase.BACKOFF));
        parent.tell(new SessionError(getContext().getSelf(), reason));
        timers.startSingleTimer("retry", new Retry(), backoff.nextDelay());
        return this;
    }

    private void dropPath(boolean closeMapping) {
        if (channel != null) {
            getContext().stop(channel);
            channel = null;
        }
        channelId = null;
        if (opened != null) {
            renewer.tell(new LeaseRenewer.Unregister(opened.mappingId()));
            if (closeMapping) {
                // Tell the storage node at once rather than let the lease run out: frees an rw slot sooner.
                opened.backend().tell(new CloseMapping(opened.mappingId(),
                        getContext().getSystem().ignoreRef()));
            }
        }
        opened = null;
        channelInfo = null;
        connectedChannel = null;
        view.update(v -> v.withTransportPaths(0).withMappingId(""));
    }

    private Behavior<SessionCommand> onCut(Cut cut) {
        if (cutActive) {
            cut.replyTo().tell(Reply.error("session " + spec.deviceId() + " → " + spec.storageNode()
                    + " is already cut"));
            return this;
        }
        Integer path = cut.path();
        if (path != null) {
            MappingChannel ch = connectedChannel;
            int paths = ch == null ? 0 : ch.pathCount();
            if (ch == null) {
                cut.replyTo().tell(Reply.error("session " + spec.deviceId() + " → " + spec.storageNode()
                        + " has no connected channel to cut a path of"));
                return this;
            }
            if (paths <= 1 || path < 0 || path >= paths) {
                cut.replyTo().tell(Reply.error("session " + spec.deviceId() + " → " + spec.storageNode()
                        + " has " + paths + " transport path(s); path " + path + " cannot be cut alone"));
                return this;
            }
            ch.disconnectPath(path);
            cutChannel = ch;
        }
        cutActive = true;
        cutPath = path;
        long seq = ++cutSeq;
        timers.startSingleTimer("cut", new CutExpired(seq), cut.holdFor());
        String what = path == null ? "transport" : "transport path " + path;
        getContext().getLog().info("session {} → {}: drill cuts its {} for up to {} ms", spec.deviceId(),
                spec.storageNode(), what, cut.holdFor().toMillis());
        if (path == null) {
            pathLost("drill: " + what + " cut", cut.holdFor());
        }
        cut.replyTo().tell(Reply.ok("cut " + what + " of " + spec.deviceId() + " → "
                + spec.storageNode()));
        return this;
    }

    /** Ends a drill's cut: a cut path is reconnected, a cut session opens again at once. */
    private void endCut() {
        if (!cutActive) {
            return;
        }
        cutActive = false;
        timers.cancel("cut");
        Integer path = cutPath;
        MappingChannel ch = cutChannel;
        cutPath = null;
        cutChannel = null;
        getContext().getLog().info("session {} → {}: drill cut ends", spec.deviceId(),
                spec.storageNode());
        if (path != null) {
            // A channel replaced meanwhile has all its paths; the old one is closed with its cut path.
            if (ch != null && ch == connectedChannel) {
                try {
                    ch.reconnectPath(path);
                } catch (RuntimeException e) {
                    getContext().getLog().warn("session {}: reconnecting path {} failed: {}", spec.deviceId(),
                            path, e.toString());
                }
            }
        } else if (phase == SessionPhase.BACKOFF || phase == SessionPhase.SEARCHING) {
            timers.cancel("retry");
            tryOpen();
        }
    }

    private void phase(SessionPhase p) {
        phase = p;
        view.update(v -> v.withPhase(p));
    }

    /**
     * Stopped without a close (its parent stops as the node's actor system ends): no session serves the view any
     * more, and the next incarnation's session searches again. After a close the view keeps saying CLOSED.
     */
    private Behavior<SessionCommand> onStopped() {
        if (phase != SessionPhase.CLOSED) {
            view.update(v -> v.withSession(null).withPhase(SessionPhase.SEARCHING));
        }
        return this;
    }
}
