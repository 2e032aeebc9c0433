package io.weft.actors.management;

import org.apache.pekko.actor.AbstractExtensionId;
import org.apache.pekko.actor.ExtendedActorSystem;
import org.apache.pekko.actor.ExtensionId;
import org.apache.pekko.actor.ExtensionIdProvider;

/**
 * Registers Weft's HTTP routes with Pekko Management ({@code pekko.management.http.routes.weft} names this class).
 * The routes themselves are in {@link WeftHttpApi}.
 */
public final class WeftRoutes extends AbstractExtensionId<WeftHttpApi> implements ExtensionIdProvider {
    public static final WeftRoutes INSTANCE = new WeftRoutes();

    @Override
    public ExtensionId<WeftHttpApi> lookup() {
        return INSTANCE;
    }

    @Override
    public WeftHttpApi createExtension(ExtendedActorSystem system) {
        return new WeftHttpApi(system);
    }
}
