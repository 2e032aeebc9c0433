package io.weft.actors.transport;

import io.weft.core.io.BlockDevice;
import java.io.IOException;

/** Storage side of a transport: serves one mapping's device and tells the client where to find it. */
public interface TransportAcceptor {
    /**
     * @param mappingId unique per mapping on this node
     * @param device    the mapping's view of the backing store (already read-only for ro mappings)
     * @param grant     who may attach: the data plane admits only a peer that proves this grant (transports that
     *                  cannot check it say so in their docs)
     * @param onFailure called once if the served channel dies on its own
     */
    ServedChannel serve(String mappingId, BlockDevice device, MappingGrant grant, ChannelFailureListener onFailure)
            throws IOException;
}
