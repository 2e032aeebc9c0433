package io.weft.actors.client;

import io.weft.actors.ChannelActor;
import io.weft.actors.NodeState;
import io.weft.actors.Reply;
import io.weft.actors.WeftSerializable;
import io.weft.actors.WeftSettings;
import io.weft.actors.storage.BackendActor;
import io.weft.actors.storage.StorageService;
import io.weft.actors.transport.ClientChannel;
import io.weft.actors.transport.Transport;
import io.weft.actors.transport.TransportGeometry;
import io.weft.core.io.DeviceInfo;
import java.time.Duration;
import java.util.Set;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;
import org.apache.pekko.actor.typed.receptionist.Receptionist;
import org.apache.pekko.actor.typed.receptionist.ServiceKey;

/**
 * One client device's association with one storage node (an RTRS session): finds the node through the Receptionist,
 * opens the backing store, keeps the mapping alive through the node's {@link LeaseRenewer} (one batched renewal per
 * storage node and interval for every session, not a heartbeat per device), and re-opens by itself whenever the path
 * is lost.
 *
 * <p>Phases: SEARCHING (the node is not in the Receptionist listing, or is unreachable) → OPENING (open sent) →
 * CONNECTING (opened; the {@link ChannelActor} is attaching the data path) → CONNECTED (IO flows; the lease renewed
 * every {@code weft.client.heartbeat-interval}). The path is lost — and the parent {@link DeviceActor} told, so IO
 * queues — when the node leaves the listing, {@code heartbeat-misses} renewal batches in a row go unanswered, the
 * storage forgets or revokes the mapping, or the channel dies. It then re-opens after an exponential backoff
 * ({@code weft.client.reconnect.*}); a restarted storage node re-registers, which re-opens at once.
 *
 * <p>Drills ({@code io.weft.actors.drill}) reach a session through {@code NodeState.DeviceEntry.session} and cut it
 * with {@link Cut}: the whole session (as if the transport failed, but re-opened only when the cut ends) or one path of
 * a multipath channel; {@link EndCut} or the cut's own time limit ends it.
 *
 * <p>Supervision: restarted with backoff by its {@link DeviceActor} on failure (a failed path is replaced: the new
 * incarnation opens again, and the storage node replaces the old mapping because the owner is the same). Its
 * {@link ChannelActor} child is restarted with backoff when the data agent dies.
 */
public final class SessionActor extends AbstractBehavior<SessionActor.Command> {

    public interface Command {
    }

    /** From the backend: the store was resized. */
    public record InfoChanged(String mappingId, DeviceInfo info) implements Command, WeftSerializable {
    }

    /** From the backend: it dropped the mapping (lease expired, channel moved); open again. */
    public record MappingRevoked(String mappingId, String reason) implements Command, WeftSerializable {
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

    private record Listing(Set<ActorRef<StorageService.Command>> storage) implements Command {
    }

    private record OpenResult(int attempt, StorageService.OpenReply reply, Throwable failure) implements Command {
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

    private enum Phase { SEARCHING, OPENING, CONNECTING, CONNECTED, BACKOFF }

    public static Behavior<Command> create(NodeState.DeviceEntry entry, String clientNode, Transport transport,
                                           WeftSettings settings, ActorRef<DeviceActor.Command> device) {
        return Behaviors.setup(ctx -> Behaviors.withTimers(timers ->
                new SessionActor(ctx, timers, entry, clientNode, transport, settings, device)));
    }

    private final TimerScheduler<Command> timers;
    private final NodeState.DeviceEntry entry;
    private final String clientNode;
    private final Transport transport;
    private final WeftSettings settings;
    private final ActorRef<DeviceActor.Command> device;
    private final ActorRef<ChannelActor.Event> channelEvents;
    private final ServiceKey<StorageService.Command> key;

    private Set<ActorRef<StorageService.Command>> reachable = Set.of();
    private Phase phase = Phase.SEARCHING;
    private int attempt;
    private int channelSeq;
    private Duration backoff;
    private ActorRef<StorageService.Command> storage;
    private ActorRef<StorageService.Command> lastLost;
    private StorageService.Opened opened;
    private ActorRef<ChannelActor.Command> channel;
    private String channelId;
    /** The node's lease renewer (one batch per storage node per heartbeat interval, for every session). */
    private final ActorRef<LeaseRenewer.Command> renewer;
    /** The connected channel's own geometry (its per-request limit), or null. */
    private DeviceInfo channelInfo;
    /** The connected channel, or null. */
    private ClientChannel connectedChannel;
    // A drill's cut: active while cutActive; cutPath null = the whole session, else the path cut on cutChannel.
    private boolean cutActive;
    private long cutSeq;
    private Integer cutPath;
    private ClientChannel cutChannel;

    private SessionActor(ActorContext<Command> ctx, TimerScheduler<Command> timers, NodeState.DeviceEntry entry,
                         String clientNode, Transport transport, WeftSettings settings,
                         ActorRef<DeviceActor.Command> device) {
        super(ctx);
        this.timers = timers;
        this.entry = entry;
        this.clientNode = clientNode;
        this.transport = transport;
        this.settings = settings;
        this.device = device;
        this.backoff = settings.reconnectMinBackoff();
        this.renewer = LeaseRenewer.of(ctx.getSystem(), clientNode, settings.heartbeatInterval(),
                settings.heartbeatMisses());
        this.channelEvents = ctx.messageAdapter(ChannelActor.Event.class, Channel::new);
        this.key = StorageService.keyFor(entry.spec.storageNode());
        ActorRef<Receptionist.Listing> listings = ctx.messageAdapter(Receptionist.Listing.class,
                l -> new Listing(l.getServiceInstances(key)));
        ctx.getSystem().receptionist().tell(Receptionist.subscribe(key, listings));
        entry.session = ctx.getSelf();
        phase(Phase.SEARCHING);
    }

    @Override
    public Receive<Command> createReceive() {
        return newReceiveBuilder()
                .onMessage(Listing.class, this::onListing)
                .onMessage(OpenResult.class, this::onOpenResult)
                .onMessage(Channel.class, this::onChannel)
                .onMessage(RenewalsUnanswered.class, this::onRenewalsUnanswered)
                .onMessage(InfoChanged.class, this::onInfoChanged)
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
                .build();
    }

    private Behavior<Command> onListing(Listing listing) {
        reachable = listing.storage();
        if (storage != null && !reachable.contains(storage)) {
            // Unreachable (failure detector), downed, or replaced by a restarted incarnation.
            return pathLost("storage node " + entry.spec.storageNode() + " is unreachable or gone", Duration.ZERO);
        }
        if (phase == Phase.SEARCHING) {
            return tryOpen();
        }
        return this;
    }

    private Behavior<Command> tryOpen() {
        if (phase == Phase.OPENING || phase == Phase.CONNECTING || phase == Phase.CONNECTED) {
            return this;
        }
        if (reachable.isEmpty()) {
            phase(Phase.SEARCHING);
            return this;
        }
        // Normally one entry; while a restarted node's old incarnation lingers, prefer the one not just lost.
        ActorRef<StorageService.Command> target = null;
        for (ActorRef<StorageService.Command> ref : reachable) {
            if (target == null || target.equals(lastLost)) {
                target = ref;
            }
        }
        storage = target;
        entry.storageAddress = NodeState.addressOf(getContext().getSystem(), target);
        int thisAttempt = ++attempt;
        phase(Phase.OPENING);
        getContext().ask(StorageService.OpenReply.class, target, settings.openTimeout(),
                replyTo -> new StorageService.Open(clientNode, entry.spec.deviceId(), entry.spec.path(),
                        entry.spec.mode(), transport.name(), getContext().getSelf(), replyTo),
                (reply, failure) -> new OpenResult(thisAttempt, reply, failure));
        return this;
    }

    private Behavior<Command> onOpenResult(OpenResult result) {
        if (result.attempt() != attempt || phase != Phase.OPENING) {
            return this;
        }
        if (result.failure() != null) {
            return retryLater("open of " + entry.spec.path() + " on " + entry.spec.storageNode()
                    + " got no answer within " + settings.openTimeout().toMillis() + " ms");
        }
        if (result.reply() instanceof StorageService.OpenRefused refused) {
            device.tell(new DeviceActor.OpenFailed(refused.reason(), refused.permanent()));
            if (refused.permanent()) {
                backoff = settings.reconnectMaxBackoff();
            }
            return retryLater(refused.reason());
        }
        opened = (StorageService.Opened) result.reply();
        entry.mappingId = opened.mappingId();
        channelId = opened.mappingId() + "-" + (++channelSeq);
        var endpoint = opened.endpoint();
        channel = getContext().spawn(
                ChannelActor.create(channelId, l -> transport.connector().connect(endpoint, l), channelEvents,
                        settings.reconnectMinBackoff(), settings.reconnectMaxBackoff()),
                "channel-" + channelSeq);
        phase(Phase.CONNECTING);
        registerLease();
        return this;
    }

    private Behavior<Command> onChannel(Channel msg) {
        ChannelActor.Event event = msg.event();
        if (!event.channelId().equals(channelId) || opened == null) {
            return this;
        }
        if (event instanceof ChannelActor.Up up) {
            phase(Phase.CONNECTED);
            backoff = settings.reconnectMinBackoff();
            ClientChannel connected = (ClientChannel) up.channel();
            connectedChannel = connected;
            entry.transportPaths = connected.pathCount();
            String carriedBy = connected.transportName() != null ? connected.transportName() : transport.name();
            channelInfo = connected.device().info();
            device.tell(new DeviceActor.PathUp(TransportGeometry.narrow(opened.info(), channelInfo),
                    connected.device(), opened.mappingId(), carriedBy));
        } else if (event instanceof ChannelActor.Down down) {
            // The channel actor opens a new agent after its backoff; meanwhile IO queues.
            connectedChannel = null;
            entry.transportPaths = 0;
            if (phase == Phase.CONNECTED) {
                phase(Phase.CONNECTING);
            }
            if (down.unreachable()) {
                device.tell(new DeviceActor.OpenFailed(down.reason(), true));
            }
            device.tell(new DeviceActor.PathDown("data channel: " + down.reason()));
        }
        return this;
    }

    /** From now on the node's renewer renews this mapping's lease (again, with a changed size). */
    private void registerLease() {
        renewer.tell(new LeaseRenewer.Register(opened.mappingId(), storage, opened.backend(), opened.info().size(),
                getContext().getSelf(), entry));
    }

    private Behavior<Command> onRenewalsUnanswered(RenewalsUnanswered unanswered) {
        if (opened == null || !unanswered.mappingId().equals(opened.mappingId())) {
            return this;
        }
        return pathLost(unanswered.missed() + " lease renewals in a row unanswered by " + entry.spec.storageNode(),
                Duration.ZERO);
    }

    private Behavior<Command> onInfoChanged(InfoChanged changed) {
        if (opened != null && changed.mappingId().equals(opened.mappingId())) {
            applyInfo(changed.info());
        }
        return this;
    }

    private void applyInfo(DeviceInfo info) {
        opened = new StorageService.Opened(opened.mappingId(), opened.backendPath(), info, opened.endpoint(),
                opened.backend());
        registerLease();
        device.tell(new DeviceActor.GeometryChanged(TransportGeometry.narrow(info, channelInfo)));
    }

    private Behavior<Command> onRevoked(MappingRevoked revoked) {
        if (opened != null && revoked.mappingId().equals(opened.mappingId())) {
            return pathLost("storage revoked the mapping: " + revoked.reason(), Duration.ZERO);
        }
        return this;
    }

    private Behavior<Command> onClose(Close close) {
        if (opened != null) {
            renewer.tell(new LeaseRenewer.Unregister(opened.mappingId()));
            opened.backend().tell(new BackendActor.CloseMapping(opened.mappingId(),
                    getContext().getSystem().ignoreRef()));
        }
        entry.sessionState = "closed";
        return Behaviors.stopped();
    }

    /** Drops the current path (if any), tells the device, and opens again after {@code delay} or the backoff. */
    private Behavior<Command> pathLost(String reason, Duration delay) {
        boolean hadPath = opened != null || phase == Phase.OPENING;
        dropPath();
        lastLost = storage;
        storage = null;
        if (hadPath) {
            device.tell(new DeviceActor.PathDown(reason));
        }
        entry.lastError = reason;
        getContext().getLog().info("session {} → {}: path lost: {}", entry.spec.deviceId(),
                entry.spec.storageNode(), reason);
        phase(Phase.BACKOFF);
        timers.startSingleTimer("retry", new Retry(), delay.isZero() ? settings.reconnectMinBackoff() : delay);
        return this;
    }

    private Behavior<Command> retryLater(String reason) {
        dropPath();
        storage = null;
        entry.lastError = reason;
        device.tell(new DeviceActor.SessionError(reason));
        phase(Phase.BACKOFF);
        timers.startSingleTimer("retry", new Retry(), backoff);
        backoff = backoff.multipliedBy(2).compareTo(settings.reconnectMaxBackoff()) > 0
                ? settings.reconnectMaxBackoff() : backoff.multipliedBy(2);
        return this;
    }

    private void dropPath() {
        if (channel != null) {
            getContext().stop(channel);
            channel = null;
        }
        channelId = null;
        if (opened != null) {
            renewer.tell(new LeaseRenewer.Unregister(opened.mappingId()));
            // Tell the storage node at once rather than let the lease run out: frees an rw slot sooner.
            opened.backend().tell(new BackendActor.CloseMapping(opened.mappingId(),
                    getContext().getSystem().ignoreRef()));
        }
        opened = null;
        channelInfo = null;
        connectedChannel = null;
        entry.transportPaths = 0;
        entry.mappingId = "";
    }

    private Behavior<Command> onCut(Cut cut) {
        if (cutActive) {
            cut.replyTo().tell(Reply.error("session " + entry.spec.deviceId() + " → " + entry.spec.storageNode()
                    + " is already cut"));
            return this;
        }
        Integer path = cut.path();
        if (path != null) {
            ClientChannel ch = connectedChannel;
            int paths = ch == null ? 0 : ch.pathCount();
            if (ch == null) {
                cut.replyTo().tell(Reply.error("session " + entry.spec.deviceId() + " → " + entry.spec.storageNode()
                        + " has no connected channel to cut a path of"));
                return this;
            }
            if (paths <= 1 || path < 0 || path >= paths) {
                cut.replyTo().tell(Reply.error("session " + entry.spec.deviceId() + " → " + entry.spec.storageNode()
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
        getContext().getLog().info("session {} → {}: drill cuts its {} for up to {} ms", entry.spec.deviceId(),
                entry.spec.storageNode(), what, cut.holdFor().toMillis());
        if (path == null) {
            pathLost("drill: " + what + " cut", cut.holdFor());
        }
        cut.replyTo().tell(Reply.ok("cut " + what + " of " + entry.spec.deviceId() + " → "
                + entry.spec.storageNode()));
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
        ClientChannel ch = cutChannel;
        cutPath = null;
        cutChannel = null;
        getContext().getLog().info("session {} → {}: drill cut ends", entry.spec.deviceId(),
                entry.spec.storageNode());
        if (path != null) {
            // A channel replaced meanwhile has all its paths; the old one is closed with its cut path.
            if (ch != null && ch == connectedChannel) {
                try {
                    ch.reconnectPath(path);
                } catch (RuntimeException e) {
                    getContext().getLog().warn("session {}: reconnecting path {} failed: {}", entry.spec.deviceId(),
                            path, e.toString());
                }
            }
        } else if (phase == Phase.BACKOFF || phase == Phase.SEARCHING) {
            timers.cancel("retry");
            tryOpen();
        }
    }

    private void phase(Phase p) {
        phase = p;
        entry.sessionState = p.name().toLowerCase(java.util.Locale.ROOT);
    }
}
