package io.weft.actors.protocol;

import io.weft.actors.WeftSerializable;
import org.apache.pekko.actor.typed.ActorRef;

/**
 * Renews one mapping's lease in its backend and answers with its geometry. Clients renew in batches
 * ({@link RenewLeases}); this single-mapping form stays for tools and tests that probe one mapping.
 */
public record Heartbeat(String mappingId, ActorRef<HeartbeatReply> replyTo)
        implements BackendCommand, WeftSerializable {
}
