package io.weft.rdma.verbs;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.time.Duration;

/**
 * The small verbs surface the session protocol needs: protection domains with registered memory, completion queues
 * polled by one owner thread, reliable connections carrying write-with-immediate, send and receive, and a
 * connection manager (listen / connect with private data).
 *
 * <p>Threading rule shared by every provider: a connection is used (posts, polls, flushes) only by the thread that
 * currently owns its completion queue — one thread at a time, ownership handed over with a happens-before (the client
 * queue's role, see ClientQueue) — except inside {@link ConnectionSetup#prepare}, which runs before the connection is
 * handed to that queue. {@link CompletionQueue#await} is called by a thread that does not own the queue at that
 * moment only to wait; {@link VerbsConnection#close()} and {@link CompletionQueue#wakeup()} may be called from any
 * thread.
 */
public interface VerbsProvider extends AutoCloseable {

    /** Short name for logs and status tables: {@code software} or {@code disni}. */
    String name();

    ProtectionDomain createProtectionDomain();

    CompletionQueue createCompletionQueue(String name);

    /** Starts accepting connections on {@code address} (port 0 picks a free port). */
    VerbsListener listen(InetSocketAddress address, ConnectionRequestHandler handler) throws IOException;

    /**
     * Opens a reliable connection, blocking up to {@code timeout}. {@code setup} runs once the queue pair exists and
     * before the peer can send anything that needs a posted receive.
     *
     * @param local        local address to bind (selects the path's interface), or {@code null}
     * @param privateData  carried to the peer's {@link ConnectionRequest#privateData()} (at most
     *                     {@link #MAX_PRIVATE_DATA} bytes, the RDMA CM limit for reliable connections)
     * @throws IOException when the peer rejects, is unreachable or does not answer in time
     */
    VerbsConnection connect(InetSocketAddress remote, InetSocketAddress local, ProtectionDomain pd,
                            CompletionQueue cq, ConnectionOptions options, byte[] privateData, Duration timeout,
                            ConnectionSetup setup) throws IOException;

    @Override
    void close();

    /** RDMA CM carries at most 56 bytes of private data on a reliable-connection request. */
    int MAX_PRIVATE_DATA = 56;
}
