package io.weft.core.stats;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import org.junit.jupiter.api.Test;

class IoStatsTest {

    private static void assertWithinOnePercent(long expected, long actual, String what) {
        assertTrue(Math.abs(actual - expected) <= expected / 100 + 1,
                what + ": expected ~" + expected + ", got " + actual);
    }

    @Test
    void countsOpsBytesAndErrorsPerOperation() {
        IoStats stats = new IoStats("vol0");
        stats.record(IoOp.READ, 4096, IoStatus.OK, 1000);
        stats.record(IoOp.READ, 4096, IoStatus.OK, 1000);
        stats.record(IoOp.WRITE, 8192, IoStatus.OK, 1000);
        stats.record(IoOp.WRITE, 8192, IoStatus.ENOSPC, 1000);
        stats.record(IoOp.FLUSH, 0, IoStatus.OK, 1000);
        IoStatsSnapshot s = stats.snapshot();
        assertEquals("vol0", s.device());
        assertEquals(2, s.op(IoOp.READ).ops());
        assertEquals(8192, s.op(IoOp.READ).bytes());
        assertEquals(0, s.op(IoOp.READ).errors());
        assertEquals(2, s.op(IoOp.WRITE).ops());
        assertEquals(8192, s.op(IoOp.WRITE).bytes(), "failed writes move no bytes");
        assertEquals(1, s.op(IoOp.WRITE).errors());
        assertEquals(1, s.op(IoOp.FLUSH).ops());
        assertEquals(0, s.op(IoOp.DISCARD).ops());
        assertEquals(IoOp.values().length, s.ops().size());
    }

    @Test
    void percentilesFollowTheRecordedDistribution() {
        IoStats stats = new IoStats("vol0");
        for (int micros = 1; micros <= 1000; micros++) {
            stats.record(IoOp.READ, 4096, IoStatus.OK, micros * 1000L);
        }
        IoStatsSnapshot.Latency l = stats.snapshot().op(IoOp.READ).interval();
        assertEquals(1000, l.count());
        assertWithinOnePercent(500_000, l.p50Nanos(), "p50");
        assertWithinOnePercent(990_000, l.p99Nanos(), "p99");
        assertWithinOnePercent(999_000, l.p999Nanos(), "p99.9");
        assertWithinOnePercent(1_000_000, l.maxNanos(), "max");
    }

    @Test
    void intervalsResetButTotalsAccumulate() {
        IoStats stats = new IoStats("vol0");
        stats.record(IoOp.WRITE, 512, IoStatus.OK, 10_000);
        IoStatsSnapshot first = stats.snapshot();
        assertEquals(1, first.op(IoOp.WRITE).interval().count());

        stats.record(IoOp.WRITE, 512, IoStatus.OK, 2_000_000);
        IoStatsSnapshot second = stats.snapshot();
        assertEquals(1, second.op(IoOp.WRITE).interval().count());
        assertWithinOnePercent(2_000_000, second.op(IoOp.WRITE).interval().p50Nanos(), "second interval p50");
        assertEquals(2, second.op(IoOp.WRITE).total().count());
        assertEquals(2, second.op(IoOp.WRITE).ops());
        assertEquals(1024, second.op(IoOp.WRITE).bytes());

        IoStatsSnapshot third = stats.snapshot();
        assertEquals(IoStatsSnapshot.Latency.EMPTY, third.op(IoOp.WRITE).interval());
        assertEquals(2, third.op(IoOp.WRITE).total().count());
    }

    @Test
    void beginAndEndTrackInFlightRequests() {
        IoStats stats = new IoStats("vol0");
        long a = stats.begin();
        long b = stats.begin();
        assertEquals(2, stats.snapshot().inFlight());
        stats.end(IoOp.READ, 512, IoStatus.OK, a);
        stats.end(IoOp.READ, 512, IoStatus.EIO, b);
        IoStatsSnapshot s = stats.snapshot();
        assertEquals(0, s.inFlight());
        assertEquals(2, s.op(IoOp.READ).ops());
        assertEquals(1, s.op(IoOp.READ).errors());
        assertTrue(s.op(IoOp.READ).interval().p50Nanos() >= 1);
    }

    @Test
    void absurdLatenciesAreClampedNotFatal() {
        IoStats stats = new IoStats("vol0");
        stats.record(IoOp.READ, 512, IoStatus.OK, Long.MAX_VALUE);
        stats.record(IoOp.READ, 512, IoStatus.OK, -5);
        IoStatsSnapshot.Latency l = stats.snapshot().op(IoOp.READ).interval();
        assertEquals(2, l.count());
        assertTrue(l.maxNanos() >= IoStats.HIGHEST_TRACKABLE_NANOS);
    }

    @Test
    void peekShowsCurrentCountersAndTheLastIntervalWithoutResettingIt() {
        IoStats stats = new IoStats("vol0");
        stats.record(IoOp.READ, 512, IoStatus.OK, 3_000);
        stats.snapshot();
        stats.record(IoOp.READ, 512, IoStatus.OK, 7_000_000);
        IoStatsSnapshot peeked = stats.peek();
        assertEquals(2, peeked.op(IoOp.READ).ops(), "counters are current");
        assertEquals(1, peeked.op(IoOp.READ).interval().count(), "latency is the last completed interval");
        assertWithinOnePercent(3_000, peeked.op(IoOp.READ).interval().p50Nanos(), "last interval p50");
        IoStatsSnapshot next = stats.snapshot();
        assertEquals(1, next.op(IoOp.READ).interval().count(), "peek did not consume the running interval");
        assertWithinOnePercent(7_000_000, next.op(IoOp.READ).interval().p50Nanos(), "running interval p50");
    }

    @Test
    void snapshotIsImmutable() {
        IoStatsSnapshot s = new IoStats("vol0").snapshot();
        assertThrows(UnsupportedOperationException.class, () -> s.ops().clear());
    }

    @Test
    void aSampleCoversEveryRequestSinceThePreviousSampleWhateverSnapshotsOthersTook() {
        IoStats stats = new IoStats("vol0");
        stats.record(IoOp.READ, 4096, IoStatus.OK, 10_000);
        stats.snapshot(); // an HTTP status read in between
        stats.record(IoOp.READ, 4096, IoStatus.OK, 3_000_000);
        stats.snapshot(); // and a Prometheus scrape
        stats.record(IoOp.READ, 4096, IoStatus.OK, 20_000);

        IoStatsSnapshot sample = stats.sample();
        IoStatsSnapshot.Latency l = sample.op(IoOp.READ).interval();
        assertEquals(3, l.count(), "every read since the start, not only since the last snapshot");
        assertWithinOnePercent(3_000_000, l.maxNanos(), "max");
        assertEquals(3, sample.op(IoOp.READ).ops());

        stats.record(IoOp.READ, 4096, IoStatus.OK, 50_000);
        stats.snapshot();
        IoStatsSnapshot next = stats.sample();
        assertEquals(1, next.op(IoOp.READ).interval().count(), "the next sample starts where the last one ended");
        assertWithinOnePercent(50_000, next.op(IoOp.READ).interval().maxNanos(), "max of the next window");
        assertEquals(4, next.op(IoOp.READ).total().count());
        assertEquals(0, stats.sample().op(IoOp.READ).interval().count(), "nothing since the last sample");
    }

    /**
     * Issue 12: every mapped device has an IoStats on each node; an idle one held five fixed-range histograms per
     * operation (~31 KB each, ~780 KB a device). The reader-side ones (interval, total, sample) now grow with what
     * was recorded; only the recorders' fixed pairs, which recording must never resize, stay full size.
     */
    @Test
    void anIdleDevicesStatisticsHoldOnlyTheRecordersFixedHistograms() {
        IoStats stats = new IoStats("idle");
        stats.snapshot();
        stats.sample();
        long recordersOnly = 2L * IoOp.values().length
                * new org.HdrHistogram.Histogram(1, IoStats.HIGHEST_TRACKABLE_NANOS, 2).getEstimatedFootprintInBytes();
        long footprint = stats.estimatedFootprintBytes();
        assertTrue(footprint <= recordersOnly + 16 * 1024,
                "an idle device's statistics take " + footprint + " bytes; the recorders alone " + recordersOnly);
        for (int i = 0; i < 10_000; i++) {
            stats.record(IoOp.READ, 4096, IoStatus.OK, 1_000 + (i % 5_000) * 100L);
        }
        IoStatsSnapshot.Latency total = stats.snapshot().op(IoOp.READ).total();
        assertEquals(10_000, total.count());
        assertTrue(total.p50Nanos() >= 200_000 && total.p50Nanos() <= 300_000, "p50 " + total.p50Nanos());
    }
}
