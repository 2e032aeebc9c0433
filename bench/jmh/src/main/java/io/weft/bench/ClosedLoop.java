package io.weft.bench;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import java.nio.ByteBuffer;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicLong;
import org.HdrHistogram.Histogram;
import org.agrona.concurrent.AgentInvoker;

/**
 * Keeps {@code qd} requests outstanding on a {@link BlockDevice} from one thread. Each slot owns a direct buffer
 * and a start time; a completion (on any thread, maybe inline) stamps the end time and raises the slot's flag,
 * and the driving thread records latency and resubmits. Nothing is allocated per request.
 */
final class ClosedLoop implements IoCompletion {
    private final BlockDevice device;
    private final AgentInvoker invoker;
    private final int qd;
    private final int blockSize;
    private final long blocks;
    private final int readPercent;
    private final ByteBuffer[] buffers;
    private final long[] startNs;
    private final long[] endNs;
    private final int[] status;
    private final AtomicIntegerArray done;
    private final AtomicLong completions = new AtomicLong();
    private final SplittableRandom random = new SplittableRandom(42);
    final Histogram latency = new Histogram(60_000_000_000L, 3);
    long completed;
    long errors;
    int firstError;

    /**
     * @param readPercent 100 = randread, 0 = randwrite, in between = mixed
     * @param invoker     when non-null, the driving thread polls completions itself (CXL invoker mode)
     */
    ClosedLoop(BlockDevice device, AgentInvoker invoker, int qd, int blockSize, int readPercent) {
        this.device = device;
        this.invoker = invoker;
        this.qd = qd;
        this.blockSize = blockSize;
        this.blocks = device.info().size() / blockSize;
        this.readPercent = readPercent;
        if (blocks < 1) {
            throw new IllegalArgumentException("device of " + device.info().size() + " bytes is smaller than "
                    + blockSize);
        }
        buffers = new ByteBuffer[qd];
        startNs = new long[qd];
        endNs = new long[qd];
        status = new int[qd];
        done = new AtomicIntegerArray(qd);
        for (int i = 0; i < qd; i++) {
            buffers[i] = ByteBuffer.allocateDirect(blockSize);
            while (buffers[i].hasRemaining()) {
                buffers[i].put((byte) random.nextInt());
            }
        }
    }

    @Override
    public void onComplete(long tag, int result) {
        int slot = (int) tag;
        endNs[slot] = System.nanoTime();
        status[slot] = result;
        done.setRelease(slot, 1);
        completions.incrementAndGet();
    }

    private void submit(int slot) {
        IoOp op = readPercent >= 100 || (readPercent > 0 && random.nextInt(100) < readPercent) ? IoOp.READ : IoOp.WRITE;
        ByteBuffer b = buffers[slot];
        b.clear();
        startNs[slot] = System.nanoTime();
        device.submit(op, random.nextLong(blocks) * blockSize, blockSize, 0, b, slot, this);
    }

    void reset() {
        latency.reset();
        completed = 0;
        errors = 0;
        firstError = 0;
    }

    /** Runs for {@code nanos}, then drains what is in flight (drained requests count too). */
    void runFor(long nanos) {
        long deadline = System.nanoTime() + nanos;
        int outstanding = 0;
        long seen = completions.get();
        for (int slot = 0; slot < qd; slot++) {
            outstanding++;
            submit(slot);
        }
        boolean stopping = false;
        long waitingSince = 0;
        long spinNanos = invoker != null ? 50_000 : 2_000;
        while (outstanding > 0) {
            if (invoker != null) {
                invoker.invoke();
            }
            long now = completions.get();
            if (now == seen) {
                // Nothing finished: spin briefly (a round trip is microseconds), then give the CPU to the thread
                // that must produce the completion (2 shared cores).
                long t = System.nanoTime();
                if (waitingSince == 0) {
                    waitingSince = t;
                } else if (t - waitingSince > spinNanos) {
                    Thread.yield();
                } else {
                    Thread.onSpinWait();
                }
                continue;
            }
            seen = now;
            waitingSince = 0;
            stopping = stopping || System.nanoTime() >= deadline;
            for (int slot = 0; slot < qd; slot++) {
                if (done.getAcquire(slot) == 0) {
                    continue;
                }
                done.setPlain(slot, 0);
                outstanding--;
                completed++;
                latency.recordValue(Math.max(0, endNs[slot] - startNs[slot]));
                if (status[slot] != IoStatus.OK && errors++ == 0) {
                    firstError = status[slot];
                }
                if (!stopping) {
                    outstanding++;
                    submit(slot);
                }
            }
        }
    }
}
