package io.weft.actors.protocol;

import io.weft.actors.Reply;
import io.weft.actors.WeftSerializable;
import org.apache.pekko.actor.typed.ActorRef;

/** Grows a backing store (shrinks it only while unmapped); mapped clients learn the new size through their sessions. */
public record ResizeStore(String path, long newSize, ActorRef<Reply> replyTo)
        implements StorageServiceCommand, WeftSerializable {
}
