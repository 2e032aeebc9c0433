package io.weft.actors.transport;

/**
 * Storage side: a mapping's device being served; the endpoint goes into the open reply.
 *
 * <p>Client liveness (issue 12): a transport whose data path proves on its own that the client process runs (RDMA
 * admin heartbeats, CXL blkdev heartbeats) says so with {@link #carriesClientLiveness()} and reports the last time it
 * heard the client with {@link #clientLastHeardNanos()}; the backend counts that as a lease renewal, so the client
 * renews such a mapping by message only as a slow audit. Any other transport keeps the defaults: the lease is renewed
 * by message only, as before.
 */
public interface ServedChannel extends DataChannel {
    /** {@link #clientLastHeardNanos()}: the client has not been heard on the data path (not attached yet, or never). */
    long NEVER_HEARD = Long.MIN_VALUE;

    TransportEndpoint endpoint();

    /** True when {@link #clientLastHeardNanos()} tracks the client's liveness on this channel's data path. */
    default boolean carriesClientLiveness() {
        return false;
    }

    /**
     * When the granted client was last heard on the data path (System.nanoTime), or {@link #NEVER_HEARD}. Called on the
     * backend actor's lease check (control path; may walk the transport's sessions or tables).
     */
    default long clientLastHeardNanos() {
        return NEVER_HEARD;
    }
}
