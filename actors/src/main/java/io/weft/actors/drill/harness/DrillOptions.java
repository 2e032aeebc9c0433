package io.weft.actors.drill.harness;

/**
 * How a drill runs.
 *
 * @param seed             seeds every random choice (offsets, sizes, read/write mix); printed in the report
 * @param queueDepth       requests kept in flight
 * @param minIoBytes       smallest request (multiple of 4096)
 * @param maxIoBytes       largest request (multiple of 4096, at most the device's max IO size)
 * @param readPercent      share of reads (0..100); the rest are writes, with a FLUSH every ~50 writes
 * @param workingSetBytes  the drill uses {@code [0, workingSetBytes)} of the device (and overwrites it!)
 * @param beforeMillis     workload time before the fault
 * @param duringMillis     workload time between inject and recover
 * @param afterMillis      workload time after the leg is back in sync (or after recover, for a single device)
 * @param resyncTimeoutMillis longest wait for the leg-in-sync event after recover
 */
public record DrillOptions(long seed, int queueDepth, int minIoBytes, int maxIoBytes, int readPercent,
                           long workingSetBytes, long beforeMillis, long duringMillis, long afterMillis,
                           long resyncTimeoutMillis) {

    public static final int BLOCK = 4096;

    public DrillOptions {
        if (queueDepth < 1 || queueDepth > 1024) {
            throw new IllegalArgumentException("queueDepth must be 1..1024: " + queueDepth);
        }
        if (minIoBytes < BLOCK || maxIoBytes < minIoBytes || minIoBytes % BLOCK != 0 || maxIoBytes % BLOCK != 0) {
            throw new IllegalArgumentException("IO sizes must be multiples of 4096 with min <= max: "
                    + minIoBytes + ".." + maxIoBytes);
        }
        if (readPercent < 0 || readPercent > 100) {
            throw new IllegalArgumentException("readPercent must be 0..100: " + readPercent);
        }
        if (workingSetBytes < maxIoBytes || workingSetBytes % BLOCK != 0) {
            throw new IllegalArgumentException("working set must be a multiple of 4096 and >= maxIoBytes");
        }
        if (beforeMillis < 0 || duringMillis < 0 || afterMillis < 0 || resyncTimeoutMillis < 0) {
            throw new IllegalArgumentException("durations must be >= 0");
        }
    }

    /** qd 16, 4–64 KiB, 30 % reads, 64 MiB, 2 s before, 3 s during, 2 s after, 60 s resync timeout. */
    public static DrillOptions defaults(long seed) {
        return new DrillOptions(seed, 16, 4096, 65536, 30, 64L << 20, 2000, 3000, 2000, 60_000);
    }

    public DrillOptions withPhases(long before, long during, long after) {
        return new DrillOptions(seed, queueDepth, minIoBytes, maxIoBytes, readPercent, workingSetBytes, before,
                during, after, resyncTimeoutMillis);
    }

    public DrillOptions withWorkingSet(long bytes) {
        return new DrillOptions(seed, queueDepth, minIoBytes, maxIoBytes, readPercent, bytes, beforeMillis,
                duringMillis, afterMillis, resyncTimeoutMillis);
    }

    public DrillOptions withQueueDepth(int qd) {
        return new DrillOptions(seed, qd, minIoBytes, maxIoBytes, readPercent, workingSetBytes, beforeMillis,
                duringMillis, afterMillis, resyncTimeoutMillis);
    }
}
