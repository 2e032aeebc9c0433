package io.weft.rdma.verbs;

import java.net.InetSocketAddress;
import java.nio.ByteBuffer;

/**
 * One reliable connection (a queue pair). Posts return {@code false} when the send queue is full: the caller keeps
 * the work and retries after the next poll. Local regions must belong to this connection's protection domain.
 * Posts are unsignalled: the protocol's request/response pairing tells when a buffer may be reused.
 */
public interface VerbsConnection extends AutoCloseable {

    boolean postSend(MemoryRegion local, int offset, int length);

    boolean postWrite(MemoryRegion local, int offset, int length, long remoteAddress, int rkey);

    /** RDMA write of {@code length} bytes (may be 0) followed by {@code immediate} in the peer's receive completion. */
    boolean postWriteWithImmediate(MemoryRegion local, int offset, int length, long remoteAddress, int rkey,
                                   int immediate);

    /** Posts a receive buffer; write-with-immediate consumes one receive without touching its buffer. */
    boolean postReceive(MemoryRegion local, int offset, int length, long wrId);

    /** The private data the peer attached when accepting (client side) or connecting (server side). */
    ByteBuffer peerPrivateData();

    InetSocketAddress localAddress();

    InetSocketAddress remoteAddress();

    boolean isOpen();

    /** Caller's context object (set during setup; read by completion handlers without a lookup). */
    Object attachment();

    void attach(Object attachment);

    /** Tears the connection down; the owner then receives {@link CompletionHandler#onError}. Any thread. */
    @Override
    void close();
}
