package io.weft.actors.protocol;

import io.weft.actors.WeftSerializable;
import java.util.List;
import org.apache.pekko.actor.typed.ActorRef;

/**
 * From a client node's lease renewer, every {@code weft.client.heartbeat-interval}: renews the lease of every mapping
 * named, each in its backend (issue 12: one message per client/storage node pair, not per device). A mapping not
 * named is not renewed. A mapping the storage node does not know is reported to {@code renewer}
 * ({@link LeaseUnknown}); the answer ({@code replyTo}) says the batch arrived.
 */
public record RenewLeases(String clientNode, List<Lease> leases, ActorRef<LeaseRenewerCommand> renewer,
                          ActorRef<LeasesRenewed> replyTo) implements StorageServiceCommand, WeftSerializable {
}
