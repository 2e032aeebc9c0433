package io.weft.actors.protocol;

import io.weft.actors.WeftSerializable;
import io.weft.actors.transport.TransportEndpoint;
import io.weft.core.io.DeviceInfo;
import org.apache.pekko.actor.typed.ActorRef;

/** The store is open for this client: geometry, capabilities and where to reach the data path. */
public record StoreOpened(String mappingId, String backendPath, DeviceInfo info, TransportEndpoint endpoint,
                          ActorRef<BackendCommand> backend) implements OpenReply, WeftSerializable {
}
