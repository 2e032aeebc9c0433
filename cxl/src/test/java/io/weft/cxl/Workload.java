package io.weft.cxl;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.IoFlags;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * A verifying workload: {@code threads} workers, each owning a disjoint range of blocks, write versioned blocks and
 * read them back, checking every read against the last acknowledged version. Errors are collected, not thrown.
 */
final class Workload {
    final BlockDevice dev;
    final int threads;
    final int blocksPerThread;
    final AtomicLongArray acked;
    final AtomicLong ops = new AtomicLong();
    final List<String> errors = new ArrayList<>();
    private final List<Thread> workers = new ArrayList<>();
    private volatile boolean stop;

    Workload(BlockDevice dev, int threads, int blocksPerThread) {
        this.dev = dev;
        this.threads = threads;
        this.blocksPerThread = blocksPerThread;
        this.acked = new AtomicLongArray(threads * blocksPerThread);
    }

    Workload start() {
        for (int t = 0; t < threads; t++) {
            int first = t * blocksPerThread;
            Thread w = new Thread(() -> run(first), "workload-" + t);
            w.setDaemon(true);
            workers.add(w);
            w.start();
        }
        return this;
    }

    private void run(int first) {
        Random rnd = new Random(first * 31L + 7);
        ByteBuffer buf = ByteBuffer.allocateDirect(Pattern.BLOCK);
        while (!stop) {
            int block = first + rnd.nextInt(blocksPerThread);
            buf.clear();
            if (rnd.nextInt(3) != 0) {
                long v = acked.get(block) + 1;
                Pattern.fill(buf, 0, block, v);
                int flags = rnd.nextInt(16) == 0 ? IoFlags.FUA : 0;
                int status = SyncIo.run(dev, IoOp.WRITE, (long) block * Pattern.BLOCK, Pattern.BLOCK, flags, buf,
                        Duration.ofSeconds(60));
                if (status != IoStatus.OK) {
                    error("write block " + block + " v" + v + ": " + IoStatus.name(status));
                    return;
                }
                acked.set(block, v);
            } else {
                int status = SyncIo.run(dev, IoOp.READ, (long) block * Pattern.BLOCK, Pattern.BLOCK, 0, buf,
                        Duration.ofSeconds(60));
                long have = Pattern.versionOf(buf, 0, block);
                if (status != IoStatus.OK || have != acked.get(block)) {
                    error("read block " + block + ": status " + IoStatus.name(status) + " version " + have
                            + " expected " + acked.get(block));
                    return;
                }
            }
            ops.incrementAndGet();
        }
    }

    private void error(String what) {
        synchronized (errors) {
            errors.add(what);
        }
    }

    void stopAndJoin() throws InterruptedException {
        stop = true;
        for (Thread w : workers) {
            w.join(90_000);
            if (w.isAlive()) {
                error(w.getName() + " still running after 90 s");
            }
        }
    }

    /** Reads every block and compares it with the last acknowledged version. */
    List<String> verifyAll(BlockDevice device) {
        List<String> bad = new ArrayList<>();
        ByteBuffer buf = ByteBuffer.allocateDirect(Pattern.BLOCK);
        for (int block = 0; block < acked.length(); block++) {
            buf.clear();
            int status = SyncIo.run(device, IoOp.READ, (long) block * Pattern.BLOCK, Pattern.BLOCK, 0, buf);
            long have = Pattern.versionOf(buf, 0, block);
            if (status != IoStatus.OK || have != acked.get(block)) {
                bad.add("block " + block + ": status " + IoStatus.name(status) + " version " + have + " expected "
                        + acked.get(block));
            }
        }
        return bad;
    }
}
