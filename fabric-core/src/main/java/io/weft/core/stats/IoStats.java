package io.weft.core.stats;

import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.LongAdder;
import org.HdrHistogram.Histogram;
import org.HdrHistogram.PackedHistogram;
import org.HdrHistogram.Recorder;

/**
 * IO statistics of one device: per operation the completed requests, bytes and errors, plus the requests in flight
 * and latency percentiles from HdrHistogram.
 *
 * <p>Recording ({@link #begin()}/{@link #end}, {@link #record}) may happen on any number of threads at once and is
 * wait-free: {@link LongAdder}s for counters and an HdrHistogram {@link Recorder} per operation, whose fixed-range
 * histograms never resize, so nothing is allocated or locked per request. The reader-side histograms are packed:
 * they grow, under the reader's lock, only as far as the latencies seen need. Readers call {@link #snapshot()}, which
 * swaps each recorder's interval histogram and returns an immutable {@link IoStatsSnapshot}; only readers
 * synchronise with each other.
 */
public final class IoStats {
    /** Latencies above this are recorded as this (a request that slow is an incident, not a distribution). */
    public static final long HIGHEST_TRACKABLE_NANOS = TimeUnit.SECONDS.toNanos(60);
    private static final int SIGNIFICANT_DIGITS = 2;
    private static final IoOp[] OPS = IoOp.values();
    /** A recorder holds two of these (active and inactive), full size from the start. */
    private static final long RECORDER_HISTOGRAM_FOOTPRINT =
            new Histogram(1, HIGHEST_TRACKABLE_NANOS, SIGNIFICANT_DIGITS).getEstimatedFootprintInBytes();

    private final String device;
    private final LongAdder[] ops = new LongAdder[OPS.length];
    private final LongAdder[] bytes = new LongAdder[OPS.length];
    private final LongAdder[] errors = new LongAdder[OPS.length];
    private final Recorder[] latency = new Recorder[OPS.length];
    /** Incremented by begin, decremented by end; a LongAdder so connections on many cores do not share a line. */
    private final LongAdder inFlight = new LongAdder();
    private final LongAdder untracked = new LongAdder();

    // Reader side, guarded by this.
    private final Histogram[] intervalHistograms = new Histogram[OPS.length];
    private final Histogram[] totalHistograms = new Histogram[OPS.length];
    private final IoStatsSnapshot.Latency[] lastInterval = new IoStatsSnapshot.Latency[OPS.length];
    private final IoStatsSnapshot.Latency[] lastTotal = new IoStatsSnapshot.Latency[OPS.length];
    /** Latencies since the last {@link #sample()}, whoever took the snapshots in between (the console's ring). */
    private final Histogram[] sampleHistograms = new Histogram[OPS.length];
    private long lastSnapshotNanos = System.nanoTime();
    private long lastIntervalNanos;
    private long lastSampleNanos = lastSnapshotNanos;

    public IoStats(String device) {
        this.device = device;
        for (int i = 0; i < OPS.length; i++) {
            ops[i] = new LongAdder();
            bytes[i] = new LongAdder();
            errors[i] = new LongAdder();
            latency[i] = new Recorder(1, HIGHEST_TRACKABLE_NANOS, SIGNIFICANT_DIGITS);
            // Reader side: packed, so they take room only for the latencies recorded (an idle device's cost a few
            // hundred bytes, not 31 KB each); they grow under the reader's lock, never on the recording path.
            intervalHistograms[i] = new PackedHistogram(1, HIGHEST_TRACKABLE_NANOS, SIGNIFICANT_DIGITS);
            totalHistograms[i] = new PackedHistogram(1, HIGHEST_TRACKABLE_NANOS, SIGNIFICANT_DIGITS);
            sampleHistograms[i] = new PackedHistogram(1, HIGHEST_TRACKABLE_NANOS, SIGNIFICANT_DIGITS);
            lastInterval[i] = IoStatsSnapshot.Latency.EMPTY;
            lastTotal[i] = IoStatsSnapshot.Latency.EMPTY;
        }
    }

    public String device() {
        return device;
    }

    /** Marks a request as in flight; returns its start time for {@link #end}. */
    public long begin() {
        inFlight.increment();
        return System.nanoTime();
    }

    /** Completes a request started with {@link #begin()}. */
    public void end(IoOp op, long length, int status, long startNanos) {
        long latencyNanos = System.nanoTime() - startNanos;
        inFlight.decrement();
        record(op, length, status, latencyNanos);
    }

    /** Records one completed request whose latency the caller measured itself (not counted as in flight). */
    public void record(IoOp op, long length, int status, long latencyNanos) {
        int i = op.ordinal();
        ops[i].increment();
        if (status == IoStatus.OK) {
            bytes[i].add(length);
        } else {
            errors[i].increment();
        }
        latency[i].recordValue(Math.max(1, Math.min(latencyNanos, HIGHEST_TRACKABLE_NANOS)));
    }

    /** Counts a request that bypassed latency tracking (its status is not seen). */
    public void recordUntracked(IoOp op, long length) {
        int i = op.ordinal();
        ops[i].increment();
        bytes[i].add(length);
        untracked.increment();
    }

    /** Requests currently between {@link #begin()} and {@link #end}. */
    public long inFlight() {
        return inFlight.sum();
    }

    /**
     * Requests completed so far, every operation together (failed and untracked ones included): lock-free and
     * allocation-free, so a periodic sampler can tell "nothing happened since last time" without {@link #sample()}.
     */
    public long completed() {
        long sum = 0;
        for (LongAdder adder : ops) {
            sum += adder.sum();
        }
        return sum;
    }

    /**
     * Closes the {@link #sample()} window without copying anything, for a sampler that saw no request complete since
     * its last sample ({@link #completed()} unchanged, nothing in flight): the next {@code sample()}'s interval then
     * starts here, so its rates are over its own interval only. A request completing concurrently is not lost: its
     * counts and latency go to the next sample.
     */
    public synchronized void skipIdleSample() {
        lastSampleNanos = System.nanoTime();
    }

    /** Takes the latencies of the interval since the previous snapshot and returns every figure. */
    public synchronized IoStatsSnapshot snapshot() {
        long now = System.nanoTime();
        List<IoStatsSnapshot.OpStats> perOp = new ArrayList<>(OPS.length);
        for (int i = 0; i < OPS.length; i++) {
            latency[i].getIntervalHistogramInto(intervalHistograms[i]);
            totalHistograms[i].add(intervalHistograms[i]);
            sampleHistograms[i].add(intervalHistograms[i]);
            lastInterval[i] = latencyOf(intervalHistograms[i]);
            lastTotal[i] = latencyOf(totalHistograms[i]);
            perOp.add(new IoStatsSnapshot.OpStats(OPS[i], ops[i].sum(), bytes[i].sum(), errors[i].sum(),
                    lastInterval[i], lastTotal[i]));
        }
        lastIntervalNanos = now - lastSnapshotNanos;
        lastSnapshotNanos = now;
        return new IoStatsSnapshot(device, System.currentTimeMillis(), lastIntervalNanos, inFlight.sum(),
                untracked.sum(), perOp);
    }

    /**
     * Like {@link #snapshot()}, but each {@code interval} latency covers every request completed since the previous
     * {@code sample()} (and {@code intervalNanos} that time), however many {@link #snapshot()}s other readers (HTTP,
     * JMX, Prometheus) took meanwhile: one periodic sampler owns this window, the others keep theirs. Control plane
     * only (it copies histograms); recording is not affected.
     */
    public synchronized IoStatsSnapshot sample() {
        IoStatsSnapshot now = snapshot();
        List<IoStatsSnapshot.OpStats> perOp = new ArrayList<>(OPS.length);
        for (int i = 0; i < OPS.length; i++) {
            IoStatsSnapshot.OpStats op = now.ops().get(i);
            perOp.add(new IoStatsSnapshot.OpStats(OPS[i], op.ops(), op.bytes(), op.errors(),
                    latencyOf(sampleHistograms[i]), op.total()));
            sampleHistograms[i].reset();
        }
        long nanos = lastSnapshotNanos - lastSampleNanos;
        lastSampleNanos = lastSnapshotNanos;
        return new IoStatsSnapshot(device, now.takenAtMillis(), nanos, now.inFlight(), now.untracked(), perOp);
    }

    /**
     * Current counters with the latencies of the last {@link #snapshot()}, without starting a new interval: for
     * readers (an HTTP scrape) that must not shift the window a periodic snapshotter owns.
     */
    public synchronized IoStatsSnapshot peek() {
        List<IoStatsSnapshot.OpStats> perOp = new ArrayList<>(OPS.length);
        for (int i = 0; i < OPS.length; i++) {
            perOp.add(new IoStatsSnapshot.OpStats(OPS[i], ops[i].sum(), bytes[i].sum(), errors[i].sum(),
                    lastInterval[i], lastTotal[i]));
        }
        return new IoStatsSnapshot(device, System.currentTimeMillis(), lastIntervalNanos, inFlight.sum(),
                untracked.sum(), perOp);
    }

    /** The histograms' estimated memory (what a mapped device costs in statistics; docs/BENCHMARKS.md "Scale"). */
    public synchronized long estimatedFootprintBytes() {
        long sum = 0;
        for (int i = 0; i < OPS.length; i++) {
            sum += 2 * RECORDER_HISTOGRAM_FOOTPRINT + intervalHistograms[i].getEstimatedFootprintInBytes()
                    + totalHistograms[i].getEstimatedFootprintInBytes()
                    + sampleHistograms[i].getEstimatedFootprintInBytes();
        }
        return sum;
    }

    private static IoStatsSnapshot.Latency latencyOf(Histogram h) {
        long count = h.getTotalCount();
        if (count == 0) {
            return IoStatsSnapshot.Latency.EMPTY;
        }
        return new IoStatsSnapshot.Latency(count, h.getValueAtPercentile(50), h.getValueAtPercentile(99),
                h.getValueAtPercentile(99.9), h.getMaxValue());
    }
}
