package io.weft.actors.transport;

import java.io.IOException;

/** Client side of a transport: turns an open reply's endpoint into a BlockDevice. */
public interface TransportConnector {
    /**
     * @param endpoint  from the storage node's open reply
     * @param onFailure called once if the channel dies on its own (connection reset, heartbeat lost)
     * @throws IOException when the endpoint cannot be reached from here (the session retries with backoff)
     */
    MappingChannel connect(TransportEndpoint endpoint, ChannelFailureListener onFailure) throws IOException;
}
