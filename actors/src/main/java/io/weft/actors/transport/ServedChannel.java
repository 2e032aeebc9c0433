package io.weft.actors.transport;

/** Storage side: a mapping's device being served; the endpoint goes into the open reply. */
public interface ServedChannel extends DataChannel {
    TransportEndpoint endpoint();
}
