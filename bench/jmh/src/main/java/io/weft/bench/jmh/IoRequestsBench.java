package io.weft.bench.jmh;

import io.weft.core.io.DeviceInfo;
import io.weft.core.io.IoFlags;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoRequests;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

/**
 * {@link IoRequests#check}: the validation every request passes at every layer (NBD, CXL ring, RDMA frame). The
 * offsets cycle through a pre-computed table so the JIT cannot fold the call into a constant.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
public class IoRequestsBench {
    private static final int MASK = 1023;

    private DeviceInfo info;
    private final long[] offsets = new long[MASK + 1];
    private int next;

    @Setup
    public void setUp() {
        info = new DeviceInfo(1L << 30, 512, 4096, 1 << 20, false, true, true, true, true, true, false, false);
        java.util.SplittableRandom rnd = new java.util.SplittableRandom(7);
        for (int i = 0; i < offsets.length; i++) {
            offsets[i] = rnd.nextLong((1L << 30) / 4096) * 4096;
        }
    }

    @Benchmark
    public int validRead() {
        return IoRequests.check(info, IoOp.READ, offsets[next++ & MASK], 4096, 0);
    }

    @Benchmark
    public int validWriteFua() {
        return IoRequests.check(info, IoOp.WRITE, offsets[next++ & MASK], 65536, IoFlags.FUA);
    }

    /** A hostile request: offset + length overflows; the check must reject it without arithmetic overflow. */
    @Benchmark
    public int rejectedOverflow() {
        return IoRequests.check(info, IoOp.READ, Long.MAX_VALUE - offsets[next++ & MASK], 4096, 0);
    }
}
