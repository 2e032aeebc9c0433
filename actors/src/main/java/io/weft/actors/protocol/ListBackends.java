package io.weft.actors.protocol;

import io.weft.actors.WeftSerializable;
import org.apache.pekko.actor.typed.ActorRef;

/** Asks a storage node for its opened backing stores. */
public record ListBackends(ActorRef<BackendList> replyTo) implements StorageServiceCommand, WeftSerializable {
}
