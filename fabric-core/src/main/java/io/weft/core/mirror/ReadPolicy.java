package io.weft.core.mirror;

/** How a mirrored device picks the in-sync leg that serves a read. */
public enum ReadPolicy {
    /** The leg with the fewest requests in flight (ties rotate). */
    MIN_INFLIGHT,
    /** The leg with the smallest expected wait: smoothed read latency times (requests in flight + 1). */
    MIN_LATENCY
}
