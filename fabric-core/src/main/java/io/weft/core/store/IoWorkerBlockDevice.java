package io.weft.core.store;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.DeviceInfo;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import java.nio.ByteBuffer;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.agrona.concurrent.Agent;
import org.agrona.concurrent.AgentRunner;
import org.agrona.concurrent.BackoffIdleStrategy;
import org.agrona.concurrent.BusySpinIdleStrategy;
import org.agrona.concurrent.ManyToManyConcurrentArrayQueue;
import org.agrona.concurrent.SleepingIdleStrategy;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Puts a small pool of IO worker threads in front of a {@link StoreBlockDevice} whose store is slow (a real disk), so
 * a caller's thread (an NBD connection, a transport's handler agent) hands the request off instead of waiting for
 * the medium.
 *
 * <p>Requests travel in pre-allocated {@code Request} slots: {@code submit} takes a free slot, fills it and offers it
 * to a lock-free queue; a worker agent (Agrona duty cycle with a spin/yield/park back-off, so idle workers cost
 * ~0% CPU) polls it, runs it on the store, completes it and returns the slot. Nothing is allocated per request.
 * When every slot is busy the request runs inline on the caller: that is the back-pressure, and it never fails a
 * request just because the queue is deep.
 *
 * <p>{@link #cancel}: a request still waiting in the queue is completed with ECANCELED at once and skipped by the
 * worker that polls it (each slot has a QUEUED/RUNNING/CANCELLED word the worker takes with a CAS before it runs
 * it); a request a worker is running completes with its real status, as the store answers.
 */
public final class IoWorkerBlockDevice implements BlockDevice {
    private static final Logger LOG = LoggerFactory.getLogger(IoWorkerBlockDevice.class);
    private static final long DRAIN_TIMEOUT_NANOS = TimeUnit.SECONDS.toNanos(30);
    /** Close's drain: checks every 100 µs whether the queued requests have finished (stateless, so shared). */
    private static final SleepingIdleStrategy DRAIN_WAIT = new SleepingIdleStrategy(100_000);

    private final StoreBlockDevice device;
    private final ManyToManyConcurrentArrayQueue<Request> free;
    private final ManyToManyConcurrentArrayQueue<Request> pending;
    private final Request[] all;
    private final AgentRunner[] runners;
    private final AtomicInteger inFlight = new AtomicInteger();
    private volatile boolean closed;

    /**
     * @param device     the device doing the IO (closed with this one)
     * @param threads    worker threads, at least 1
     * @param queueDepth request slots, at least 1; more concurrent requests run inline on their callers
     * @param name       thread name prefix (e.g. the volume name)
     */
    public IoWorkerBlockDevice(StoreBlockDevice device, int threads, int queueDepth, String name) {
        if (threads < 1 || queueDepth < 1) {
            throw new IllegalArgumentException("threads and queueDepth must be >= 1: " + threads + ", " + queueDepth);
        }
        this.device = device;
        this.free = new ManyToManyConcurrentArrayQueue<>(queueDepth);
        this.pending = new ManyToManyConcurrentArrayQueue<>(queueDepth);
        this.all = new Request[queueDepth];
        for (int i = 0; i < queueDepth; i++) {
            all[i] = new Request();
            free.offer(all[i]);
        }
        this.runners = new AgentRunner[threads];
        for (int i = 0; i < threads; i++) {
            AgentRunner runner = new AgentRunner(
                    new BackoffIdleStrategy(100, 10, TimeUnit.MICROSECONDS.toNanos(1),
                            TimeUnit.MILLISECONDS.toNanos(1)),
                    error -> LOG.warn("IO worker of {} failed", name, error), null, new Worker(name + "-io-" + i));
            runners[i] = runner;
            AgentRunner.startOnThread(runner);
        }
    }

    @Override
    public DeviceInfo info() {
        return device.info();
    }

    @Override
    public void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                       IoCompletion completion) {
        // Counted before the closed check: close() sets closed, then waits for inFlight to drain, so a request
        // either sees closed or is waited for.
        inFlight.incrementAndGet();
        if (closed) {
            inFlight.decrementAndGet();
            completion.onComplete(tag, IoStatus.ESHUTDOWN);
            return;
        }
        Request request = free.poll();
        if (request == null) {
            int status = device.execute(op, offset, length, flags, buffer);
            inFlight.decrementAndGet();
            completion.onComplete(tag, status);
            return;
        }
        request.op = op;
        request.offset = offset;
        request.length = length;
        request.flags = flags;
        request.buffer = buffer;
        request.tag = tag;
        request.completion = completion;
        request.state.set(QUEUED);
        offerUntilTaken(pending, request);
    }

    /** A request still queued completes with ECANCELED now; one being run completes as the store answers. */
    @Override
    public void cancel(long tag, IoCompletion completion) {
        for (Request r : all) {
            if (r.state.get() == QUEUED && r.completion == completion && r.tag == tag
                    && r.state.compareAndSet(QUEUED, CANCELLED)) {
                // Its queue entry stays: the worker that polls it returns the slot.
                inFlight.decrementAndGet();
                completion.onComplete(tag, IoStatus.ECANCELED);
            }
        }
    }

    /** Requests handed to the workers and not yet completed. */
    public int inFlight() {
        return inFlight.get();
    }

    @Override
    public long describeExtents(long offset, long length, ExtentConsumer consumer) {
        return device.describeExtents(offset, length, consumer);
    }

    /** The device the workers drive. */
    public StoreBlockDevice device() {
        return device;
    }

    /** Stops taking requests, lets the queued ones finish (bounded wait), stops the workers, closes the device. */
    @Override
    public void close() {
        closed = true;
        long deadline = System.nanoTime() + DRAIN_TIMEOUT_NANOS;
        while (inFlight.get() > 0 && System.nanoTime() - deadline < 0) {
            DRAIN_WAIT.idle();
        }
        for (AgentRunner runner : runners) {
            runner.close();
        }
        Request leftover;
        while ((leftover = pending.poll()) != null) {
            if (leftover.state.compareAndSet(QUEUED, RUNNING)) {
                complete(leftover, IoStatus.ESHUTDOWN);
            } else {
                recycle(leftover);
            }
        }
        device.close();
    }

    private void complete(Request request, int status) {
        IoCompletion completion = request.completion;
        long tag = request.tag;
        recycle(request);
        inFlight.decrementAndGet();
        completion.onComplete(tag, status);
    }

    private void recycle(Request request) {
        request.buffer = null;
        request.completion = null;
        request.state.set(FREE);
        offerUntilTaken(free, request);
    }

    /**
     * Both queues have a slot for every Request, so an offer can only fail transiently: Agrona's many-to-many queue
     * refuses while a consumer that already claimed the slot has not yet released it. Dropping the request there
     * would lose it, so the caller spins until the consumer finishes.
     */
    private static void offerUntilTaken(ManyToManyConcurrentArrayQueue<Request> queue, Request request) {
        while (!queue.offer(request)) {
            BusySpinIdleStrategy.INSTANCE.idle(); // stateless: any thread
        }
    }

    private static final int FREE = 0;
    private static final int QUEUED = 1;
    private static final int RUNNING = 2;
    private static final int CANCELLED = 3;

    /** One reusable request slot. */
    private static final class Request {
        final AtomicInteger state = new AtomicInteger(FREE);
        IoOp op;
        long offset;
        int length;
        int flags;
        ByteBuffer buffer;
        long tag;
        IoCompletion completion;
    }

    /** Duty cycle of one worker thread: take a request, run it, complete it. */
    private final class Worker implements Agent {
        private final String roleName;

        Worker(String roleName) {
            this.roleName = roleName;
        }

        @Override
        public int doWork() {
            Request request = pending.poll();
            if (request == null) {
                return 0;
            }
            if (!request.state.compareAndSet(QUEUED, RUNNING)) {
                recycle(request); // cancelled while queued: its caller has been completed
                return 1;
            }
            int status = device.execute(request.op, request.offset, request.length, request.flags, request.buffer);
            complete(request, status);
            return 1;
        }

        @Override
        public String roleName() {
            return roleName;
        }
    }
}
