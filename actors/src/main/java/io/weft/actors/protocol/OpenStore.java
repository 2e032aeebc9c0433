package io.weft.actors.protocol;

import io.weft.actors.AccessMode;
import io.weft.actors.WeftSerializable;
import org.apache.pekko.actor.typed.ActorRef;

/**
 * A client opens a backing store (the IBNBD "map" request); answered with {@link StoreOpened} or {@link OpenRefused}.
 * {@code session} is the client's session, which the backend tells about resizes and revocations.
 */
public record OpenStore(String clientNode, String deviceId, String path, AccessMode mode, String transport,
                        ActorRef<SessionCommand> session, ActorRef<OpenReply> replyTo)
        implements StorageServiceCommand, WeftSerializable {
}
