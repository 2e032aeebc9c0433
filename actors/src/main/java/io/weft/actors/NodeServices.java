package io.weft.actors;

import io.weft.actors.cluster.ClusterDirectory.Service;
import io.weft.actors.management.ClusterTokenActor;
import io.weft.actors.management.NodeDirectory;
import io.weft.actors.protocol.StorageServiceCommand;

/**
 * The well-known paths of the services other nodes reach, in one place: {@link NodeGuardian} and {@link WeftRuntime}
 * spawn them under these names, and {@link io.weft.actors.cluster.ClusterDirectory} addresses them on every member.
 * Renaming one is a wire change: nodes of the old and the new version would not find each other's service.
 */
public final class NodeServices {
    private NodeServices() {
    }

    /** {@link io.weft.actors.storage.StorageService}, on members with the storage role. */
    public static final Service<StorageServiceCommand> STORAGE =
            new Service<>("user", "storage", WeftSettings.ROLE_STORAGE);

    /** {@link NodeDirectory}, on every member: what the consoles show. */
    public static final Service<NodeDirectory.Command> NODE_DIRECTORY = new Service<>("user", "directory", null);

    /** {@link ClusterTokenActor}, a system actor on every member: the cluster's management token. */
    public static final Service<ClusterTokenActor.Command> MANAGEMENT_TOKEN =
            new Service<>("system", "management-token", null);
}
