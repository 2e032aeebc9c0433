package io.weft.actors.cluster;

import org.apache.pekko.actor.ActorSystem;
import org.apache.pekko.actor.Props;
import org.apache.pekko.cluster.Cluster;
import org.apache.pekko.cluster.DowningProvider;
import org.apache.pekko.cluster.sbr.SplitBrainResolver$;
import org.apache.pekko.cluster.sbr.SplitBrainResolverSettings;
import scala.Option;
import scala.concurrent.duration.FiniteDuration;

/**
 * Pekko's Split Brain Resolver with Weft's rule ({@link StorageAwareMajority}) instead of one of Pekko's strategies.
 * Enabled by {@code pekko.cluster.downing-provider-class} (weft-pekko.conf); stable-after and down-all-when-unstable
 * are Pekko's {@code pekko.cluster.split-brain-resolver} settings, which {@code weft.cluster.split-brain-resolver}
 * sets. Every node of a cluster must run the same downing provider.
 */
public final class StorageAwareDowningProvider extends DowningProvider {
    private final ActorSystem system;
    private final SplitBrainResolverSettings settings;

    public StorageAwareDowningProvider(ActorSystem system) {
        this.system = system;
        this.settings = new SplitBrainResolverSettings(system.settings().config());
    }

    @Override
    public FiniteDuration downRemovalMargin() {
        FiniteDuration margin = Cluster.get(system).settings().DownRemovalMargin();
        return margin.length() != 0 ? margin : settings.DowningStableAfter();
    }

    @Override
    public Option<Props> downingActorProps() {
        Cluster cluster = Cluster.get(system);
        StorageAwareMajority strategy = new StorageAwareMajority(cluster.selfDataCenter(),
                cluster.selfUniqueAddress());
        return Option.apply(SplitBrainResolver$.MODULE$.props(settings.DowningStableAfter(), strategy));
    }
}
