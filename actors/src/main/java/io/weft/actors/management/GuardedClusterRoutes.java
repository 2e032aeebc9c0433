package io.weft.actors.management;

import org.apache.pekko.actor.AbstractExtensionId;
import org.apache.pekko.actor.ExtendedActorSystem;
import org.apache.pekko.actor.Extension;
import org.apache.pekko.actor.ExtensionId;
import org.apache.pekko.actor.ExtensionIdProvider;
import org.apache.pekko.cluster.Cluster;
import org.apache.pekko.http.javadsl.server.Route;
import org.apache.pekko.management.cluster.javadsl.ClusterHttpManagementRoutes;
import org.apache.pekko.management.javadsl.ManagementRouteProvider;
import org.apache.pekko.management.javadsl.ManagementRouteProviderSettings;

/**
 * Pekko Management's cluster routes ({@code /cluster/members}, ...) behind {@link ManagementAuth#authenticated}: they
 * list every member's address and can down or remove members. Replaces Pekko's own provider in weft-pekko.conf
 * ({@code pekko.management.http.routes.cluster-management}); read-only unless
 * {@code pekko.management.http.route-providers-read-only = false}, as Pekko's is.
 */
public final class GuardedClusterRoutes extends AbstractExtensionId<GuardedClusterRoutes.Provider>
        implements ExtensionIdProvider {
    public static final GuardedClusterRoutes INSTANCE = new GuardedClusterRoutes();

    @Override
    public ExtensionId<Provider> lookup() {
        return INSTANCE;
    }

    @Override
    public Provider createExtension(ExtendedActorSystem system) {
        return new Provider(system);
    }

    /** The route provider Pekko Management loads. */
    public static final class Provider implements ManagementRouteProvider, Extension {
        private final ExtendedActorSystem system;

        Provider(ExtendedActorSystem system) {
            this.system = system;
        }

        @Override
        public Route routes(ManagementRouteProviderSettings settings) {
            Cluster cluster = Cluster.get(system);
            Route inner = settings.readOnly() ? ClusterHttpManagementRoutes.readOnly(cluster)
                    : ClusterHttpManagementRoutes.all(cluster);
            ManagementAuth auth = ManagementAuth.of(system);
            // Test, not consume: the inner routes match "cluster" themselves.
            return auth.pathPrefixTest("cluster", () -> auth.authenticated(() -> inner));
        }
    }
}
