package io.weft.actors.management;

import io.weft.actors.WeftRuntime;
import io.weft.actors.WeftSettings;
import io.weft.actors.management.protocol.DescribeNode;
import io.weft.actors.management.protocol.NodeInfo;
import io.weft.actors.transport.Transports;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.cluster.typed.Cluster;

/**
 * Every node runs one at its well-known path ({@code NodeServices.NODE_DIRECTORY}, found by
 * {@link io.weft.actors.cluster.ClusterDirectory}): it tells whoever asks
 * ({@link DescribeNode}) the node's name, roles, transports and console address. One node's console shows the whole
 * cluster by asking them all (membership has the status and reachability; this has the rest). Stateless, so the
 * guardian restarts it on failure.
 */
public final class NodeDirectory extends AbstractBehavior<NodeDirectory.Command> {
    /** The protocol: {@link DescribeNode} (in {@code management.protocol}, it crosses nodes). */
    public interface Command {
    }

    public static Behavior<Command> create(WeftSettings settings, Transports transports) {
        return Behaviors.setup(ctx -> new NodeDirectory(ctx, settings, transports));
    }

    private final WeftSettings settings;
    private final Transports transports;

    private NodeDirectory(ActorContext<Command> ctx, WeftSettings settings, Transports transports) {
        super(ctx);
        this.settings = settings;
        this.transports = transports;
    }

    @Override
    public Receive<Command> createReceive() {
        return newReceiveBuilder().onMessage(DescribeNode.class, this::onDescribe).build();
    }

    private Behavior<Command> onDescribe(DescribeNode ask) {
        // The runtime registers itself after the guardian starts; until then (a second or so) no console address.
        var runtime = WeftRuntime.of(Adapter.toClassic(getContext().getSystem()));
        String console = runtime.flatMap(WeftRuntime::httpUri).map(Object::toString).orElse("");
        int incarnation = runtime.map(WeftRuntime::incarnation).orElse(0);
        ask.replyTo().tell(new NodeInfo(settings.nodeName(),
                Cluster.get(getContext().getSystem()).selfMember().address().toString(),
                settings.roles().stream().sorted().toList(), transports.names(), console, incarnation));
        return this;
    }
}
