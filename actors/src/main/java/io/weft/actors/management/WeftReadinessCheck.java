package io.weft.actors.management;

import io.weft.actors.WeftRuntime;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.function.Supplier;
import org.apache.pekko.actor.ActorSystem;
import org.apache.pekko.cluster.Cluster;
import org.apache.pekko.cluster.MemberStatus;

/** {@code /ready}: the node's services run and it is an Up member of the cluster. */
public final class WeftReadinessCheck implements Supplier<CompletionStage<Boolean>> {
    private final ActorSystem system;

    public WeftReadinessCheck(ActorSystem system) {
        this.system = system;
    }

    @Override
    public CompletionStage<Boolean> get() {
        boolean up = WeftRuntime.of(system).isPresent()
                && Cluster.get(system).selfMember().status() == MemberStatus.up();
        return CompletableFuture.completedFuture(up);
    }
}
