package io.weft.actors.transport;

/**
 * A way to move IO between a client node and a storage node. The CXL (shared memory) and RDMA transports implement
 * this when they land; {@link InProcessTransport} serves a client in the same JVM and {@link ControlOnlyTransport}
 * maps without any data path (control-plane tests across JVMs).
 */
public interface Transport {
    /** Name used in config ({@code weft.transport.*}), map requests and endpoints. */
    String name();

    TransportAcceptor acceptor();

    TransportConnector connector();
}
