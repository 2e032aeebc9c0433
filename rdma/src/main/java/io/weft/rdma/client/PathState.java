package io.weft.rdma.client;

/** Life cycle of a client path. */
public enum PathState {
    /** First connection attempt pending. */
    CONNECTING,
    /** Admin and IO connections up, session open; carries IO. */
    CONNECTED,
    /** Failed (or never reached); the next attempt waits for an exponential, jittered backoff. */
    RECONNECTING,
    /** Disconnected by the operator; stays down until {@code reconnectPath}. */
    DISCONNECTED,
    /** Removed by the operator. */
    REMOVED
}
