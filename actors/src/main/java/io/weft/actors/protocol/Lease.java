package io.weft.actors.protocol;

import io.weft.actors.WeftSerializable;
import org.apache.pekko.actor.typed.ActorRef;

/** One mapping in a {@link RenewLeases} batch: its backend on the storage node and the store size its client knows. */
public record Lease(String mappingId, ActorRef<BackendCommand> backend, long knownSize) implements WeftSerializable {
}
