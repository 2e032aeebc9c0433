package io.weft.rdma.verbs;

import java.net.InetSocketAddress;

/** A listening endpoint. Closing it stops new connections; established ones stay. */
public interface VerbsListener extends AutoCloseable {
    InetSocketAddress localAddress();

    @Override
    void close();
}
