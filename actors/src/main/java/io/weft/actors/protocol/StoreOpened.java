package io.weft.actors.protocol;

import io.weft.actors.WeftSerializable;
import io.weft.actors.transport.TransportEndpoint;
import io.weft.core.io.DeviceInfo;
import org.apache.pekko.actor.typed.ActorRef;

/**
 * The store is open for this client: geometry, capabilities and where to reach the data path.
 *
 * @param leaseByDataPath the storage node counts the client's heartbeats on this mapping's data path as lease
 *                        renewals (rdma, cxl; auto when the client attaches over one of them): while such a data path
 *                        is connected the client renews by message only as an audit (weft.client.lease-audit-interval)
 */
public record StoreOpened(String mappingId, String backendPath, DeviceInfo info, TransportEndpoint endpoint,
                          ActorRef<BackendCommand> backend, boolean leaseByDataPath)
        implements OpenReply, WeftSerializable {
}
