package io.weft.rdma.client;

/**
 * How a request picks among the connected paths of a session (after RTRS's multipath policies).
 */
public enum PathPolicy {
    /** Each request takes the next connected path in turn. */
    ROUND_ROBIN,
    /** The path with the fewest requests in flight (ties: the next in turn). The default. */
    MIN_INFLIGHT,
    /** The path with the lowest heartbeat round-trip time (ties: fewest in flight). */
    MIN_LATENCY;

    /**
     * Picks a path index. Pure function over the agent's scratch arrays, so it allocates nothing and is easy to test.
     *
     * @param usable   which indices may carry a request now
     * @param inflight requests in flight per index
     * @param rttNanos smoothed heartbeat RTT per index ({@code Long.MAX_VALUE} when not yet measured)
     * @param count    number of indices to consider
     * @param last     index chosen last time (round-robin cursor), or -1
     * @return the chosen index, or -1 when none is usable
     */
    public int choose(boolean[] usable, int[] inflight, long[] rttNanos, int count, int last) {
        int best = -1;
        for (int step = 1; step <= count; step++) {
            int i = Math.floorMod(last + step, count);
            if (!usable[i]) {
                continue;
            }
            if (best < 0) {
                best = i;
                if (this == ROUND_ROBIN) {
                    return i;
                }
                continue;
            }
            if (this == MIN_INFLIGHT) {
                if (inflight[i] < inflight[best]) {
                    best = i;
                }
            } else if (rttNanos[i] < rttNanos[best]
                    || (rttNanos[i] == rttNanos[best] && inflight[i] < inflight[best])) {
                best = i;
            }
        }
        return best;
    }
}
