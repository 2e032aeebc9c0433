package io.weft.actors.management;

import io.weft.core.io.IoOp;
import io.weft.core.stats.IoStatsSnapshot;

/**
 * The figures HTTP, JMX and the CLI show for a device or backend, flattened from fabric-core's
 * {@link IoStatsSnapshot} (the one IO statistics implementation). Counters are since the device was created;
 * latencies cover every request since then, per direction, in microseconds.
 */
public record IoFigures(long reads, long writes, long otherOps, long bytesRead, long bytesWritten, long errors,
                        double readP50Micros, double readP99Micros, double readP999Micros,
                        double writeP50Micros, double writeP99Micros, double writeP999Micros) {
    public static final IoFigures EMPTY = new IoFigures(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);

    public static IoFigures of(IoStatsSnapshot s) {
        long others = 0;
        long errors = 0;
        for (IoStatsSnapshot.OpStats op : s.ops()) {
            errors += op.errors();
            if (op.op() != IoOp.READ && op.op() != IoOp.WRITE) {
                others += op.ops();
            }
        }
        IoStatsSnapshot.OpStats read = s.op(IoOp.READ);
        IoStatsSnapshot.OpStats write = s.op(IoOp.WRITE);
        return new IoFigures(read.ops(), write.ops(), others, read.bytes(), write.bytes(), errors,
                micros(read.total().p50Nanos()), micros(read.total().p99Nanos()), micros(read.total().p999Nanos()),
                micros(write.total().p50Nanos()), micros(write.total().p99Nanos()),
                micros(write.total().p999Nanos()));
    }

    private static double micros(long nanos) {
        return nanos / 1000.0;
    }
}
