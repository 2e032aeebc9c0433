package io.weft.rdma.client;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class PathPolicyTest {
    private static final long UNKNOWN = Long.MAX_VALUE;

    @Test
    void roundRobinTakesTheNextUsablePathInTurn() {
        boolean[] usable = {true, false, true, true};
        int[] inflight = {0, 0, 0, 0};
        long[] rtt = {UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN};
        int last = -1;
        int[] picks = new int[6];
        for (int i = 0; i < picks.length; i++) {
            last = PathPolicy.ROUND_ROBIN.choose(usable, inflight, rtt, 4, last);
            picks[i] = last;
        }
        org.junit.jupiter.api.Assertions.assertArrayEquals(new int[] {0, 2, 3, 0, 2, 3}, picks);
    }

    @Test
    void minInflightPicksTheLeastBusyAndRotatesOnTies() {
        boolean[] usable = {true, true, true};
        long[] rtt = {1, 1, 1};
        assertEquals(1, PathPolicy.MIN_INFLIGHT.choose(usable, new int[] {5, 2, 9}, rtt, 3, -1));
        assertEquals(2, PathPolicy.MIN_INFLIGHT.choose(usable, new int[] {3, 3, 3}, rtt, 3, 1));
        assertEquals(0, PathPolicy.MIN_INFLIGHT.choose(usable, new int[] {3, 3, 3}, rtt, 3, 2));
        assertEquals(0, PathPolicy.MIN_INFLIGHT.choose(new boolean[] {true, false, true}, new int[] {5, 0, 9}, rtt,
                3, 0));
    }

    @Test
    void minLatencyPicksTheLowestRttThenTheLeastBusy() {
        boolean[] usable = {true, true, true};
        assertEquals(2, PathPolicy.MIN_LATENCY.choose(usable, new int[] {0, 0, 7}, new long[] {900, 500, 120}, 3,
                -1));
        assertEquals(1, PathPolicy.MIN_LATENCY.choose(usable, new int[] {4, 1, 4}, new long[] {100, 100, 100}, 3,
                -1));
        // A path whose RTT is not measured yet loses to one that is.
        assertEquals(0, PathPolicy.MIN_LATENCY.choose(usable, new int[] {9, 0, 0},
                new long[] {300, UNKNOWN, UNKNOWN}, 3, -1));
    }

    @Test
    void noUsablePathMeansNone() {
        for (PathPolicy p : PathPolicy.values()) {
            assertEquals(-1, p.choose(new boolean[] {false, false}, new int[2], new long[2], 2, 0));
        }
    }
}
