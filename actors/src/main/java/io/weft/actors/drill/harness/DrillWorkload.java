package io.weft.actors.drill.harness;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.agrona.concurrent.BackoffIdleStrategy;
import org.agrona.concurrent.IdleStrategy;
import org.agrona.concurrent.ManyToOneConcurrentArrayQueue;

/**
 * The drill's workload, run by one driver thread: first a prefill (sequential max-IO writes of generation 1 over the
 * whole working set, so every block has a known acknowledged version whatever an earlier drill left there), then
 * {@code queueDepth} requests kept in flight, random 4–64 KiB writes and reads over the working set with a FLUSH every
 * ~50 writes, never two in-flight requests on the same block (so every read has exactly one right answer).
 *
 * <p>Ownership: each of the {@code queueDepth} request slots owns one direct buffer; the device owns it from submit
 * until the completion, which only queues the slot back to the driver thread (a many-to-one queue). The driver
 * thread alone touches the model ({@link BlockPatternVerifier}), the busy flags and the counts: no lock and no
 * allocation per IO. The control thread ({@link Drill}) steers it through {@link #phase} and {@link #running}, and
 * reads the counts after joining it.
 */
final class DrillWorkload implements Runnable, IoCompletion {
    private static final int BLOCK = DrillOptions.BLOCK;
    /** Phase indexes of the per-phase counts: before the fault, during it, recovering, after. */
    static final int BEFORE = 0;
    static final int DURING = 1;
    static final int RECOVERING = 2;
    static final int AFTER = 3;

    private final BlockDevice device;
    private final DrillOptions options;
    private final BlockPatternVerifier verifier;
    private final DrillTimeline timeline;
    private final ResyncAccounting accounting;
    private final long blocks;
    private final boolean[] busy;
    private final Request[] requests;
    private final ManyToOneConcurrentArrayQueue<Request> done;
    private final SplittableRandom random;
    /** Completed requests, published by the driver thread with an ordered store (no fence per IO on x86). */
    private final AtomicLong completedRequests = new AtomicLong();
    final long[] phaseStart = new long[4];
    final long[] phaseCount = new long[4];
    final long[] maxLatency = new long[4];
    volatile long phaseEnd;
    volatile int phase;
    volatile boolean running = true;
    /** The working set holds generation 1 everywhere (acknowledged); the baseline phase has begun. */
    volatile boolean prefilled;
    volatile Throwable failure;
    private long prefillNext;
    private int prefillFailedStatus = IoStatus.OK;
    private long generation;
    long completed;
    long writesOk;
    long writesFailed;
    long readsFailed;
    long readMismatches;
    long failoverNanos;
    long inFlightAtEnd;
    private int inFlight;
    private int writesSinceFlush;

    DrillWorkload(BlockDevice device, DrillOptions options, BlockPatternVerifier verifier, DrillTimeline timeline,
                  ResyncAccounting accounting) {
        this.device = device;
        this.options = options;
        this.verifier = verifier;
        this.timeline = timeline;
        this.accounting = accounting;
        this.blocks = verifier.blocks();
        this.busy = new boolean[(int) blocks];
        this.requests = new Request[options.queueDepth()];
        this.done = new ManyToOneConcurrentArrayQueue<>(Math.max(2, options.queueDepth()));
        this.random = new SplittableRandom(options.seed());
        for (int i = 0; i < requests.length; i++) {
            requests[i] = new Request(i, options.maxIoBytes());
        }
    }

    /** Requests completed so far (any status); safe from any thread. */
    long completedRequests() {
        return completedRequests.get();
    }

    /** Completions per second in phase {@code p}. */
    double iops(int p) {
        long start = phaseStart[p];
        long end = p == AFTER ? phaseEnd : phaseStart[p + 1];
        if (start == 0 || end <= start) {
            return 0;
        }
        return phaseCount[p] * 1e9 / (end - start);
    }

    /** The control thread moves the workload into phase {@code p} (counts from {@code nanoTime} on). */
    void enter(int p, long nanoTime) {
        phaseStart[p] = nanoTime;
        phase = p;
    }

    @Override
    public void run() {
        try {
            IdleStrategy idle = new BackoffIdleStrategy(100, 10, 1_000, 200_000);
            if (!prefill(idle)) {
                return;
            }
            phaseStart[BEFORE] = System.nanoTime();
            prefilled = true;
            while (running) {
                int work = drain();
                for (Request r : requests) {
                    if (!r.inUse && running) {
                        work += issue(r) ? 1 : 0;
                    }
                }
                idle.idle(work);
            }
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (inFlight > 0 && System.nanoTime() < deadline) {
                if (drain() == 0) {
                    LockSupport.parkNanos(100_000);
                }
            }
            inFlightAtEnd = inFlight;
        } catch (Throwable t) {
            failure = t;
        }
    }

    /**
     * Writes generation 1 over the whole working set, sequentially in max-IO requests with the queue depth in
     * flight, and waits for all of them. False (with {@link #failure} set) if any failed or the drill stopped.
     */
    private boolean prefill(IdleStrategy idle) {
        int chunk = options.maxIoBytes() / BLOCK;
        generation = 1;
        while (running && (prefillNext < blocks || inFlight > 0) && prefillFailedStatus == IoStatus.OK) {
            int work = done.drain(this::completePrefill);
            for (Request r : requests) {
                if (!r.inUse && prefillNext < blocks && running) {
                    int n = (int) Math.min(chunk, blocks - prefillNext);
                    ByteBuffer buf = r.buffer;
                    buf.clear().limit(n * BLOCK);
                    for (int k = 0; k < n; k++) {
                        BlockPatternVerifier.fillBlock(buf, k * BLOCK, prefillNext + k, 1);
                    }
                    r.start(IoOp.WRITE, prefillNext, n, 1);
                    device.submit(IoOp.WRITE, prefillNext * BLOCK, n * BLOCK, 0, buf, r.index, this);
                    prefillNext += n;
                    work++;
                }
            }
            idle.idle(work);
        }
        if (prefillFailedStatus != IoStatus.OK || prefillNext < blocks || inFlight > 0) {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
            while (inFlight > 0 && System.nanoTime() < deadline) {
                if (done.drain(this::completePrefill) == 0) {
                    LockSupport.parkNanos(100_000);
                }
            }
            failure = new IllegalStateException(prefillFailedStatus != IoStatus.OK
                    ? "a prefill write failed: " + IoStatus.name(prefillFailedStatus) : "prefill stopped");
            return false;
        }
        return true;
    }

    private void completePrefill(Request r) {
        inFlight--;
        r.inUse = false;
        accounting.prefillWriteEnded(r.firstBlock, r.blocks, r.endNanos);
        if (r.status == IoStatus.OK) {
            for (int k = 0; k < r.blocks; k++) {
                verifier.prefilled(r.firstBlock + k, r.gen);
            }
        } else if (prefillFailedStatus == IoStatus.OK) {
            prefillFailedStatus = r.status;
        }
    }

    private boolean issue(Request r) {
        int pick = random.nextInt(100);
        if (pick >= options.readPercent() && writesSinceFlush >= 50) {
            writesSinceFlush = 0;
            r.start(IoOp.FLUSH, 0, 0, 0);
            device.submit(IoOp.FLUSH, 0, 0, 0, null, r.index, this);
            return true;
        }
        int minBlocks = options.minIoBytes() / BLOCK;
        int maxBlocks = options.maxIoBytes() / BLOCK;
        int n = minBlocks + random.nextInt(maxBlocks - minBlocks + 1);
        for (int attempt = 0; attempt < 8; attempt++) {
            long first = random.nextLong(blocks - n + 1);
            if (anyBusy(first, n)) {
                continue;
            }
            for (int k = 0; k < n; k++) {
                busy[(int) (first + k)] = true;
            }
            ByteBuffer buf = r.buffer;
            buf.clear().limit(n * BLOCK);
            if (pick < options.readPercent()) {
                r.start(IoOp.READ, first, n, 0);
                device.submit(IoOp.READ, first * BLOCK, n * BLOCK, 0, buf, r.index, this);
            } else {
                long gen = ++generation;
                for (int k = 0; k < n; k++) {
                    BlockPatternVerifier.fillBlock(buf, k * BLOCK, first + k, gen);
                }
                writesSinceFlush++;
                r.start(IoOp.WRITE, first, n, gen);
                device.submit(IoOp.WRITE, first * BLOCK, n * BLOCK, 0, buf, r.index, this);
            }
            return true;
        }
        return false;
    }

    private boolean anyBusy(long first, int n) {
        for (int k = 0; k < n; k++) {
            if (busy[(int) (first + k)]) {
                return true;
            }
        }
        return false;
    }

    /** The device's completion (any thread): hands the slot back to the driver thread. */
    @Override
    public void onComplete(long tag, int status) {
        Request r = requests[(int) tag];
        r.status = status;
        r.endNanos = System.nanoTime();
        while (!done.offer(r)) {
            Thread.onSpinWait();
        }
    }

    private int drain() {
        return done.drain(this::complete);
    }

    private void complete(Request r) {
        inFlight--;
        r.inUse = false;
        completed++;
        completedRequests.lazySet(completed);
        int p = phase;
        long latency = r.endNanos - r.startNanos;
        phaseCount[p]++;
        if (latency > maxLatency[p]) {
            maxLatency[p] = latency;
        }
        long drop = timeline.firstDropNanos();
        if (failoverNanos == 0 && r.status == IoStatus.OK && drop != 0 && r.startNanos >= drop) {
            failoverNanos = r.endNanos;
        }
        switch (r.op) {
            case WRITE:
                for (int k = 0; k < r.blocks; k++) {
                    long b = r.firstBlock + k;
                    if (r.status == IoStatus.OK) {
                        verifier.acknowledged(b, r.gen);
                    } else {
                        verifier.failed(b, r.gen);
                    }
                    busy[(int) b] = false;
                }
                accounting.writeEnded(r.firstBlock, r.blocks, r.startNanos, r.endNanos);
                if (r.status == IoStatus.OK) {
                    writesOk++;
                } else {
                    writesFailed++;
                }
                break;
            case READ:
                if (r.status != IoStatus.OK) {
                    readsFailed++;
                }
                for (int k = 0; k < r.blocks; k++) {
                    long b = r.firstBlock + k;
                    if (r.status == IoStatus.OK
                            && verifier.classify(r.buffer, k * BLOCK, b) != BlockPatternVerifier.VERIFIED) {
                        readMismatches++;
                    }
                    busy[(int) b] = false;
                }
                break;
            case FLUSH:
                if (r.status == IoStatus.OK) {
                    accounting.flushSucceeded(r.startNanos, r.endNanos);
                }
                break;
            default:
                break;
        }
    }

    /** One request slot: its buffer, and what is in flight in it (driver thread, but for the completion's two). */
    private final class Request {
        final int index;
        final ByteBuffer buffer;
        IoOp op;
        long firstBlock;
        int blocks;
        long gen;
        long startNanos;
        volatile long endNanos;
        volatile int status;
        boolean inUse;

        Request(int index, int maxBytes) {
            this.index = index;
            this.buffer = ByteBuffer.allocateDirect(maxBytes).order(ByteOrder.LITTLE_ENDIAN);
        }

        void start(IoOp op, long firstBlock, int blocks, long gen) {
            this.op = op;
            this.firstBlock = firstBlock;
            this.blocks = blocks;
            this.gen = gen;
            this.inUse = true;
            inFlight++;
            this.startNanos = System.nanoTime();
        }
    }
}
