package io.weft.actors.protocol;

import io.weft.actors.Reply;
import io.weft.actors.WeftSerializable;
import org.apache.pekko.actor.typed.ActorRef;

/** The client unmaps: the backend releases the mapping. */
public record CloseMapping(String mappingId, ActorRef<Reply> replyTo) implements BackendCommand, WeftSerializable {
}
