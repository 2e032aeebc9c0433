package io.weft.actors.storage;

import io.weft.actors.ExportRoots;
import io.weft.actors.NodeState;
import io.weft.actors.Reply;
import io.weft.actors.WeftSettings;
import io.weft.actors.protocol.BackendCommand;
import io.weft.actors.protocol.BackendList;
import io.weft.actors.protocol.CreateVolume;
import io.weft.actors.protocol.DescribeProcess;
import io.weft.actors.protocol.Lease;
import io.weft.actors.protocol.LeaseUnknown;
import io.weft.actors.protocol.LeasesRenewed;
import io.weft.actors.protocol.ListBackends;
import io.weft.actors.protocol.OpenRefused;
import io.weft.actors.protocol.OpenStore;
import io.weft.actors.protocol.ProcessInfo;
import io.weft.actors.protocol.RenewLeases;
import io.weft.actors.protocol.ResizeStore;
import io.weft.actors.protocol.StorageServiceCommand;
import io.weft.actors.transport.Transports;
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
import org.apache.pekko.cluster.ClusterEvent;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Subscribe;

/**
 * The storage role of a node: passive, as an IBNBD server is. Clients name a path; it is served if it lies under an
 * export root ({@link ExportRoots}), through one {@link BackendActor} per opened backing store.
 *
 * <p>Its messages, the records of {@code io.weft.actors.protocol} that implement {@link StorageServiceCommand}, come
 * from other nodes, which find it at its well-known path on every storage member ({@code NodeServices.STORAGE},
 * {@link io.weft.actors.cluster.ClusterDirectory}): nothing to register. Watches cluster membership: when a node is
 * removed (left or downed), every backend drops that node's mappings.
 *
 * <p>Supervision (applied by {@code NodeGuardian}): restarted on failure without stopping its children, so open
 * backends and their mappings survive; backends are found again by child name. Its own children ({@link BackendActor})
 * are restarted on failure, which reopens the store and drops its mappings; clients then re-open by themselves.
 */
public final class StorageService extends AbstractBehavior<StorageServiceCommand> {

    /** Its own message: a node left the cluster (the cross-node ones are in {@code io.weft.actors.protocol}). */
    private record NodeRemoved(Address address) implements StorageServiceCommand {
    }

    public static Behavior<StorageServiceCommand> create(WeftSettings settings, NodeState nodeState,
                                                         Transports transports) {
        return Behaviors.setup(ctx -> new StorageService(ctx, settings, nodeState, transports));
    }

    private final WeftSettings settings;
    private final NodeState nodeState;
    private final Transports transports;
    private final ExportRoots exportRoots;

    private StorageService(ActorContext<StorageServiceCommand> ctx, WeftSettings settings, NodeState nodeState,
                           Transports transports) {
        super(ctx);
        this.settings = settings;
        this.nodeState = nodeState;
        this.transports = transports;
        this.exportRoots = ExportRoots.forNode(settings);
        ActorRef<ClusterEvent.MemberRemoved> removed =
                ctx.messageAdapter(ClusterEvent.MemberRemoved.class, e -> new NodeRemoved(e.member().address()));
        Cluster.get(ctx.getSystem()).subscriptions().tell(Subscribe.create(removed, ClusterEvent.MemberRemoved.class));
        ctx.getLog().info("storage service '{}' up; export roots {}", settings.nodeName(), exportRoots.roots());
    }

    @Override
    public Receive<StorageServiceCommand> createReceive() {
        return newReceiveBuilder()
                .onMessage(OpenStore.class, this::onOpen)
                .onMessage(RenewLeases.class, this::onRenewLeases)
                .onMessage(CreateVolume.class, this::onCreateVolume)
                .onMessage(ResizeStore.class, this::onResize)
                .onMessage(ListBackends.class, this::onList)
                .onMessage(NodeRemoved.class, this::onNodeRemoved)
                .onMessage(DescribeProcess.class, d -> {
                    d.replyTo().tell(new ProcessInfo(settings.nodeName(), ProcessHandle.current().pid(),
                            io.weft.actors.drill.ProcFs.bootId()));
                    return this;
                })
                .build();
    }

    private Behavior<StorageServiceCommand> onOpen(OpenStore open) {
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

    private Behavior<StorageServiceCommand> onRenewLeases(RenewLeases renew) {
        for (Lease lease : renew.leases()) {
            // Only a live child: a backend that stopped since the client opened has forgotten its mappings.
            Optional<ActorRef<Void>> child = getContext().getChild(lease.backend().path().name());
            if (child.isPresent() && child.get().equals(lease.backend())) {
                lease.backend().tell(new BackendActor.Renew(lease.mappingId(), lease.knownSize(), renew.renewer()));
            } else {
                renew.renewer().tell(new LeaseUnknown(lease.mappingId()));
            }
        }
        renew.replyTo().tell(new LeasesRenewed(renew.leases().size()));
        return this;
    }

    private ActorRef<BackendCommand> backendFor(Path real) {
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

    private Behavior<StorageServiceCommand> onCreateVolume(CreateVolume create) {
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

    private Behavior<StorageServiceCommand> onResize(ResizeStore resize) {
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

    private Behavior<StorageServiceCommand> onList(ListBackends list) {
        List<NodeState.BackendStatus> out = new ArrayList<>();
        for (NodeState.BackendEntry e : nodeState.backends()) {
            out.add(e.status());
        }
        list.replyTo().tell(new BackendList(settings.nodeName(), out));
        return this;
    }

    private Behavior<StorageServiceCommand> onNodeRemoved(NodeRemoved removed) {
        getContext().getLog().info("node {} left the cluster; releasing its mappings", removed.address());
        getContext().getChildren().forEach(child ->
                child.<BackendCommand>unsafeUpcast().tell(new BackendActor.ReleaseNode(removed.address())));
        return this;
    }
}
