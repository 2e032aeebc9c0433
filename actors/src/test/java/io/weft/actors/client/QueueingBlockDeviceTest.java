package io.weft.actors.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.stats.IoStats;
import io.weft.core.io.BlockDevice;
import io.weft.core.io.DeviceInfo;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.testkit.FaultInjectingBlockDevice;
import io.weft.testkit.FaultInjectingBlockDevice.CancelAnswer;
import io.weft.testkit.FaultInjectingBlockDevice.Fault;
import io.weft.testkit.MemoryBlockDevice;
import io.weft.testkit.OwnershipChecker;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class QueueingBlockDeviceTest {
    private static final DeviceInfo INFO = new DeviceInfo(1 << 20, 512, 4096, 1 << 16, false, true, true, false,
            true, false, false, true);
    private static final long TIMEOUT = 1_000_000_000L;

    /** Records completions by caller tag. */
    static final class Completions implements IoCompletion {
        final Map<Long, Integer> status = new HashMap<>();
        final List<Long> order = new ArrayList<>();

        @Override
        public synchronized void onComplete(long tag, int s) {
            if (status.put(tag, s) != null) {
                throw new AssertionError("completed twice: " + tag);
            }
            order.add(tag);
        }

        synchronized Integer of(long tag) {
            return status.get(tag);
        }
    }

    /** A path backed by a byte array that completes inline, or holds requests when {@code hold} is set. */
    static final class ArrayPath implements BlockDevice {
        final byte[] data = new byte[1 << 20];
        boolean hold;
        int answerWith = IoStatus.OK;
        final List<long[]> held = new ArrayList<>();
        final List<IoCompletion> heldCompletions = new ArrayList<>();

        @Override
        public DeviceInfo info() {
            return INFO;
        }

        @Override
        public void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                           IoCompletion completion) {
            if (hold) {
                held.add(new long[] {tag});
                heldCompletions.add(completion);
                return;
            }
            if (answerWith == IoStatus.OK) {
                if (op == IoOp.WRITE) {
                    buffer.get(buffer.position(), data, (int) offset, length);
                } else if (op == IoOp.READ) {
                    buffer.put(buffer.position(), data, (int) offset, length);
                }
            }
            completion.onComplete(tag, answerWith);
        }

        void release(int index, int status) {
            heldCompletions.get(index).onComplete(held.get(index)[0], status);
        }

        /** As a transport does: a held request is answered ECANCELED at once (a later release is a duplicate). */
        @Override
        public void cancel(long tag, IoCompletion completion) {
            for (int i = 0; i < held.size(); i++) {
                if (held.get(i)[0] == tag && heldCompletions.get(i) == completion) {
                    completion.onComplete(tag, IoStatus.ECANCELED);
                }
            }
        }

        @Override
        public void close() {
        }
    }

    private static QueueingBlockDevice device(int slots) {
        return new QueueingBlockDevice(INFO, slots, TIMEOUT, new IoStats("test"));
    }

    private static ByteBuffer pattern(int length, int seed) {
        ByteBuffer b = ByteBuffer.allocate(length);
        for (int i = 0; i < length; i++) {
            b.put(i, (byte) (i * 31 + seed));
        }
        return b;
    }

    @Test
    void connectedRequestsGoStraightToThePath() {
        QueueingBlockDevice dev = device(4);
        ArrayPath path = new ArrayPath();
        dev.connect(path, INFO);
        Completions done = new Completions();
        ByteBuffer written = pattern(4096, 7);
        dev.submit(IoOp.WRITE, 8192, 4096, 0, written, 1, done);
        ByteBuffer read = ByteBuffer.allocate(4096);
        dev.submit(IoOp.READ, 8192, 4096, 0, read, 2, done);
        assertEquals(IoStatus.OK, done.of(1));
        assertEquals(IoStatus.OK, done.of(2));
        assertArrayEquals(written.array(), read.array());
        assertEquals(0, dev.inFlight());
        assertEquals(1, dev.stats().snapshot().op(io.weft.core.io.IoOp.READ).ops());
        assertEquals(1, dev.stats().snapshot().op(io.weft.core.io.IoOp.WRITE).ops());
    }

    @Test
    void requestsQueueWhileDisconnectedAndGoOutOnReconnect() {
        QueueingBlockDevice dev = device(4);
        Completions done = new Completions();
        ByteBuffer written = pattern(512, 3);
        dev.submit(IoOp.WRITE, 0, 512, 0, written, 10, done);
        dev.submit(IoOp.FLUSH, 0, 0, 0, null, 11, done);
        assertEquals(null, done.of(10), "nothing completes without a path");
        assertEquals(2, dev.inFlight());
        ArrayPath path = new ArrayPath();
        dev.connect(path, INFO);
        assertEquals(IoStatus.OK, done.of(10));
        assertEquals(IoStatus.OK, done.of(11));
        assertEquals(3, path.data[0]);
        assertEquals(0, dev.inFlight());
    }

    @Test
    void queuedRequestsFailWithEioOnlyAfterTheIoTimeout() {
        QueueingBlockDevice dev = device(4);
        Completions done = new Completions();
        long start = System.nanoTime();
        dev.submit(IoOp.READ, 0, 512, 0, ByteBuffer.allocate(512), 5, done);
        assertEquals(0, dev.expire(start + TIMEOUT / 2), "not yet expired");
        assertEquals(null, done.of(5));
        assertEquals(1, dev.expire(System.nanoTime() + TIMEOUT + 1));
        assertEquals(IoStatus.EIO, done.of(5));
        assertEquals(0, dev.inFlight());
        // The slot is free again and a later path does not see the expired request.
        ArrayPath path = connectHoldingPath(dev);
        assertTrue(path.held.isEmpty());
    }

    @Test
    void inFlightRequestsThatNeverCompleteFailAfterTheIoTimeoutAndLateCompletionsAreIgnored() {
        QueueingBlockDevice dev = device(2);
        ArrayPath path = connectHoldingPath(dev);
        Completions done = new Completions();
        dev.submit(IoOp.WRITE, 0, 512, 0, pattern(512, 1), 1, done);
        assertEquals(1, dev.expire(System.nanoTime() + TIMEOUT + 1));
        assertEquals(IoStatus.EIO, done.of(1));
        // The slot is reused by a new request; the dead path's late answer must not complete it.
        dev.submit(IoOp.WRITE, 512, 512, 0, pattern(512, 2), 2, done);
        path.release(0, IoStatus.OK);
        assertEquals(null, done.of(2));
        path.release(1, IoStatus.OK);
        assertEquals(IoStatus.OK, done.of(2));
    }

    @Test
    void shutdownFromThePathRequeuesForTheNextPath() {
        QueueingBlockDevice dev = device(4);
        ArrayPath dying = new ArrayPath();
        dying.answerWith = IoStatus.ESHUTDOWN;
        dev.connect(dying, INFO);
        Completions done = new Completions();
        dev.submit(IoOp.WRITE, 0, 512, 0, pattern(512, 9), 1, done);
        // The dying path bounced it back; it is queued again, not failed.
        dev.disconnect();
        assertEquals(null, done.of(1));
        ArrayPath next = new ArrayPath();
        dev.connect(next, INFO);
        assertEquals(IoStatus.OK, done.of(1));
        assertEquals(9, next.data[0]);
    }

    /** Connects {@code dev} to a path that holds every request until the test releases it. */
    private static ArrayPath connectHoldingPath(QueueingBlockDevice dev) {
        ArrayPath path = new ArrayPath();
        path.hold = true;
        dev.connect(path, INFO);
        return path;
    }

    @Test
    void forceCloseFailsQueuedAndInFlightWithEioAndRefusesNewIo() {
        QueueingBlockDevice dev = device(4);
        ArrayPath path = connectHoldingPath(dev);
        Completions done = new Completions();
        dev.submit(IoOp.READ, 0, 512, 0, ByteBuffer.allocate(512), 1, done);
        dev.disconnect();
        dev.submit(IoOp.READ, 512, 512, 0, ByteBuffer.allocate(512), 2, done);
        dev.forceClose();
        assertEquals(IoStatus.EIO, done.of(1));
        assertEquals(IoStatus.EIO, done.of(2));
        dev.submit(IoOp.READ, 0, 512, 0, ByteBuffer.allocate(512), 3, done);
        assertEquals(IoStatus.ESHUTDOWN, done.of(3));
        path.release(0, IoStatus.OK);
        assertEquals(0, dev.inFlight());
    }

    @Test
    void drainingRefusesNewIoButLetsSubmittedIoFinish() {
        QueueingBlockDevice dev = device(4);
        ArrayPath path = connectHoldingPath(dev);
        Completions done = new Completions();
        dev.submit(IoOp.READ, 0, 512, 0, ByteBuffer.allocate(512), 1, done);
        dev.stopAccepting();
        dev.submit(IoOp.READ, 0, 512, 0, ByteBuffer.allocate(512), 2, done);
        assertEquals(IoStatus.ESHUTDOWN, done.of(2));
        assertEquals(1, dev.inFlight());
        path.release(0, IoStatus.OK);
        assertEquals(IoStatus.OK, done.of(1));
        assertEquals(0, dev.inFlight());
    }

    @Test
    void badRequestsAndExhaustionCompleteWithoutTouchingThePath() {
        QueueingBlockDevice dev = device(2);
        ArrayPath path = connectHoldingPath(dev);
        Completions done = new Completions();
        dev.submit(IoOp.READ, INFO.size(), 512, 0, ByteBuffer.allocate(512), 1, done);
        assertEquals(IoStatus.EOVERFLOW, done.of(1));
        dev.submit(IoOp.READ, 0, 512, 0, ByteBuffer.allocate(512), 2, done);
        dev.submit(IoOp.READ, 0, 512, 0, ByteBuffer.allocate(512), 3, done);
        dev.submit(IoOp.READ, 0, 512, 0, ByteBuffer.allocate(512), 4, done);
        assertEquals(IoStatus.ENOMEM, done.of(4));
        assertEquals(2, path.held.size());
        assertFalse(done.status.containsKey(2L));
    }

    @Test
    void theConnectedSteadyStateAllocatesNothing() {
        var threads = (com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean();
        QueueingBlockDevice dev = device(64);
        ArrayPath path = new ArrayPath();
        dev.connect(path, INFO);
        ByteBuffer buffer = ByteBuffer.allocateDirect(4096);
        long[] completed = new long[1];
        IoCompletion counter = (tag, status) -> completed[0] += status == IoStatus.OK ? 1 : 1000;
        Runnable burst = () -> {
            for (int i = 0; i < 20_000; i++) {
                buffer.clear();
                dev.submit((i & 1) == 0 ? IoOp.READ : IoOp.WRITE, (i & 255) * 4096L, 4096, 0, buffer, i, counter);
            }
        };
        burst.run(); // warm-up: JIT, HdrHistogram buckets
        burst.run();
        long before = threads.getCurrentThreadAllocatedBytes();
        burst.run();
        long allocated = threads.getCurrentThreadAllocatedBytes() - before;
        assertEquals(60_000, completed[0], "every request completed OK");
        // A few bytes of slack for the measurement itself; a per-request allocation would be >= 320 KiB here.
        assertTrue(allocated < 4096, "allocated " + allocated + " bytes for 20000 requests");
    }

    @Test
    void resizedGeometryIsCheckedAtOnce() {
        QueueingBlockDevice dev = device(2);
        dev.connect(new ArrayPath(), INFO);
        Completions done = new Completions();
        dev.updateInfo(INFO.withSize(4096));
        dev.submit(IoOp.READ, 4096, 512, 0, ByteBuffer.allocate(512), 1, done);
        assertEquals(IoStatus.EOVERFLOW, done.of(1));
        assertEquals(4096, dev.info().size());
    }

    // ------------------------------------------------------------------------------- buffer ownership (issue 11)

    /** A path over an in-memory store whose answers are held: a late answer copies into the caller's buffer. */
    private static FaultInjectingBlockDevice holdingPath() {
        MemoryBlockDevice store = new MemoryBlockDevice(INFO);
        store.submit(IoOp.WRITE, 0, 4096, 0, pattern(4096, 5), 0, (t, s) -> { });
        return new FaultInjectingBlockDevice(store, "path").defaultFault(Fault.HOLD);
    }

    @Test
    void anInFlightRequestExpiredAtTheIoTimeoutIsCompletedOnlyFromThePathsCancelledCompletion() {
        QueueingBlockDevice dev = device(4);
        FaultInjectingBlockDevice path = holdingPath();
        dev.connect(path, INFO);
        OwnershipChecker checker = new OwnershipChecker();
        ByteBuffer buffer = ByteBuffer.allocate(4096);
        OwnershipChecker.Tracked read = checker.track(IoOp.READ, 0, 4096, buffer);
        dev.submit(IoOp.READ, 0, 4096, 0, buffer, read.id, checker);

        assertEquals(1, dev.expire(System.nanoTime() + TIMEOUT + 1));
        path.releaseAll(); // the path's late answer (a response that was already on its way)

        checker.assertNoViolations();
        assertEquals(IoStatus.EIO, read.status(), "the io-timeout is reported as EIO");
        assertEquals(1, path.cancelsAsked(), "the expired request was cancelled on the path");
        assertEquals(0, dev.inFlight());
    }

    @Test
    void aPathThatIgnoresTheCancelKeepsTheCallerWaitingUntilItAnswersWithItsRealStatus() {
        QueueingBlockDevice dev = device(4);
        FaultInjectingBlockDevice path = holdingPath().cancelAnswer(CancelAnswer.IGNORE);
        dev.connect(path, INFO);
        OwnershipChecker checker = new OwnershipChecker();
        ByteBuffer buffer = ByteBuffer.allocate(4096);
        OwnershipChecker.Tracked read = checker.track(IoOp.READ, 0, 4096, buffer);
        dev.submit(IoOp.READ, 0, 4096, 0, buffer, read.id, checker);

        dev.expire(System.nanoTime() + TIMEOUT + 1);
        assertFalse(read.completed(), "completed while the path still holds the buffer");
        dev.expire(System.nanoTime() + 2 * TIMEOUT + 1); // a second sweep neither completes nor re-cancels it
        assertFalse(read.completed());
        path.releaseAll();

        checker.assertNoViolations();
        assertEquals(IoStatus.OK, read.status(), "the path finished first: its real status");
        assertArrayEquals(pattern(4096, 5).array(), read.returned());
        assertEquals(0, dev.inFlight());
    }

    /**
     * A 4-slot device whose path holds every request: one READ sent to the path, then the path disconnected and a
     * second READ submitted, which waits in the queue.
     */
    private record InFlightAndQueued(QueueingBlockDevice dev, FaultInjectingBlockDevice path,
                                     OwnershipChecker checker, OwnershipChecker.Tracked read,
                                     OwnershipChecker.Tracked queued) {
        static InFlightAndQueued start() {
            QueueingBlockDevice dev = device(4);
            FaultInjectingBlockDevice path = holdingPath();
            dev.connect(path, INFO);
            OwnershipChecker checker = new OwnershipChecker();
            ByteBuffer inFlight = ByteBuffer.allocate(4096);
            OwnershipChecker.Tracked read = checker.track(IoOp.READ, 0, 4096, inFlight);
            dev.submit(IoOp.READ, 0, 4096, 0, inFlight, read.id, checker);
            dev.disconnect();
            ByteBuffer queuedBuffer = ByteBuffer.allocate(4096);
            OwnershipChecker.Tracked queued = checker.track(IoOp.READ, 0, 4096, queuedBuffer);
            dev.submit(IoOp.READ, 0, 4096, 0, queuedBuffer, queued.id, checker);
            return new InFlightAndQueued(dev, path, checker, read, queued);
        }
    }

    @Test
    void forceCloseCompletesAnInFlightRequestOnlyFromThePathsCancelledCompletion() {
        InFlightAndQueued rig = InFlightAndQueued.start();
        QueueingBlockDevice dev = rig.dev;
        FaultInjectingBlockDevice path = rig.path;
        OwnershipChecker checker = rig.checker;
        OwnershipChecker.Tracked read = rig.read;
        OwnershipChecker.Tracked queued = rig.queued;

        dev.forceClose();
        path.releaseAll();

        checker.assertNoViolations();
        assertEquals(IoStatus.EIO, read.status());
        assertEquals(IoStatus.EIO, queued.status(), "a queued request is failed at once");
        assertEquals(0, dev.inFlight());
    }

    @Test
    void theCallerMayCancelQueuedAndInFlightRequests() {
        InFlightAndQueued rig = InFlightAndQueued.start();
        QueueingBlockDevice dev = rig.dev;
        FaultInjectingBlockDevice path = rig.path;
        OwnershipChecker checker = rig.checker;
        OwnershipChecker.Tracked read = rig.read;
        OwnershipChecker.Tracked queued = rig.queued;

        dev.cancel(read.id, checker);
        dev.cancel(queued.id, checker);
        dev.cancel(12345, checker); // unknown: no effect
        path.releaseAll();

        checker.assertNoViolations();
        assertEquals(IoStatus.ECANCELED, read.status());
        assertEquals(IoStatus.ECANCELED, queued.status());
        assertEquals(0, dev.inFlight());
        dev.connect(path, INFO);
        assertTrue(path.held().isEmpty(), "the cancelled queued request is not sent later");
    }

    /**
     * The single-node chain under several NBD connections (bench/run's 4-connection case): each connection's reader
     * submits into the device and the path completes inline, so four threads take and give back slots at once while
     * at most four of the slots are busy. No request may find every slot taken, and afterwards every slot must still
     * be there (a lost slot is one the device can never hand out again: enough of them and every request is answered
     * ENOMEM). Rounds per thread: {@code -Dweft.test.slots.rounds} (the loss needs a thread pre-empted inside the
     * free list, so more rounds find it more surely on an idle machine).
     */
    @Test
    void concurrentSubmittersNeverLoseASlot() throws Exception {
        int slots = 16;
        int threads = 4;
        int rounds = Integer.getInteger("weft.test.slots.rounds", 300_000);
        QueueingBlockDevice dev = device(slots);
        ArrayPath path = new ArrayPath();
        dev.connect(path, INFO);
        java.util.concurrent.atomic.AtomicLong refused = new java.util.concurrent.atomic.AtomicLong();
        java.util.concurrent.atomic.AtomicLong completed = new java.util.concurrent.atomic.AtomicLong();
        IoCompletion count = (tag, status) -> {
            if (status == IoStatus.ENOMEM) {
                refused.incrementAndGet();
            }
            completed.incrementAndGet();
        };
        java.util.concurrent.CountDownLatch start = new java.util.concurrent.CountDownLatch(1);
        Thread[] readers = new Thread[threads];
        for (int t = 0; t < threads; t++) {
            ByteBuffer buffer = ByteBuffer.allocateDirect(512);
            int id = t;
            readers[t] = new Thread(() -> {
                try {
                    start.await();
                } catch (InterruptedException e) {
                    return;
                }
                for (int r = 0; r < rounds; r++) {
                    dev.submit(IoOp.READ, (long) (r & 1023) * 512, 512, 0, buffer.clear(), ((long) id << 32) | r,
                            count);
                }
            }, "reader-" + t);
            readers[t].start();
        }
        start.countDown();
        for (Thread t : readers) {
            t.join();
        }
        assertEquals((long) threads * rounds, completed.get());
        assertEquals(0, refused.get(), "requests answered ENOMEM although at most " + threads + " of " + slots
                + " slots were ever busy");
        // Every slot is still there: a holding path takes as many requests as there are slots, none is refused.
        path.hold = true;
        Completions held = new Completions();
        for (int i = 0; i < slots; i++) {
            dev.submit(IoOp.READ, 0, 512, 0, ByteBuffer.allocate(512), i, held);
        }
        assertEquals(null, held.of(slots - 1L), "slot " + (slots - 1) + " was refused: slots were lost");
        assertEquals(slots, path.held.size());
    }

    /**
     * A path that answers inline on the submitting thread, every other request with ESHUTDOWN (a transport going
     * away: the device queues the request again) and the rest OK, without touching the buffer.
     */
    static final class BouncingPath implements BlockDevice {
        private final java.util.concurrent.atomic.AtomicLong submits = new java.util.concurrent.atomic.AtomicLong();

        @Override
        public DeviceInfo info() {
            return INFO;
        }

        @Override
        public void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                           IoCompletion completion) {
            completion.onComplete(tag, (submits.getAndIncrement() & 1) == 0 ? IoStatus.ESHUTDOWN : IoStatus.OK);
        }

        @Override
        public void close() {
        }
    }

    /**
     * A failover under load: submitters keep every slot busy (a permit per slot, returned by the completion) while a
     * control thread disconnects and reconnects the path, and the path bounces every other request with ESHUTDOWN,
     * so requests are queued and drained by several threads at once with the pending queue full. A queued request
     * may only complete with the path's answer: none may fail with EIO while a path keeps coming back (the io-timeout
     * is far away). The slot count is a power of two so the pending queue has no spare room, and near capacity its
     * offer fails while a concurrent poll has claimed a position but not released it. Requests per submitter:
     * {@code -Dweft.test.pending.requests}.
     */
    @Test
    void requeuedRequestsNeverFailWhileThePathKeepsComingBack() throws Exception {
        int slots = 4;
        int submitters = 3;
        int perSubmitter = Integer.getInteger("weft.test.pending.requests", 200_000);
        long total = (long) submitters * perSubmitter;
        QueueingBlockDevice dev = new QueueingBlockDevice(INFO, slots, java.util.concurrent.TimeUnit.HOURS.toNanos(1),
                new IoStats("test"));
        BouncingPath path = new BouncingPath();
        java.util.concurrent.Semaphore free = new java.util.concurrent.Semaphore(slots);
        java.util.concurrent.atomic.AtomicLong completed = new java.util.concurrent.atomic.AtomicLong();
        java.util.concurrent.atomic.AtomicLong failed = new java.util.concurrent.atomic.AtomicLong();
        java.util.concurrent.atomic.AtomicInteger firstFailure = new java.util.concurrent.atomic.AtomicInteger(
                IoStatus.OK);
        IoCompletion count = (tag, status) -> {
            if (status != IoStatus.OK) {
                failed.incrementAndGet();
                firstFailure.compareAndSet(IoStatus.OK, status);
            }
            completed.incrementAndGet();
            free.release();
        };
        java.util.concurrent.CountDownLatch start = new java.util.concurrent.CountDownLatch(1);
        Thread[] threads = new Thread[submitters];
        for (int t = 0; t < submitters; t++) {
            int id = t;
            threads[t] = new Thread(() -> {
                try {
                    start.await();
                    for (int r = 0; r < perSubmitter; r++) {
                        free.acquire();
                        dev.submit(IoOp.FLUSH, 0, 0, 0, null, ((long) id << 32) | r, count);
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }, "submitter-" + t);
            threads[t].start();
        }
        start.countDown();
        // The control thread: the path comes and goes until every request has been answered (each connect drains).
        while (completed.get() < total) {
            dev.disconnect();
            dev.connect(path, INFO);
        }
        for (Thread t : threads) {
            t.join();
        }
        assertEquals(total, completed.get());
        assertEquals(0, failed.get(), failed.get() + " of " + total + " requests failed (first with status "
                + firstFailure.get() + ", EIO is " + IoStatus.EIO + ") although a path kept coming back");
        assertEquals(0, dev.inFlight());
    }

    /** A path that lends READs from its own array (inline, or held until answered); records what it was asked. */
    static final class LendingPath implements BlockDevice, io.weft.core.io.ReadLending {
        final ByteBuffer data = ByteBuffer.allocate(1 << 20);
        boolean hold;
        boolean refuse;
        final List<Long> heldTags = new ArrayList<>();
        final List<LoanCompletion> heldCompletions = new ArrayList<>();
        final List<Long> released = new ArrayList<>();
        final List<Long> cancelled = new ArrayList<>();
        private long nextLoan = 100;

        @Override
        public DeviceInfo info() {
            return INFO;
        }

        @Override
        public void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                           IoCompletion completion) {
            completion.onComplete(tag, IoStatus.OK);
        }

        @Override
        public boolean trySubmitLend(long offset, int length, int flags, long tag, LoanCompletion completion) {
            if (refuse) {
                return false;
            }
            if (hold) {
                heldTags.add(tag);
                heldCompletions.add(completion);
                return true;
            }
            completion.onLent(tag, IoStatus.OK, data, (int) offset, nextLoan++);
            return true;
        }

        /** Answers held request {@code i}: OK lends {@code data[at...)} as loan 100 + i, an error lends nothing. */
        void answer(int i, int status, int at) {
            heldCompletions.get(i).onLent(heldTags.get(i), status, status == IoStatus.OK ? data : null, at,
                    status == IoStatus.OK ? 100 + i : 0L);
        }

        @Override
        public void releaseLoan(long loan) {
            released.add(loan);
        }

        @Override
        public void cancelLend(long tag, LoanCompletion completion) {
            cancelled.add(tag);
        }

        @Override
        public void close() {
        }
    }

    /** Lent completions by caller tag: {status, at, loan handle}, and the base each one lent. */
    static final class Loans implements io.weft.core.io.ReadLending.LoanCompletion {
        final Map<Long, long[]> got = new HashMap<>();
        final Map<Long, ByteBuffer> bases = new HashMap<>();

        @Override
        public synchronized void onLent(long tag, int status, ByteBuffer base, int at, long loan) {
            if (got.put(tag, new long[] {status, at, loan}) != null) {
                throw new AssertionError("completed twice: " + tag);
            }
            bases.put(tag, base);
        }
    }

    @Test
    void lendingReadsAreForwardedAndEachLoanGoesBackToThePathOnce() {
        QueueingBlockDevice dev = device(2);
        LendingPath path = new LendingPath();
        dev.connect(path, INFO);
        Loans loans = new Loans();
        assertTrue(dev.trySubmitLend(8192, 4096, 0, 1, loans));
        assertTrue(dev.trySubmitLend(4096, 4096, 0, 2, loans));
        assertEquals(IoStatus.OK, (int) loans.got.get(1L)[0]);
        assertTrue(loans.bases.get(1L) == path.data, "the path's own bytes are handed up, not a copy");
        assertEquals(8192, loans.got.get(1L)[1]);
        assertEquals(0, dev.inFlight());
        // Both slots hold a loan: nothing more fits until one goes back.
        assertFalse(dev.trySubmitLend(0, 4096, 0, 3, loans), "no free slot: the caller copies instead");
        Completions plain = new Completions();
        dev.submit(IoOp.READ, 0, 4096, 0, ByteBuffer.allocate(4096), 4, plain);
        assertEquals(IoStatus.ENOMEM, plain.of(4));
        assertTrue(path.released.isEmpty(), "no loan ends before the caller releases it");

        dev.releaseLoan(loans.got.get(1L)[2]);
        dev.releaseLoan(loans.got.get(1L)[2]); // a second release of the same loan: no effect
        assertEquals(List.of(100L), path.released);
        assertTrue(dev.trySubmitLend(0, 4096, 0, 5, loans), "the released loan's slot is free again");
        dev.releaseLoan(loans.got.get(2L)[2]);
        dev.releaseLoan(loans.got.get(5L)[2]);
        assertEquals(List.of(100L, 101L, 102L), path.released);
        assertEquals(3, dev.stats().snapshot().op(IoOp.READ).ops(), "lent READs are counted like any READ");
    }

    @Test
    void lendingIsRefusedWithoutALendingPathAndNothingIsSubmitted() {
        QueueingBlockDevice dev = device(2);
        Loans loans = new Loans();
        assertFalse(dev.trySubmitLend(0, 4096, 0, 1, loans), "no path");
        dev.connect(new ArrayPath(), INFO);
        assertFalse(dev.trySubmitLend(0, 4096, 0, 2, loans), "a path that does not lend");
        LendingPath refusing = new LendingPath();
        refusing.refuse = true;
        dev.connect(refusing, INFO);
        assertFalse(dev.trySubmitLend(0, 4096, 0, 3, loans), "a path that refuses this READ");
        assertFalse(dev.trySubmitLend(512, 100, 0, 4, loans), "an invalid READ takes the ordinary path");
        assertTrue(loans.got.isEmpty());
        assertEquals(0, dev.inFlight());
        // Every slot is still free.
        Completions plain = new Completions();
        ArrayPath holding = new ArrayPath();
        holding.hold = true;
        dev.connect(holding, INFO);
        dev.submit(IoOp.FLUSH, 0, 0, 0, null, 10, plain);
        dev.submit(IoOp.FLUSH, 0, 0, 0, null, 11, plain);
        assertEquals(2, holding.held.size());
    }

    @Test
    void aCancelledOrForceClosedLendingReadCompletesFromThePathsAnswer() {
        QueueingBlockDevice dev = device(4);
        LendingPath path = new LendingPath();
        path.hold = true;
        dev.connect(path, INFO);
        Loans loans = new Loans();
        assertTrue(dev.trySubmitLend(0, 4096, 0, 1, loans));
        assertTrue(dev.trySubmitLend(4096, 4096, 0, 2, loans));
        dev.cancelLend(1, loans);
        assertEquals(1, path.cancelled.size(), "the cancel reaches the path as a lending cancel");
        assertTrue(loans.got.isEmpty(), "nothing completes before the path answers");
        path.answer(0, IoStatus.ECANCELED, 0);
        assertEquals(IoStatus.ECANCELED, (int) loans.got.get(1L)[0]);
        assertTrue(loans.bases.get(1L) == null);

        dev.forceClose();
        assertEquals(2, path.cancelled.size());
        // The path had finished first: its real status and its loan reach the caller, who releases it.
        path.answer(1, IoStatus.OK, 4096);
        assertEquals(IoStatus.OK, (int) loans.got.get(2L)[0]);
        dev.releaseLoan(loans.got.get(2L)[2]);
        assertEquals(List.of(101L), path.released);
        assertEquals(0, dev.inFlight());
    }

    @Test
    void aLendingReadQueuedAfterShutdownFailsWhenTheNextPathDoesNotLend() {
        QueueingBlockDevice dev = device(4);
        LendingPath path = new LendingPath();
        path.hold = true;
        dev.connect(path, INFO);
        Loans loans = new Loans();
        assertTrue(dev.trySubmitLend(0, 4096, 0, 1, loans));
        assertTrue(dev.trySubmitLend(4096, 4096, 0, 2, loans));
        dev.disconnect();
        path.answer(0, IoStatus.ESHUTDOWN, 0);
        path.answer(1, IoStatus.ESHUTDOWN, 0);
        assertTrue(loans.got.isEmpty(), "queued again for the next path");
        LendingPath next = new LendingPath();
        dev.connect(next, INFO);
        assertEquals(IoStatus.OK, (int) loans.got.get(1L)[0], "a lending next path takes them");
        assertEquals(4096, loans.got.get(2L)[1]);

        assertTrue(dev.trySubmitLend(0, 4096, 0, 3, loans));
        dev.connect(path, INFO); // hold again
        assertTrue(dev.trySubmitLend(0, 4096, 0, 4, loans));
        dev.disconnect();
        path.answer(2, IoStatus.ESHUTDOWN, 0);
        dev.connect(new ArrayPath(), INFO);
        assertEquals(IoStatus.EIO, (int) loans.got.get(4L)[0], "no buffer to copy into: the READ fails");
    }
}
