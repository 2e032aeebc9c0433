package io.weft.rdma;

import static io.weft.testkit.Await.await;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Closed-loop random 4 KiB reads and writes with verification. Each worker owns the blocks {@code b} with
 * {@code b % workers == worker}, so "the last acknowledged write" is an exact model of every block: a read that
 * returns anything else, or any IO error, is recorded as a failure.
 */
final class VerifyingLoad {
    static final int BLOCK = 4096;

    private final BlockDevice device;
    private final int workers;
    private final int blocks;
    private final int[] generation;
    private final ConcurrentLinkedQueue<String> failures = new ConcurrentLinkedQueue<>();
    private final AtomicLong completed = new AtomicLong();
    private final AtomicInteger running = new AtomicInteger();
    private volatile boolean stopping;

    VerifyingLoad(BlockDevice device, int workers, int blocks) {
        this.device = device;
        this.workers = workers;
        this.blocks = blocks;
        this.generation = new int[blocks];
    }

    void start() {
        for (int w = 0; w < workers; w++) {
            running.incrementAndGet();
            new Worker(w).next();
        }
    }

    void stop() throws InterruptedException {
        stopping = true;
        await("load to drain", Duration.ofSeconds(60), () -> running.get() == 0);
    }

    long completed() {
        return completed.get();
    }

    ConcurrentLinkedQueue<String> failures() {
        return failures;
    }

    /** Reads every block synchronously and compares with the model. */
    void verifyAll() throws Exception {
        for (int b = 0; b < blocks; b++) {
            byte[] got = TestIo.read(device, (long) b * BLOCK, BLOCK);
            int gen;
            synchronized (generation) {
                gen = generation[b];
            }
            if (gen > 0 && !Arrays.equals(TestIo.pattern(b, gen, BLOCK), got)) {
                failures.add("block " + b + " does not hold generation " + gen);
            }
        }
    }

    private final class Worker implements IoCompletion {
        private final int id;
        private final SplittableRandom random;
        private final ByteBuffer buffer = ByteBuffer.allocate(BLOCK);
        private int block;
        private int gen;
        private IoOp op;

        Worker(int id) {
            this.id = id;
            this.random = new SplittableRandom(id * 7919L + 17);
        }

        private int pickBlock() {
            int perWorker = blocks / workers;
            return random.nextInt(perWorker) * workers + id;
        }

        void next() {
            if (stopping) {
                running.decrementAndGet();
                return;
            }
            block = pickBlock();
            int current;
            synchronized (generation) {
                current = generation[block];
            }
            buffer.clear();
            if (current == 0 || random.nextBoolean()) {
                op = IoOp.WRITE;
                gen = current + 1;
                buffer.put(TestIo.pattern(block, gen, BLOCK)).flip();
            } else {
                op = IoOp.READ;
                gen = current;
            }
            device.submit(op, (long) block * BLOCK, BLOCK, 0, buffer, block, this);
        }

        @Override
        public void onComplete(long tag, int status) {
            if (status != IoStatus.OK) {
                failures.add(op + " of block " + block + " failed: " + IoStatus.name(status));
                running.decrementAndGet(); // a failing device must not turn into a tight resubmit loop
                return;
            } else if (op == IoOp.WRITE) {
                synchronized (generation) {
                    generation[block] = gen;
                }
            } else {
                byte[] got = new byte[BLOCK];
                buffer.get(0, got);
                if (!Arrays.equals(TestIo.pattern(block, gen, BLOCK), got)) {
                    failures.add("read of block " + block + " did not return generation " + gen);
                }
            }
            completed.incrementAndGet();
            next();
        }
    }
}
