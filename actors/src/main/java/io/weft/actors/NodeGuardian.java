package io.weft.actors;

import io.weft.actors.client.ClientService;
import io.weft.actors.client.DeviceExporter;
import io.weft.actors.client.DeviceRegistry;
import io.weft.actors.drill.DrillService;
import io.weft.actors.management.NodeDirectory;
import io.weft.actors.protocol.StorageServiceCommand;
import io.weft.actors.storage.StorageService;
import io.weft.actors.transport.Transports;
import java.util.Optional;
import org.apache.pekko.actor.Address;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.SupervisorStrategy;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.cluster.typed.Cluster;

/**
 * The guardian of a Weft node: starts {@link StorageService} and/or {@link ClientService} for the node's roles, and
 * with the client role a {@link DrillService}; on every node a {@link NodeDirectory} (what the consoles show).
 *
 * <p>The services other nodes reach are spawned under their well-known names ({@link NodeServices}): other nodes
 * find them by path ({@link io.weft.actors.cluster.ClusterDirectory}), so the names are part of the wire protocol.
 *
 * <p>Supervision: both services are restarted on failure without stopping their children (their state is their
 * children plus {@link NodeState}), so a bug in a service never unmaps a device or closes a backend. If the guardian
 * itself fails the actor system stops and the node ends ({@code WeftRuntime.whenTerminated()} completes). A guardian
 * lives for one incarnation of the node: when the cluster downs the node, {@code WeftRuntime} starts a new one, whose
 * client service adopts the running devices.
 */
public final class NodeGuardian extends AbstractBehavior<NodeGuardian.Command> {

    public interface Command {
    }

    public record GetServices(ActorRef<Services> replyTo) implements Command {
    }

    /** The running services; empty for a role the node does not have ({@code drills} runs with the client role). */
    public record Services(String nodeName, Optional<ActorRef<StorageServiceCommand>> storage,
                           Optional<ActorRef<ClientService.Command>> client,
                           Optional<ActorRef<DrillService.Command>> drills) {
    }

    public static Behavior<Command> create(WeftSettings settings, NodeState nodeState, Transports transports,
                                           DeviceExporter exporter, DeviceRegistry registry) {
        return Behaviors.setup(ctx -> new NodeGuardian(ctx, settings, nodeState, transports, exporter, registry));
    }

    private final Services services;

    private NodeGuardian(ActorContext<Command> ctx, WeftSettings configured, NodeState nodeState, Transports transports,
                     DeviceExporter exporter, DeviceRegistry registry) {
        super(ctx);
        String name = configured.nodeName();
        if (name.isBlank()) {
            Address self = Cluster.get(ctx.getSystem()).selfMember().address();
            name = self.host().get() + ":" + self.port().get();
        }
        WeftSettings settings = configured.withNodeName(name);
        nodeState.nodeName(name);
        SupervisorStrategy keepChildren = SupervisorStrategy.restart().withStopChildren(false);
        Optional<ActorRef<StorageServiceCommand>> storage = Optional.empty();
        Optional<ActorRef<ClientService.Command>> client = Optional.empty();
        Optional<ActorRef<DrillService.Command>> drills = Optional.empty();
        if (settings.isStorage()) {
            storage = Optional.of(ctx.spawn(Behaviors.supervise(StorageService.create(settings, nodeState, transports))
                    .onFailure(keepChildren), NodeServices.STORAGE.name()));
        }
        if (settings.isClient()) {
            client = Optional.of(ctx.spawn(Behaviors.supervise(ClientService.create(settings, nodeState, transports,
                    exporter, registry)).onFailure(keepChildren), "client"));
            // Resumed, not restarted: its state is the drills it runs (threads, faults on other nodes).
            drills = Optional.of(ctx.spawn(Behaviors.supervise(DrillService.create(settings, nodeState))
                    .onFailure(SupervisorStrategy.resume()), "drills"));
        }
        // What this node tells the others' consoles (name, roles, transports); stateless.
        ctx.spawn(Behaviors.supervise(NodeDirectory.create(settings, transports))
                .onFailure(SupervisorStrategy.restart()), NodeServices.NODE_DIRECTORY.name());
        this.services = new Services(name, storage, client, drills);
        ctx.getLog().info("weft node '{}' started with roles {}", name, settings.roles());
    }

    @Override
    public Receive<Command> createReceive() {
        return newReceiveBuilder()
                .onMessage(GetServices.class, get -> {
                    get.replyTo().tell(services);
                    return this;
                })
                .build();
    }
}
