package io.weft.actors.protocol;

import io.weft.actors.Reply;
import io.weft.actors.WeftSerializable;
import org.apache.pekko.actor.typed.ActorRef;

/** Creates a sparse file of {@code size} bytes (0: the node's default) under an export root of the storage node. */
public record CreateVolume(String path, long size, ActorRef<Reply> replyTo)
        implements StorageServiceCommand, WeftSerializable {
}
