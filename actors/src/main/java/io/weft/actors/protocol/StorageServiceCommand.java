package io.weft.actors.protocol;

import org.apache.pekko.actor.typed.receptionist.ServiceKey;

/** A message a storage node's storage service accepts; it is found through {@link #ALL} or {@link #keyFor}. */
public interface StorageServiceCommand {

    /** Every storage node. */
    ServiceKey<StorageServiceCommand> ALL = ServiceKey.create(StorageServiceCommand.class, "weft-storage");

    /** One storage node, by its {@code weft.node.name}: what a client's sessions subscribe to. */
    static ServiceKey<StorageServiceCommand> keyFor(String nodeName) {
        return ServiceKey.create(StorageServiceCommand.class, "weft-storage@" + nodeName);
    }
}
