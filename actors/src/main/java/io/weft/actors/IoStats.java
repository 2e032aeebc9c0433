package io.weft.actors;

import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import java.util.concurrent.atomic.AtomicLong;
import org.HdrHistogram.Histogram;
import org.HdrHistogram.Recorder;

/**
 * Per-device (or per-backend) IO figures: counters and a latency histogram. Recording is wait-free and allocates
 * nothing (atomic adds and an HdrHistogram {@link Recorder}); reading merges the recorder's interval into a running
 * total under a lock, which only the management side takes.
 */
public final class IoStats {
    private final AtomicLong reads = new AtomicLong();
    private final AtomicLong writes = new AtomicLong();
    private final AtomicLong others = new AtomicLong();
    private final AtomicLong bytesRead = new AtomicLong();
    private final AtomicLong bytesWritten = new AtomicLong();
    private final AtomicLong errors = new AtomicLong();
    private final AtomicLong timeouts = new AtomicLong();
    /** Latency in nanoseconds, 1 ns .. 1 h, 2 significant digits. */
    private final Recorder recorder = new Recorder(3_600_000_000_000L, 2);
    private final Histogram total = new Histogram(3_600_000_000_000L, 2);
    private Histogram interval;

    public void record(IoOp op, int length, int status, long latencyNanos) {
        if (status != IoStatus.OK) {
            errors.incrementAndGet();
            if (status == IoStatus.EIO || status == IoStatus.ETIMEDOUT) {
                // Counted separately so dashboards can tell a lost path from a bad request.
                timeouts.incrementAndGet();
            }
        } else if (op == IoOp.READ) {
            reads.incrementAndGet();
            bytesRead.addAndGet(length);
        } else if (op == IoOp.WRITE) {
            writes.incrementAndGet();
            bytesWritten.addAndGet(length);
        } else {
            others.incrementAndGet();
        }
        if (latencyNanos >= 0) {
            recorder.recordValue(Math.min(latencyNanos, 3_600_000_000_000L));
        }
    }

    /** A consistent-enough copy for status tables and metrics. */
    public synchronized Snapshot snapshot() {
        interval = recorder.getIntervalHistogram(interval);
        total.add(interval);
        return new Snapshot(reads.get(), writes.get(), others.get(), bytesRead.get(), bytesWritten.get(), errors.get(),
                timeouts.get(), total.getTotalCount(), total.getValueAtPercentile(50.0) / 1000.0,
                total.getValueAtPercentile(99.0) / 1000.0, total.getValueAtPercentile(99.9) / 1000.0,
                total.getMaxValue() / 1000.0);
    }

    /** Counters since start; latencies in microseconds. */
    public record Snapshot(long reads, long writes, long otherOps, long bytesRead, long bytesWritten, long errors,
                           long eioOrTimeouts, long latencySamples, double p50Micros, double p99Micros,
                           double p999Micros, double maxMicros) {
        public static final Snapshot EMPTY = new Snapshot(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    }
}
