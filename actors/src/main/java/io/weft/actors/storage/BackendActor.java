package io.weft.actors.storage;

import io.weft.actors.AccessMode;
import io.weft.actors.ChannelActor;
import io.weft.actors.ExportRoots;
import io.weft.actors.NodeState;
import io.weft.actors.Reply;
import io.weft.actors.WeftSettings;
import io.weft.actors.protocol.BackendCommand;
import io.weft.actors.protocol.CloseMapping;
import io.weft.actors.protocol.Heartbeat;
import io.weft.actors.protocol.LeaseRenewerCommand;
import io.weft.actors.protocol.LeaseUnknown;
import io.weft.actors.protocol.MappingAlive;
import io.weft.actors.protocol.MappingRevoked;
import io.weft.actors.protocol.OpenRefused;
import io.weft.actors.protocol.OpenReply;
import io.weft.actors.protocol.OpenStore;
import io.weft.actors.protocol.RenewLeases;
import io.weft.actors.protocol.StoreInfoChanged;
import io.weft.actors.protocol.StoreOpened;
import io.weft.actors.protocol.UnknownMapping;
import io.weft.actors.transport.MappingGrant;
import io.weft.actors.transport.ServedChannel;
import io.weft.actors.transport.Transport;
import io.weft.actors.transport.TransportEndpoint;
import io.weft.actors.transport.Transports;
import io.weft.core.io.DeviceInfo;
import io.weft.core.store.FileBackingStore;
import io.weft.core.store.StoreBlockDevice;
import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.apache.pekko.actor.Address;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.PostStop;
import org.apache.pekko.actor.typed.PreRestart;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;

/**
 * One opened backing store on a storage node (RNBD's server-side device): access modes, mappings, stats.
 *
 * <p>Access modes are enforced here, on the storage node: any number of {@code ro} mappings; one {@code rw}; a
 * {@code migration} mapping may join while at most one other writer exists. A mapping is keyed by its owner
 * (client node name + device id): a re-open by the same owner replaces its old mapping (a client that restarted or
 * reconnected does not lock itself out).
 *
 * <p>A mapping is released — its view revoked so the old client cannot write through it, its served channel
 * stopped — when the client closes it, when its session's node leaves the cluster or the session actor stops, or
 * when no renewal arrived for {@code weft.storage.mapping-lease} (a client process that died or is paused). Renewals
 * come batched per client node ({@link RenewLeases} → {@link Renew}) or, for a mapping served over a transport that
 * hears its client on the data path ({@link ServedChannel#carriesClientLiveness()}: rdma admin heartbeats, cxl blkdev
 * heartbeats), from that data path: the lease check counts the newer of the last renewal message and the client's last
 * data-path heartbeat (issue 12; the client then renews by message only as an audit). A mapping is thus a
 * lease its client renews; this node alone decides who writes, so rw exclusivity never depends on the cluster's
 * split-brain decisions. A new writable mapping is granted only once every released writer's view has drained
 * (its last requests left the store; {@link MappingView#drained()}): the old holder's late write cannot land over
 * the new holder's.
 *
 * <p>Supervision: each mapping's served channel is a {@link ChannelActor} child (restarted with backoff; a restart
 * with a new endpoint revokes the mapping so the client re-opens). The backend itself is restarted by
 * {@link StorageService} on failure, which reopens the store and drops every mapping (clients re-open).
 * The store stays open while idle and closes when the actor stops.
 */
public final class BackendActor extends AbstractBehavior<BackendCommand> {

    /** Its own messages, from its storage service; the cross-node ones are in {@code io.weft.actors.protocol}. */
    interface Command extends BackendCommand {
    }

    record OpenMapping(OpenStore open) implements Command {
    }

    /**
     * From {@link RenewLeases} (one client node's batch): renews the mapping's lease. An unknown mapping is reported
     * to the client's renewer; a size other than the client's is sent to its session.
     */
    record Renew(String mappingId, long knownSize, ActorRef<LeaseRenewerCommand> renewer) implements Command {
    }

    record Resize(long newSize, ActorRef<Reply> replyTo) implements Command {
    }

    record ReleaseNode(Address address) implements Command {
    }

    private record SessionStopped(String mappingId) implements Command {
    }

    private record LeaseCheck() implements Command {
    }

    /** A writable open waiting for a revoked writer's last requests to leave the store; {@code since} in nanos. */
    private record DeferredOpen(OpenStore open, long since) implements Command {
    }

    private record Channel(ChannelActor.Event event) implements Command {
    }

    public static Behavior<BackendCommand> create(Path realPath, WeftSettings settings, NodeState nodeState,
                                           Transports transports) {
        return Behaviors.setup(ctx -> Behaviors.withTimers(timers -> {
            try {
                return new BackendActor(ctx, timers, realPath, settings, nodeState, transports);
            } catch (IOException e) {
                return cannotOpen(ctx, realPath, settings.nodeName(), e);
            }
        }));
    }

    /**
     * The store could not be opened (locked by another process, gone, no permission): the open that spawned this
     * backend is refused with the reason instead of timing out, and the actor stops, so the next open tries afresh.
     */
    private static Behavior<BackendCommand> cannotOpen(ActorContext<BackendCommand> ctx, Path realPath,
                                                       String nodeName, IOException cause) {
        String reason = "cannot open " + realPath + " on storage node " + nodeName + ": " + cause.getMessage();
        ctx.getLog().warn(reason);
        return Behaviors.receive(BackendCommand.class)
                .onMessage(OpenMapping.class, m -> {
                    m.open().replyTo().tell(new OpenRefused(reason, true));
                    return Behaviors.stopped();
                })
                .onMessage(Resize.class, r -> {
                    r.replyTo().tell(Reply.error(reason));
                    return Behaviors.stopped();
                })
                .build();
    }

    private final Path path;
    private final WeftSettings settings;
    private final NodeState nodeState;
    private final Transports transports;
    private final FileBackingStore store;
    private final StoreBlockDevice storeDevice;
    /** Where this actor alone publishes the backend's size and mappings ({@link io.weft.actors.BackendSnapshot}). */
    private final NodeState.BackendEntry entry;
    private final ActorRef<ChannelActor.Event> channelEvents;
    private final Map<String, Mapping> mappings = new LinkedHashMap<>();
    /** Views of released writable mappings with requests possibly still at the store (see MappingView#drained). */
    private final List<MappingView> draining = new ArrayList<>();

    private static final class Mapping {
        final String id;
        final OpenStore open;
        final MappingView view;
        final ActorRef<ChannelActor.Command> channel;
        TransportEndpoint endpoint;
        ActorRef<OpenReply> pendingReply;
        /** The served channel now up (its data path may tell when the client was last heard), or null while down. */
        ServedChannel served;
        /** The last renewal: a renewal message, or the data path's newest heartbeat a lease check saw (nanos). */
        long lastHeartbeatNanos = System.nanoTime();

        Mapping(String id, OpenStore open, MappingView view, ActorRef<ChannelActor.Command> channel) {
            this.id = id;
            this.open = open;
            this.view = view;
            this.channel = channel;
            this.pendingReply = open.replyTo();
        }

        boolean sameOwner(OpenStore other) {
            return open.clientNode().equals(other.clientNode()) && open.deviceId().equals(other.deviceId());
        }
    }

    private BackendActor(ActorContext<BackendCommand> ctx, TimerScheduler<BackendCommand> timers, Path realPath,
                         WeftSettings settings, NodeState nodeState, Transports transports) throws IOException {
        super(ctx);
        this.path = realPath;
        this.settings = settings;
        this.nodeState = nodeState;
        this.transports = transports;
        FileBackingStore opened;
        // Opened relative to its export root (a symlink swapped in since StorageService checked the path cannot
        // lead outside) and locked: exclusive read-write, shared read-only.
        ExportRoots roots = ExportRoots.forNode(settings);
        try {
            opened = roots.open(realPath, false);
        } catch (AccessDeniedException e) {
            // A read-only file still serves ro mappings.
            opened = roots.open(realPath, true);
        }
        this.store = opened;
        this.storeDevice = new StoreBlockDevice(store);
        this.entry = new NodeState.BackendEntry(realPath.toString(), storeDevice.info().size());
        nodeState.putBackend(entry);
        this.channelEvents = ctx.messageAdapter(ChannelActor.Event.class, Channel::new);
        Duration leaseCheck = settings.mappingLease().dividedBy(4);
        timers.startTimerWithFixedDelay(new LeaseCheck(), leaseCheck);
        ctx.getLog().info("backend {} open ({} bytes{})", realPath, entry.snapshot().size(),
                store.readOnly() ? ", read-only" : "");
    }

    @Override
    public Receive<BackendCommand> createReceive() {
        return newReceiveBuilder()
                .onMessage(OpenMapping.class, m -> onOpen(m.open(), System.nanoTime()))
                .onMessage(DeferredOpen.class, m -> onOpen(m.open(), m.since()))
                .onMessage(Channel.class, this::onChannel)
                .onMessage(Heartbeat.class, this::onHeartbeat)
                .onMessage(Renew.class, this::onRenew)
                .onMessage(CloseMapping.class, this::onClose)
                .onMessage(Resize.class, this::onResize)
                .onMessage(ReleaseNode.class, this::onReleaseNode)
                .onMessage(SessionStopped.class, m -> release(m.mappingId(), "client session stopped", false))
                .onMessage(LeaseCheck.class, this::onLeaseCheck)
                .onSignal(PostStop.class, s -> closeAll())
                .onSignal(PreRestart.class, s -> closeAll())
                .build();
    }

    private Behavior<BackendCommand> onOpen(OpenStore open, long since) {
        // A re-open by the same owner replaces its previous mapping before the mode check.
        for (Mapping m : new ArrayList<>(mappings.values())) {
            if (m.sameOwner(open)) {
                release(m.id, "replaced by a new open from the same client", false);
            }
        }
        String conflict = modeConflict(open.mode());
        if (conflict != null) {
            getContext().getLog().info("refused {} open of {} by {}/{}: {}", open.mode().wireName(), path,
                    open.clientNode(), open.deviceId(), conflict);
            open.replyTo().tell(new OpenRefused(conflict, true));
            return this;
        }
        draining.removeIf(MappingView::drained);
        if (open.mode().writable() && !draining.isEmpty()) {
            // Fencing: a revoked writer's request may still be writing; the next writer starts after it.
            if (System.nanoTime() - since > settings.mappingLease().toNanos()) {
                open.replyTo().tell(new OpenRefused("a previous writer's last request is still"
                        + " running on the store of " + path, false));
            } else {
                getContext().scheduleOnce(Duration.ofMillis(2), getContext().getSelf(), new DeferredOpen(open, since));
            }
            return this;
        }
        if (open.mode().writable() && store.readOnly()) {
            open.replyTo().tell(new OpenRefused(path + " is read-only on storage node "
                    + settings.nodeName() + "; map it ro", true));
            return this;
        }
        Transport transport = transports.get(open.transport());
        String mappingId = UUID.randomUUID().toString();
        MappingView view = new MappingView(storeDevice, !open.mode().writable(), entry.stats);
        // The data plane admits only the client that proves this grant; it reaches that client in the open reply.
        MappingGrant grant = MappingGrant.issue(open.clientNode(), open.session(), getContext().getSystem());
        ActorRef<ChannelActor.Command> channel = getContext().spawn(
                ChannelActor.create(mappingId, l -> transport.acceptor().serve(mappingId, view, grant, l),
                        channelEvents,
                        settings.reconnectMinBackoff(), settings.reconnectMaxBackoff()),
                "channel-" + mappingId);
        Mapping mapping = new Mapping(mappingId, open, view, channel);
        mappings.put(mappingId, mapping);
        getContext().watchWith(open.session(), new SessionStopped(mappingId));
        publish();
        getContext().getLog().info("mapped {} {} to {}/{} over {}", path, open.mode().wireName(), open.clientNode(),
                open.deviceId(), open.transport());
        return this;
    }

    /** @return why the mode cannot be granted now, or null */
    private String modeConflict(AccessMode mode) {
        int writers = 0;
        String writer = null;
        for (Mapping m : mappings.values()) {
            if (m.open.mode().writable()) {
                writers++;
                writer = m.open.clientNode() + "/" + m.open.deviceId() + " (" + m.open.mode().wireName() + ")";
            }
        }
        switch (mode) {
            case RO:
                return null;
            case RW:
                return writers == 0 ? null : path + " is already mapped read-write by " + writer
                        + "; map it ro, or migration during a live migration";
            case MIGRATION:
                return writers <= 1 ? null : path + " already has two writers (rw + migration)";
            default:
                return "unknown access mode";
        }
    }

    private Behavior<BackendCommand> onChannel(Channel msg) {
        ChannelActor.Event event = msg.event();
        Mapping m = mappings.get(event.channelId());
        if (m == null) {
            return this;
        }
        if (event instanceof ChannelActor.Up up) {
            ServedChannel served = (ServedChannel) up.channel();
            TransportEndpoint endpoint = served.endpoint();
            m.served = served;
            if (m.pendingReply != null) {
                m.endpoint = endpoint;
                m.pendingReply.tell(new StoreOpened(m.id, path.toString(), m.view.info(), endpoint,
                        getContext().getSelf(), served.carriesClientLiveness()));
                m.pendingReply = null;
            } else if (!endpoint.equals(m.endpoint)) {
                // The served channel restarted somewhere else: the client must open again to learn where.
                release(m.id, "served channel restarted", true);
            }
        } else if (event instanceof ChannelActor.Down && m.pendingReply == null) {
            // Closed: what it still reports may belong to whoever reuses its transport resources (a cxl slot).
            m.served = null;
        } else if (event instanceof ChannelActor.Down down && m.pendingReply != null) {
            // A full transport (no room for the channel) refuses for good: the client's map fails at once.
            m.pendingReply.tell(new OpenRefused("could not serve over " + m.open.transport() + ": "
                    + down.reason(), down.unreachable()));
            m.pendingReply = null;
            release(m.id, "serving failed", false);
        }
        return this;
    }

    private Behavior<BackendCommand> onHeartbeat(Heartbeat hb) {
        Mapping m = mappings.get(hb.mappingId());
        if (m == null) {
            hb.replyTo().tell(new UnknownMapping(hb.mappingId()));
        } else {
            m.lastHeartbeatNanos = System.nanoTime();
            hb.replyTo().tell(new MappingAlive(m.id, m.view.info()));
        }
        return this;
    }

    private Behavior<BackendCommand> onRenew(Renew renew) {
        Mapping m = mappings.get(renew.mappingId());
        if (m == null) {
            renew.renewer().tell(new LeaseUnknown(renew.mappingId()));
            return this;
        }
        m.lastHeartbeatNanos = System.nanoTime();
        DeviceInfo info = m.view.info();
        if (info.size() != renew.knownSize()) {
            // A resize whose InfoChanged the client missed: the renewal carries it there as the heartbeat did.
            m.open.session().tell(new StoreInfoChanged(m.id, info));
        }
        return this;
    }

    private Behavior<BackendCommand> onClose(CloseMapping close) {
        boolean known = mappings.containsKey(close.mappingId());
        release(close.mappingId(), "closed by client", false);
        close.replyTo().tell(known ? Reply.ok("closed " + close.mappingId()) : Reply.ok("already closed"));
        return this;
    }

    private Behavior<BackendCommand> onResize(Resize resize) {
        long current = storeDevice.info().size();
        if (resize.newSize() < current && !mappings.isEmpty()) {
            // The mapped clients still address the blocks a shrink would cut off (a filesystem's last group, a
            // mirror leg's tail): they would read EIO or write past the end. Unmap first, then shrink.
            resize.replyTo().tell(Reply.error("cannot shrink " + path + " from " + current + " to "
                    + resize.newSize() + " bytes: it is mapped (" + mappings.size() + " mapping(s): "
                    + String.join(", ", mappings.values().stream().map(m -> m.open.clientNode() + "/"
                            + m.open.deviceId()).sorted().toList())
                    + "); unmap it first (growing is allowed while mapped)"));
            return this;
        }
        try {
            store.resize(resize.newSize());
        } catch (IOException e) {
            resize.replyTo().tell(Reply.error("could not resize " + path + ": " + e.getMessage()));
            return this;
        }
        storeDevice.refreshInfo();
        long size = entry.update(b -> b.withSize(storeDevice.info().size())).size();
        for (Mapping m : mappings.values()) {
            m.view.refresh();
            m.open.session().tell(new StoreInfoChanged(m.id, m.view.info()));
        }
        getContext().getLog().info("resized {} to {} bytes", path, size);
        resize.replyTo().tell(Reply.ok("resized " + path + " to " + size + " bytes; " + mappings.size()
                + " mapping(s) notified"));
        return this;
    }

    private Behavior<BackendCommand> onReleaseNode(ReleaseNode msg) {
        for (Mapping m : new ArrayList<>(mappings.values())) {
            if (msg.address().equals(m.open.session().path().address())) {
                release(m.id, "client node " + msg.address() + " left the cluster", false);
            }
        }
        return this;
    }

    private Behavior<BackendCommand> onLeaseCheck(LeaseCheck check) {
        long now = System.nanoTime();
        long lease = settings.mappingLease().toNanos();
        for (Mapping m : new ArrayList<>(mappings.values())) {
            if (m.pendingReply == null && now - lastRenewedNanos(m) > lease) {
                release(m.id, "no renewal or data-path heartbeat for " + settings.mappingLease().toMillis() + " ms",
                        true);
            }
        }
        return this;
    }

    /**
     * The newer of the last renewal message and the client's last heartbeat on the mapping's data path, kept: a data
     * path that dies (its session gone, so it reports nothing any more) leaves the lease running from its last
     * heartbeat, which gives the client time to notice and renew by message again, as it does while reconnecting.
     */
    private static long lastRenewedNanos(Mapping m) {
        ServedChannel served = m.served;
        if (served != null && served.carriesClientLiveness()) {
            long heard = served.clientLastHeardNanos();
            if (heard != ServedChannel.NEVER_HEARD && heard - m.lastHeartbeatNanos > 0) {
                m.lastHeartbeatNanos = heard;
            }
        }
        return m.lastHeartbeatNanos;
    }

    private Behavior<BackendCommand> release(String mappingId, String reason, boolean tellClient) {
        Mapping m = mappings.remove(mappingId);
        if (m == null) {
            return this;
        }
        m.view.revoke();
        if (m.open.mode().writable() && !m.view.drained()) {
            draining.add(m.view);
        }
        getContext().stop(m.channel);
        getContext().unwatch(m.open.session());
        if (tellClient) {
            m.open.session().tell(new MappingRevoked(m.id, reason));
        }
        publish();
        getContext().getLog().info("released mapping {} of {} by {}/{}: {}", m.id, path, m.open.clientNode(),
                m.open.deviceId(), reason);
        return this;
    }

    private void publish() {
        List<NodeState.MappingStatus> list = new ArrayList<>();
        for (Mapping m : mappings.values()) {
            list.add(new NodeState.MappingStatus(m.id, m.open.clientNode(), m.open.deviceId(),
                    m.open.mode().wireName(), m.open.transport(),
                    NodeState.addressOf(getContext().getSystem(), m.open.session())));
        }
        entry.update(b -> b.withMappings(list));
    }

    private Behavior<BackendCommand> closeAll() {
        for (Mapping m : mappings.values()) {
            m.view.revoke();
        }
        mappings.clear();
        nodeState.removeBackend(path.toString(), entry);
        try {
            store.close();
        } catch (IOException e) {
            getContext().getLog().warn("closing {}: {}", path, e.toString());
        }
        return this;
    }
}
