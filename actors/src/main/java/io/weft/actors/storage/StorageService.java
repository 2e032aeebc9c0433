package io.weft.actors.storage;

import io.weft.actors.AccessMode;
import io.weft.actors.ExportRoots;
import io.weft.actors.NodeState;
import io.weft.actors.Reply;
import io.weft.actors.WeftSerializable;
import io.weft.actors.WeftSettings;
import io.weft.actors.client.LeaseRenewer;
import io.weft.actors.client.SessionActor;
import io.weft.actors.transport.TransportEndpoint;
import io.weft.actors.transport.Transports;
import io.weft.core.io.DeviceInfo;
import java.io.IOException;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.apache.pekko.actor.Address;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.SupervisorStrategy;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.actor.typed.receptionist.Receptionist;
import org.apache.pekko.actor.typed.receptionist.ServiceKey;
import org.apache.pekko.cluster.ClusterEvent;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Subscribe;

/**
 * The storage role of a node: passive, as an IBNBD server is. Clients name a path; it is served if it lies under an
 * export root ({@link ExportRoots}), through one {@link BackendActor} per opened backing store.
 *
 * <p>Registered with the Receptionist twice: under {@link #KEY} (every storage node) and under
 * {@link #keyFor(String)} (this node by name), which is what clients' sessions subscribe to. Watches cluster
 * membership: when a node is removed (left or downed), every backend drops that node's mappings.
 *
 * <p>Supervision (applied by {@code WeftNode}): restarted on failure without stopping its children, so open backends
 * and their mappings survive; backends are found again by child name. Its own children ({@link BackendActor}) are
 * restarted on failure, which reopens the store and drops its mappings; clients then re-open by themselves.
 */
public final class StorageService extends AbstractBehavior<StorageService.Command> {

    /** Every storage node. */
    public static final ServiceKey<Command> KEY = ServiceKey.create(Command.class, "weft-storage");

    /** One storage node, by its {@code weft.node.name}. */
    public static ServiceKey<Command> keyFor(String nodeName) {
        return ServiceKey.create(Command.class, "weft-storage@" + nodeName);
    }

    public interface Command {
    }

    /** A client opens a backing store (the IBNBD "map" request). */
    public record Open(String clientNode, String deviceId, String path, AccessMode mode, String transport,
                       ActorRef<SessionActor.Command> session, ActorRef<OpenReply> replyTo)
            implements Command, WeftSerializable {
    }

    public interface OpenReply {
    }

    /** The store is open for this client: geometry, capabilities and where to reach the data path. */
    public record Opened(String mappingId, String backendPath, DeviceInfo info, TransportEndpoint endpoint,
                         ActorRef<BackendActor.Command> backend) implements OpenReply, WeftSerializable {
    }

    /**
     * @param permanent true when retrying cannot help (path refused, mode conflict, unknown transport); false when
     *                  it may (serving failed, store busy restarting)
     */
    public record OpenRefused(String reason, boolean permanent) implements OpenReply, WeftSerializable {
    }

    /** One mapping in a {@link RenewLeases} batch: its backend here and the store size its client knows. */
    public record Lease(String mappingId, ActorRef<BackendActor.Command> backend, long knownSize)
            implements WeftSerializable {
    }

    /**
     * From a client node's {@link LeaseRenewer}, every {@code weft.client.heartbeat-interval}: renews the lease of
     * every mapping named, each in its backend (issue 12: one message per client/storage node pair, not per
     * device). A mapping not named is not renewed. A mapping this node does not know is reported to {@code renewer}
     * ({@link LeaseRenewer.MappingUnknown}); the answer ({@code replyTo}) says the batch arrived.
     */
    public record RenewLeases(String clientNode, List<Lease> leases, ActorRef<LeaseRenewer.Command> renewer,
                              ActorRef<LeasesRenewed> replyTo) implements Command, WeftSerializable {
    }

    public record LeasesRenewed(int count) implements WeftSerializable {
    }

    /** Creates a sparse file of {@code size} bytes under an export root. */
    public record CreateVolume(String path, long size, ActorRef<Reply> replyTo) implements Command, WeftSerializable {
    }

    /** Grows a backing store (shrinks it only while unmapped); mapped clients learn the new size through their sessions. */
    public record Resize(String path, long newSize, ActorRef<Reply> replyTo) implements Command, WeftSerializable {
    }

    public record ListBackends(ActorRef<BackendList> replyTo) implements Command, WeftSerializable {
    }

    public record BackendList(String node, List<NodeState.BackendStatus> backends) implements WeftSerializable {
    }

    /** Drills: which process serves this storage node, so a client on the same host can signal it. */
    public record DescribeProcess(ActorRef<ProcessInfo> replyTo) implements Command, WeftSerializable {
    }

    /**
     * @param node   this node's name
     * @param pid    the node's JVM process id
     * @param bootId the kernel's boot id ({@code /proc/sys/kernel/random/boot_id}), "" when unreadable: two nodes
     *               with the same non-empty boot id run on the same host
     */
    public record ProcessInfo(String node, long pid, String bootId) implements WeftSerializable {
    }

    private record NodeRemoved(Address address) implements Command {
    }

    public static Behavior<Command> create(WeftSettings settings, NodeState nodeState, Transports transports) {
        return Behaviors.setup(ctx -> new StorageService(ctx, settings, nodeState, transports));
    }

    private final WeftSettings settings;
    private final NodeState nodeState;
    private final Transports transports;
    private final ExportRoots exportRoots;

    private StorageService(ActorContext<Command> ctx, WeftSettings settings, NodeState nodeState,
                           Transports transports) {
        super(ctx);
        this.settings = settings;
        this.nodeState = nodeState;
        this.transports = transports;
        this.exportRoots = ExportRoots.forNode(settings);
        ctx.getSystem().receptionist().tell(Receptionist.register(KEY, ctx.getSelf()));
        ctx.getSystem().receptionist().tell(Receptionist.register(keyFor(settings.nodeName()), ctx.getSelf()));
        ActorRef<ClusterEvent.MemberRemoved> removed =
                ctx.messageAdapter(ClusterEvent.MemberRemoved.class, e -> new NodeRemoved(e.member().address()));
        Cluster.get(ctx.getSystem()).subscriptions().tell(Subscribe.create(removed, ClusterEvent.MemberRemoved.class));
        ctx.getLog().info("storage service '{}' up; export roots {}", settings.nodeName(), exportRoots.roots());
    }

    @Override
    public Receive<Command> createReceive() {
        return newReceiveBuilder()
                .onMessage(Open.class, this::onOpen)
                .onMessage(RenewLeases.class, this::onRenewLeases)
                .onMessage(CreateVolume.class, this::onCreateVolume)
                .onMessage(Resize.class, this::onResize)
                .onMessage(ListBackends.class, this::onList)
                .onMessage(NodeRemoved.class, this::onNodeRemoved)
                .onMessage(DescribeProcess.class, d -> {
                    d.replyTo().tell(new ProcessInfo(settings.nodeName(), ProcessHandle.current().pid(),
                            io.weft.actors.drill.ProcFs.bootId()));
                    return this;
                })
                .build();
    }

    private Behavior<Command> onOpen(Open open) {
        Path real;
        try {
            real = exportRoots.resolveExisting(open.path());
        } catch (ExportRoots.RefusedPathException e) {
            getContext().getLog().warn("refused open of '{}' by {}/{}: {}", open.path(), open.clientNode(),
                    open.deviceId(), e.getMessage());
            open.replyTo().tell(new OpenRefused(e.getMessage(), true));
            return this;
        }
        if (transports.get(open.transport()) == null) {
            open.replyTo().tell(new OpenRefused("transport '" + open.transport() + "' is not enabled on storage node "
                    + settings.nodeName() + " (enabled: " + transports.names() + ")", true));
            return this;
        }
        backendFor(real).tell(new BackendActor.OpenMapping(open));
        return this;
    }

    private Behavior<Command> onRenewLeases(RenewLeases renew) {
        for (Lease lease : renew.leases()) {
            // Only a live child: a backend that stopped since the client opened has forgotten its mappings.
            Optional<ActorRef<Void>> child = getContext().getChild(lease.backend().path().name());
            if (child.isPresent() && child.get().equals(lease.backend())) {
                lease.backend().tell(new BackendActor.Renew(lease.mappingId(), lease.knownSize(), renew.renewer()));
            } else {
                renew.renewer().tell(new LeaseRenewer.MappingUnknown(lease.mappingId()));
            }
        }
        renew.replyTo().tell(new LeasesRenewed(renew.leases().size()));
        return this;
    }

    private ActorRef<BackendActor.Command> backendFor(Path real) {
        String name = childName(real);
        Optional<ActorRef<Void>> existing = getContext().getChild(name);
        if (existing.isPresent()) {
            return existing.get().unsafeUpcast();
        }
        return getContext().spawn(
                Behaviors.supervise(BackendActor.create(real, settings, nodeState, transports))
                        .onFailure(SupervisorStrategy.restart()),
                name);
    }

    private static String childName(Path real) {
        return "backend-" + URLEncoder.encode(real.toString(), StandardCharsets.UTF_8);
    }

    private Behavior<Command> onCreateVolume(CreateVolume create) {
        long size = create.size() > 0 ? create.size() : settings.defaultVolumeSize();
        if (size % 512 != 0) {
            create.replyTo().tell(Reply.error("volume size must be a multiple of 512 bytes: " + size));
            return this;
        }
        try {
            Path target = exportRoots.resolveNew(create.path());
            exportRoots.create(target, size).close();
            getContext().getLog().info("created volume {} ({} bytes)", target, size);
            create.replyTo().tell(Reply.ok("created " + target + " (" + size + " bytes, sparse) on "
                    + settings.nodeName()));
        } catch (ExportRoots.RefusedPathException e) {
            create.replyTo().tell(Reply.error(e.getMessage()));
        } catch (IOException e) {
            create.replyTo().tell(Reply.error("could not create " + create.path() + ": " + e.getMessage()));
        }
        return this;
    }

    private Behavior<Command> onResize(Resize resize) {
        if (resize.newSize() <= 0 || resize.newSize() % 512 != 0) {
            resize.replyTo().tell(Reply.error("new size must be a positive multiple of 512 bytes: "
                    + resize.newSize()));
            return this;
        }
        Path real;
        try {
            real = exportRoots.resolveExisting(resize.path());
        } catch (ExportRoots.RefusedPathException e) {
            resize.replyTo().tell(Reply.error(e.getMessage()));
            return this;
        }
        backendFor(real).tell(new BackendActor.Resize(resize.newSize(), resize.replyTo()));
        return this;
    }

    private Behavior<Command> onList(ListBackends list) {
        List<NodeState.BackendStatus> out = new ArrayList<>();
        for (NodeState.BackendEntry e : nodeState.backends()) {
            out.add(e.status());
        }
        list.replyTo().tell(new BackendList(settings.nodeName(), out));
        return this;
    }

    private Behavior<Command> onNodeRemoved(NodeRemoved removed) {
        getContext().getLog().info("node {} left the cluster; releasing its mappings", removed.address());
        getContext().getChildren().forEach(child ->
                child.<BackendActor.Command>unsafeUpcast().tell(new BackendActor.ReleaseNode(removed.address())));
        return this;
    }
}
