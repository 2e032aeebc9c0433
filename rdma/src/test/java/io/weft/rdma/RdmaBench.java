package io.weft.rdma;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.rdma.client.PathSpec;
import io.weft.rdma.client.RdmaClientConfig;
import io.weft.rdma.client.RdmaSession;
import io.weft.rdma.verbs.soft.SoftwareProvider;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.HdrHistogram.Histogram;

/**
 * Java-API benchmark of the RDMA transport over the software provider: storage in a child JVM serving FILE over TCP
 * loopback, this JVM drives an {@link io.weft.rdma.client.RdmaBlockDevice} with a closed loop of QD requests
 * (4 KiB random reads or writes), each resubmitted from its own completion. Latency per request goes into an
 * HdrHistogram (completions all run on the single client queue agent, so one histogram suffices).
 *
 * <pre>
 * args: FILE SIZE_BYTES SECONDS WARMUP_SECONDS CASE... (CASE = randread:QD | randwrite:QD)
 * out:  RESULT case qd iops p50_us p99_us errors
 * </pre>
 * Run through bench/rdma/run.sh, which also measures nbdkit + fio on the same file in the same run.
 * {@code -Dweft.bench.rdma.submitters=threads} resubmits each request from a thread of its own (woken by the
 * completion), as an NBD reader does, instead of from the completion on the queue agent: that is the case where the
 * submitting thread can post inline ({@code -Dweft.rdma.inline-submit}, see ClientQueue).
 * {@code -Dweft.bench.rdma.tls=DIR} (a PEM layout, e.g. from {@code weft certs init}) runs both sides over TLS
 * ({@code bench/rdma/tls.sh} compares that with plaintext in one run).
 */
public final class RdmaBench {
    private static final int BLOCK = 4096;

    private RdmaBench() {
    }

    public static void main(String[] args) throws Exception {
        Path file = Path.of(args[0]);
        long size = Long.parseLong(args[1]);
        int seconds = Integer.parseInt(args[2]);
        int warmup = Integer.parseInt(args[3]);
        Path log = Path.of(System.getProperty("java.io.tmpdir"),
                "weft-rdma-bench-storage-" + ProcessHandle.current().pid() + ".log");
        try (StorageProcess storage = StorageProcess.start(file, size, "127.0.0.1:0", 1, log);
             SoftwareProvider provider = new SoftwareProvider(benchTls());
             RdmaSession session = RdmaSession.open(provider, "bench", "vol0", TestGrants.GRANT,
                     List.of(PathSpec.to(storage.addresses().get(0))), RdmaClientConfig.DEFAULTS)) {
            for (int i = 4; i < args.length; i++) {
                String[] c = args[i].split(":");
                IoOp op = c[0].equals("randwrite") ? IoOp.WRITE : IoOp.READ;
                int qd = Integer.parseInt(c[1]);
                run(session.device(), op, qd, size, warmup, false);
                Result r = run(session.device(), op, qd, size, seconds, true);
                System.out.printf("RESULT %s %d %.0f %.1f %.1f %d%n", c[0], qd, r.iops, r.p50Micros, r.p99Micros,
                        r.errors);
                System.out.flush();
            }
        }
    }

    /** {@code -Dweft.bench.rdma.tls=DIR}: the TLS context of both sides, else null (plaintext). */
    static javax.net.ssl.SSLContext benchTls() throws java.io.IOException {
        String dir = System.getProperty("weft.bench.rdma.tls");
        return dir == null || dir.isEmpty() ? null : io.weft.core.tls.PemTlsMaterial.serverContext(Path.of(dir), true);
    }

    /** One closed-loop request slot: resubmits from its own completion until the end time. */
    private static final class Loop implements IoCompletion {
        private final BlockDevice device;
        private final IoOp op;
        private final long blocks;
        private final long end;
        private final Histogram histogram;
        private final AtomicLong errors;
        private final CountDownLatch drained;
        private final SplittableRandom random;
        private final ByteBuffer buffer = ByteBuffer.allocateDirect(BLOCK);
        private long submitted;

        Loop(BlockDevice device, IoOp op, long blocks, long end, Histogram histogram, AtomicLong errors,
             CountDownLatch drained, SplittableRandom random) {
            this.device = device;
            this.op = op;
            this.blocks = blocks;
            this.end = end;
            this.histogram = histogram;
            this.errors = errors;
            this.drained = drained;
            this.random = random;
        }

        void submit() {
            submitted = System.nanoTime();
            buffer.clear();
            device.submit(op, random.nextLong(blocks) * BLOCK, BLOCK, 0, buffer, 0, this);
        }

        @Override
        public void onComplete(long tag, int status) {
            long now = System.nanoTime();
            if (status != IoStatus.OK) {
                errors.incrementAndGet();
            }
            histogram.recordValue(Math.min(now - submitted, histogram.getHighestTrackableValue()));
            if (now - end < 0) {
                submit();
            } else {
                drained.countDown();
            }
        }
    }

    /**
     * One request slot driven by its own thread: submit, let the device complete it here if it can
     * ({@code awaitCompletions}), else park until the completion unparks it; again.
     */
    private static final class ThreadLoop extends Thread implements IoCompletion {
        private final BlockDevice device;
        private final IoOp op;
        private final long blocks;
        private final long end;
        private final Histogram histogram;
        private final AtomicLong errors;
        private final CountDownLatch drained;
        private final SplittableRandom random;
        private final ByteBuffer buffer = ByteBuffer.allocateDirect(BLOCK);
        private volatile boolean done;
        private volatile int status;

        ThreadLoop(BlockDevice device, IoOp op, long blocks, long end, Histogram histogram, AtomicLong errors,
                   CountDownLatch drained, SplittableRandom random) {
            super("bench-submitter");
            this.device = device;
            this.op = op;
            this.blocks = blocks;
            this.end = end;
            this.histogram = histogram;
            this.errors = errors;
            this.drained = drained;
            this.random = random;
        }

        @Override
        public void run() {
            long now;
            do {
                long submitted = System.nanoTime();
                done = false;
                buffer.clear();
                device.submit(op, random.nextLong(blocks) * BLOCK, BLOCK, 0, buffer, 0, this);
                // Nothing more to submit: as an NBD reader does before it blocks (submitter assist, see ClientQueue).
                device.awaitCompletions(TimeUnit.MILLISECONDS.toNanos(1));
                while (!done) {
                    java.util.concurrent.locks.LockSupport.park(this);
                }
                now = System.nanoTime();
                if (status != IoStatus.OK) {
                    errors.incrementAndGet();
                }
                histogram.recordValue(Math.min(now - submitted, histogram.getHighestTrackableValue()));
            } while (now - end < 0);
            drained.countDown();
        }

        @Override
        public void onComplete(long tag, int status) {
            this.status = status;
            done = true;
            java.util.concurrent.locks.LockSupport.unpark(this);
        }
    }

    record Result(double iops, double p50Micros, double p99Micros, long errors) {
    }

    static Result run(BlockDevice device, IoOp op, int qd, long size, int seconds, boolean measure)
            throws InterruptedException {
        Histogram histogram = new Histogram(TimeUnit.SECONDS.toNanos(10), 3);
        AtomicLong errors = new AtomicLong();
        CountDownLatch drained = new CountDownLatch(qd);
        long blocks = size / BLOCK;
        long start = System.nanoTime();
        long end = start + TimeUnit.SECONDS.toNanos(seconds);
        boolean threads = "threads".equals(System.getProperty("weft.bench.rdma.submitters"));
        Histogram[] perThread = new Histogram[qd];
        for (int i = 0; i < qd; i++) {
            if (threads) {
                perThread[i] = new Histogram(TimeUnit.SECONDS.toNanos(10), 3);
                ThreadLoop t = new ThreadLoop(device, op, blocks, end, perThread[i], errors, drained,
                        new SplittableRandom(1000 + i));
                t.setDaemon(true);
                t.start();
            } else {
                new Loop(device, op, blocks, end, histogram, errors, drained, new SplittableRandom(1000 + i)).submit();
            }
        }
        drained.await();
        if (threads) {
            for (Histogram h : perThread) {
                histogram.add(h);
            }
        }
        double elapsed = (System.nanoTime() - start) / 1e9;
        return new Result(histogram.getTotalCount() / elapsed, histogram.getValueAtPercentile(50) / 1000.0,
                histogram.getValueAtPercentile(99) / 1000.0, errors.get());
    }
}
