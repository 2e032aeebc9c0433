package io.weft.core.stats;

import io.weft.core.io.IoOp;
import java.util.List;

/**
 * An immutable view of one device's IO statistics, taken by {@link IoStats#snapshot()}.
 *
 * @param device          the device's name
 * @param takenAtMillis   wall-clock time of the snapshot
 * @param intervalNanos   time since the previous snapshot (the window of every {@code interval} latency)
 * @param inFlight        requests submitted and not yet completed at the time of the snapshot
 * @param untracked       requests passed through without latency tracking because every in-flight slot was busy
 *                        (counted in ops and bytes at submission, never in errors)
 * @param ops             one entry per {@link IoOp}, in ordinal order
 */
public record IoStatsSnapshot(String device, long takenAtMillis, long intervalNanos, long inFlight, long untracked,
                              List<OpStats> ops) {

    public IoStatsSnapshot {
        ops = List.copyOf(ops);
    }

    /** The figures of one operation. */
    public OpStats op(IoOp op) {
        return ops.get(op.ordinal());
    }

    /**
     * Counters and latencies of one operation.
     *
     * @param op       the operation
     * @param ops      requests completed since the device was created
     * @param bytes    payload bytes of successful requests (for DISCARD and WRITE_ZEROES: bytes covered)
     * @param errors   requests completed with a non-OK status
     * @param interval latency of the requests completed since the previous snapshot
     * @param total    latency of every request completed since the device was created
     */
    public record OpStats(IoOp op, long ops, long bytes, long errors, Latency interval, Latency total) {
    }

    /**
     * Latency percentiles in nanoseconds (HdrHistogram, 2 significant digits; values above 60 s count as 60 s).
     *
     * @param count requests in the window
     */
    public record Latency(long count, long p50Nanos, long p99Nanos, long p999Nanos, long maxNanos) {
        public static final Latency EMPTY = new Latency(0, 0, 0, 0, 0);
    }
}
