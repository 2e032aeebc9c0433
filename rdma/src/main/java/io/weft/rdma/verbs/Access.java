package io.weft.rdma.verbs;

/** Memory-region access bits (the subset of ibv_access_flags the protocol uses). */
public final class Access {
    /** The local adapter may write into the region (receives, incoming data). */
    public static final int LOCAL_WRITE = 1;
    /** A peer holding the rkey may RDMA-write into the region. */
    public static final int REMOTE_WRITE = 1 << 1;

    private Access() {
    }
}
