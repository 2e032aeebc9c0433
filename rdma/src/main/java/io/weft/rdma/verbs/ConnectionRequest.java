package io.weft.rdma.verbs;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;

/**
 * An incoming connection waiting for a decision: accept it into a protection domain and completion queue, or reject.
 */
public interface ConnectionRequest {

    /** The connecting side's private data (read-only). */
    ByteBuffer privateData();

    InetSocketAddress remoteAddress();

    InetSocketAddress localAddress();

    /**
     * Accepts: creates the queue pair, runs {@code setup}, answers the peer with {@code replyPrivateData} and hands
     * the connection to {@code cq}'s owner.
     */
    VerbsConnection accept(ProtectionDomain pd, CompletionQueue cq, ConnectionOptions options,
                           byte[] replyPrivateData, ConnectionSetup setup) throws IOException;

    /** Refuses the connection; {@code reason} reaches the peer's connect call. */
    void reject(int reason);
}
