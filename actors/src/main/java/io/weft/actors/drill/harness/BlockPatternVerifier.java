package io.weft.actors.drill.harness;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * The drill's model of what every 4 KiB block of the working set should hold, and the check of what it holds.
 * Every block of a drill write carries a self-describing pattern:
 * <pre>
 * 0        8          16                                        4096
 * +--------+----------+------------------------------------------+
 * | block  |generation| xorshift64 stream seeded by (block, gen)  |
 * | u64 LE | u64 LE   |                                           |
 * +--------+----------+------------------------------------------+
 * </pre>
 * so a read tells which write it holds: the acknowledged one (verified), an older one or zeros (lost), or anything
 * else (corrupted). The model keeps, per block, the generation of the last acknowledged write and, after failed
 * writes, the range of in-doubt generations that may be there instead (every write to the block since the last
 * acknowledged one failed, so any generation in that range is one of them).
 *
 * <p>Threads: the workload thread updates and checks the model while it runs; the control thread reads the whole
 * working set back ({@link #verifyAll}) after that thread has been joined.
 */
final class BlockPatternVerifier {
    static final int BLOCK = DrillOptions.BLOCK;
    /** {@link #classify} outcomes, also the indexes of {@link #verifyAll}'s counts. */
    static final int VERIFIED = 0;
    static final int LOST = 1;
    static final int CORRUPTED = 2;
    static final int UNREADABLE = 3;

    private final long blocks;
    private final long[] ackedGen;
    /** Lowest and highest generation of the failed writes since the last acknowledged one; 0 when none. */
    private final long[] doubtMin;
    private final long[] doubtMax;

    BlockPatternVerifier(long workingSetBytes) {
        this.blocks = workingSetBytes / BLOCK;
        if (blocks > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("working set too large for the in-memory model");
        }
        this.ackedGen = new long[(int) blocks];
        this.doubtMin = new long[(int) blocks];
        this.doubtMax = new long[(int) blocks];
    }

    long blocks() {
        return blocks;
    }

    /** A write of generation {@code gen} to {@code block} was acknowledged: that is what the block holds now. */
    void acknowledged(long block, long gen) {
        ackedGen[(int) block] = gen;
        doubtMin[(int) block] = 0;
        doubtMax[(int) block] = 0;
    }

    /** A prefill write was acknowledged (no failed write can precede it). */
    void prefilled(long block, long gen) {
        ackedGen[(int) block] = gen;
    }

    /** A write of generation {@code gen} to {@code block} failed: the block may hold it or what it held before. */
    void failed(long block, long gen) {
        // Generations only grow, and a success clears the range: min stays, max moves up.
        if (doubtMin[(int) block] == 0) {
            doubtMin[(int) block] = gen;
        }
        doubtMax[(int) block] = gen;
    }

    // ------------------------------------------------------------------------------------------ patterns

    /** Writes the pattern of {@code (block, gen)} into {@code buf} at {@code at}. */
    static void fillBlock(ByteBuffer buf, int at, long block, long gen) {
        buf.putLong(at, block);
        buf.putLong(at + 8, gen);
        long x = mix(block, gen);
        for (int i = 16; i < BLOCK; i += 8) {
            x ^= x << 13;
            x ^= x >>> 7;
            x ^= x << 17;
            buf.putLong(at + i, x);
        }
    }

    /** For tests and tools: the expected content of {@code block} written by generation {@code gen}. */
    static ByteBuffer patternFor(long block, long gen) {
        ByteBuffer b = ByteBuffer.allocate(BLOCK).order(ByteOrder.LITTLE_ENDIAN);
        fillBlock(b, 0, block, gen);
        return b;
    }

    private static long mix(long block, long gen) {
        long x = block * 0x9E37_79B9_7F4A_7C15L ^ (gen + 0x632B_E59B_D9B4_E019L);
        x ^= x >>> 31;
        return x == 0 ? 1 : x;
    }

    /** {@link #VERIFIED}, {@link #LOST} (older version or zeros) or {@link #CORRUPTED}. */
    int classify(ByteBuffer buf, int at, long block) {
        long acked = ackedGen[(int) block];
        long lowDoubt = doubtMin[(int) block];
        long highDoubt = doubtMax[(int) block];
        long storedBlock = buf.getLong(at);
        long storedGen = buf.getLong(at + 8);
        if (storedBlock == 0 && storedGen == 0 && isZero(buf, at)) {
            return acked == 0 ? VERIFIED : LOST;
        }
        if (storedBlock != block || !matchesPattern(buf, at, block, storedGen)) {
            return CORRUPTED;
        }
        if (storedGen == acked || (lowDoubt != 0 && storedGen >= lowDoubt && storedGen <= highDoubt)) {
            return VERIFIED;
        }
        return storedGen < acked ? LOST : CORRUPTED;
    }

    private static boolean isZero(ByteBuffer buf, int at) {
        for (int i = 0; i < BLOCK; i += 8) {
            if (buf.getLong(at + i) != 0) {
                return false;
            }
        }
        return true;
    }

    private static boolean matchesPattern(ByteBuffer buf, int at, long block, long gen) {
        long x = mix(block, gen);
        for (int i = 16; i < BLOCK; i += 8) {
            x ^= x << 13;
            x ^= x >>> 7;
            x ^= x << 17;
            if (buf.getLong(at + i) != x) {
                return false;
            }
        }
        return true;
    }

    // ------------------------------------------------------------------------------------------ final check

    /**
     * Reads the whole working set back, in requests of up to {@code maxIoBytes} (at most 1 MiB), and classifies every
     * block: counts indexed by {@link #VERIFIED}, {@link #LOST}, {@link #CORRUPTED}, {@link #UNREADABLE}.
     */
    long[] verifyAll(BlockDevice device, int maxIoBytes) {
        long[] counts = new long[4];
        int chunkBlocks = Math.max(1, Math.min(maxIoBytes, 1 << 20) / BLOCK);
        ByteBuffer buf = ByteBuffer.allocateDirect(chunkBlocks * BLOCK).order(ByteOrder.LITTLE_ENDIAN);
        WaitingCompletion wait = new WaitingCompletion();
        for (long b = 0; b < blocks; b += chunkBlocks) {
            int n = (int) Math.min(chunkBlocks, blocks - b);
            buf.clear().limit(n * BLOCK);
            int st = wait.run(device, IoOp.READ, b * BLOCK, n * BLOCK, buf);
            if (st == IoStatus.ETIMEDOUT) {
                // The read is still live below: cancelled, but its buffer and completion may yet be used by the
                // device. Neither is used again (ownership rule): fresh ones for the rest of the check.
                device.cancel(0, wait);
                buf = ByteBuffer.allocateDirect(chunkBlocks * BLOCK).order(ByteOrder.LITTLE_ENDIAN);
                wait = new WaitingCompletion();
            }
            for (int k = 0; k < n; k++) {
                if (st != IoStatus.OK) {
                    counts[UNREADABLE]++;
                } else {
                    counts[classify(buf, k * BLOCK, b + k)]++;
                }
            }
        }
        return counts;
    }

    /** Blocking single request with a 10 s bound (verification only). */
    private static final class WaitingCompletion implements IoCompletion {
        private volatile int status;
        private volatile boolean done;
        private final Thread waiter = Thread.currentThread();

        int run(BlockDevice d, IoOp op, long offset, int length, ByteBuffer buf) {
            done = false;
            d.submit(op, offset, length, 0, buf, 0, this);
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (!done) {
                if (System.nanoTime() > deadline) {
                    return IoStatus.ETIMEDOUT;
                }
                LockSupport.parkNanos(100_000);
            }
            return status;
        }

        @Override
        public void onComplete(long tag, int st) {
            status = st;
            done = true;
            LockSupport.unpark(waiter);
        }
    }
}
