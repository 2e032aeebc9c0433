package io.weft.core.io;

import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class SplittingBlockDeviceTest {
    private static final int INNER_MAX = 128 << 10;
    private static final long SIZE = 64L << 20;
    private static final DeviceInfo INNER = new DeviceInfo(SIZE, 512, 4096, INNER_MAX, false, true, true, true, true,
            false, false, true);
    private static final Duration WAIT = Duration.ofSeconds(20);

    private final List<ExecutorService> executors = new ArrayList<>();

    @AfterEach
    void stopExecutors() {
        executors.forEach(ExecutorService::shutdownNow);
    }

    private ExecutorService pool(int threads) {
        ExecutorService e = Executors.newFixedThreadPool(threads);
        executors.add(e);
        return e;
    }

    /** One submission the fake inner device received. */
    record Part(IoOp op, long offset, int length, int flags, ByteBuffer buffer, int position, int limit, long tag,
                IoCompletion completion) {
        void complete(int status) {
            completion.onComplete(tag, status);
        }
    }

    /** Holds every request until the test completes it; remembers the most ever outstanding. */
    static final class HeldDevice implements BlockDevice {
        volatile DeviceInfo info = INNER;
        final ConcurrentLinkedQueue<Part> held = new ConcurrentLinkedQueue<>();
        final List<Part> all = Collections.synchronizedList(new ArrayList<>());
        final AtomicInteger outstanding = new AtomicInteger();
        final AtomicInteger maxOutstanding = new AtomicInteger();

        @Override
        public DeviceInfo info() {
            return info;
        }

        @Override
        public void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                           IoCompletion completion) {
            int now = outstanding.incrementAndGet();
            maxOutstanding.accumulateAndGet(now, Math::max);
            Part p = new Part(op, offset, length, flags, buffer, buffer == null ? -1 : buffer.position(),
                    buffer == null ? -1 : buffer.limit(), tag, (t, s) -> {
                        outstanding.decrementAndGet();
                        completion.onComplete(t, s);
                    });
            all.add(p);
            held.add(p);
        }

        List<Part> drain() {
            List<Part> out = new ArrayList<>();
            Part p;
            while ((p = held.poll()) != null) {
                out.add(p);
            }
            return out;
        }

        @Override
        public void close() {
        }
    }

    /**
     * Memory-backed device that completes on pool threads in arbitrary order (or inline, at random), copying the
     * payload only when it completes: a part whose buffer view moved meanwhile would corrupt data.
     */
    static final class MemoryDevice implements BlockDevice {
        final ByteBuffer memory = ByteBuffer.allocateDirect((int) SIZE);
        final ExecutorService completions;
        final boolean inlineOnly;

        MemoryDevice(ExecutorService completions) {
            this.completions = completions;
            this.inlineOnly = completions == null;
        }

        @Override
        public DeviceInfo info() {
            return INNER;
        }

        @Override
        public void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                           IoCompletion completion) {
            int status = IoRequests.check(INNER, op, offset, length, flags);
            if (status != IoStatus.OK) {
                completion.onComplete(tag, status);
                return;
            }
            if (inlineOnly || ThreadLocalRandom.current().nextInt(4) == 0) {
                apply(op, offset, length, buffer);
                completion.onComplete(tag, IoStatus.OK);
            } else {
                completions.execute(() -> {
                    apply(op, offset, length, buffer);
                    completion.onComplete(tag, IoStatus.OK);
                });
            }
        }

        private void apply(IoOp op, long offset, int length, ByteBuffer buffer) {
            int at = (int) offset;
            switch (op) {
                case READ -> buffer.put(buffer.position(), memory, at, length);
                case WRITE -> memory.put(at, buffer, buffer.position(), length);
                case WRITE_ZEROES, DISCARD -> {
                    for (int i = 0; i < length; i++) {
                        memory.put(at + i, (byte) 0);
                    }
                }
                default -> { }
            }
        }

        @Override
        public void close() {
        }
    }

    /** Counts the caller's completions and keeps the first status. */
    static final class Caller implements IoCompletion {
        final AtomicInteger calls = new AtomicInteger();
        volatile int status = -1;
        volatile long tag;

        @Override
        public void onComplete(long t, int s) {
            if (calls.incrementAndGet() == 1) {
                tag = t;
                status = s;
            }
        }
    }

    @Test
    void smallRequestsAndFlushPassStraightThrough() {
        HeldDevice inner = new HeldDevice();
        SplittingBlockDevice dev = new SplittingBlockDevice(inner);
        Caller caller = new Caller();
        ByteBuffer buf = ByteBuffer.allocate(INNER_MAX);
        dev.submit(IoOp.READ, 4096, INNER_MAX, 0, buf, 77, caller);
        dev.submit(IoOp.FLUSH, 0, 0, 0, null, 78, caller);
        List<Part> parts = inner.drain();
        assertEquals(2, parts.size());
        assertEquals(77, parts.get(0).tag());
        assertSame(buf, parts.get(0).buffer(), "the caller's own buffer, no view");
        assertEquals(IoOp.FLUSH, parts.get(1).op());
        assertEquals(78, parts.get(1).tag());
        assertEquals(0, dev.splitRequests());
    }

    @Test
    void advertisesTheLargerMaximumAndFollowsTheInnerGeometry() {
        HeldDevice inner = new HeldDevice();
        SplittingBlockDevice dev = new SplittingBlockDevice(inner, 32 << 20, 4, 16);
        DeviceInfo info = dev.info();
        assertEquals(32 << 20, info.maxIoSize());
        assertEquals(new DeviceInfo(SIZE, 512, 4096, 32 << 20, false, true, true, true, true, false, false, true),
                info, "only maxIoSize differs from the inner geometry");
        assertSame(info, dev.info(), "cached while the inner geometry is unchanged");
        inner.info = INNER.withSize(SIZE * 2);
        assertEquals(SIZE * 2, dev.info().size(), "a resize shows through");
        assertEquals(32 << 20, dev.info().maxIoSize());
        inner.info = new DeviceInfo(SIZE, 512, 4096, 64 << 20, false, true, true, true, true, false, false, true);
        assertEquals(64 << 20, dev.info().maxIoSize(), "an inner device that takes more keeps its own limit");
    }

    @Test
    void partsCoverTheRangeExactlyOnPreferredBoundariesAndAllCarryFua() {
        HeldDevice inner = new HeldDevice();
        SplittingBlockDevice dev = new SplittingBlockDevice(inner);
        long offset = 3 * 4096 + 512; // not on a preferred-block boundary
        int length = (1 << 20) + 1536;
        ByteBuffer buf = ByteBuffer.allocateDirect(length + 8192);
        buf.position(1024).limit(1024 + length);
        Caller caller = new Caller();
        dev.submit(IoOp.WRITE, offset, length, IoFlags.FUA, buf, 5, caller);

        List<Part> parts = new ArrayList<>(inner.drain());
        assertEquals(9, parts.size(),
                "512 B into a block + 1 MiB + 1.5 KiB = 8 parts and 2 KiB: a short head, 7 full, tail");
        parts.sort(Comparator.comparingLong(Part::offset));
        long expected = offset;
        for (Part p : parts) {
            assertEquals(expected, p.offset(), "contiguous, no gap and no overlap");
            assertTrue(p.length() > 0 && p.length() <= INNER_MAX, "fits the inner device: " + p.length());
            assertEquals(IoFlags.FUA, p.flags(), "FUA on every part");
            assertEquals(IoOp.WRITE, p.op());
            assertEquals(1024 + (int) (p.offset() - offset), p.position(), "payload view starts at the part's bytes");
            assertEquals(p.length(), p.limit() - p.position(), "payload view is exactly the part");
            if (p != parts.get(0)) {
                assertEquals(0, p.offset() % 4096, "later parts start on a preferred-block boundary");
            }
            expected += p.length();
        }
        assertEquals(offset + length, expected, "the parts end where the request ends");
        assertEquals(1024, buf.position(), "the caller's buffer is left alone");

        // Complete in reverse order from another thread: the caller completes once, after the last part.
        Collections.reverse(parts);
        Thread completer = new Thread(() -> {
            for (int i = 0; i < parts.size() - 1; i++) {
                parts.get(i).complete(IoStatus.OK);
            }
        });
        completer.start();
        await("all but one part completed", WAIT, () -> !completer.isAlive());
        assertEquals(0, caller.calls.get(), "not complete while a part is outstanding");
        parts.get(parts.size() - 1).complete(IoStatus.OK);
        assertEquals(1, caller.calls.get());
        assertEquals(IoStatus.OK, caller.status);
        assertEquals(5, caller.tag);
        assertEquals(0, dev.partsInFlight());
    }

    @Test
    void zeroingAndDiscardAreSplitToo() {
        HeldDevice inner = new HeldDevice();
        SplittingBlockDevice dev = new SplittingBlockDevice(inner);
        Caller zeroes = new Caller();
        Caller discard = new Caller();
        dev.submit(IoOp.WRITE_ZEROES, 0, 4 * INNER_MAX, IoFlags.NO_HOLE, null, 1, zeroes);
        dev.submit(IoOp.DISCARD, 8 * INNER_MAX, 2 * INNER_MAX + 4096, 0, null, 2, discard);
        List<Part> parts = inner.drain();
        assertEquals(4 + 3, parts.size());
        for (Part p : parts) {
            assertTrue(p.buffer() == null && p.length() <= INNER_MAX);
            assertEquals(p.op() == IoOp.WRITE_ZEROES ? IoFlags.NO_HOLE : 0, p.flags());
        }
        parts.forEach(p -> p.complete(IoStatus.OK));
        assertEquals(1, zeroes.calls.get());
        assertEquals(1, discard.calls.get());
        assertEquals(IoStatus.OK, zeroes.status);
    }

    @Test
    void theFirstErrorWinsAndTheCallerIsCompletedOnceAfterEveryPart() throws Exception {
        HeldDevice inner = new HeldDevice();
        SplittingBlockDevice dev = new SplittingBlockDevice(inner);
        Caller caller = new Caller();
        dev.submit(IoOp.READ, 0, 8 * INNER_MAX, 0, ByteBuffer.allocate(8 * INNER_MAX), 9, caller);
        List<Part> parts = inner.drain();
        assertEquals(8, parts.size());
        parts.get(5).complete(IoStatus.EIO); // first error, on this thread
        ExecutorService others = pool(3);
        List<Future<?>> done = new ArrayList<>();
        for (int i = 0; i < parts.size() - 1; i++) {
            if (i == 5) {
                continue;
            }
            Part p = parts.get(i);
            done.add(others.submit(() -> p.complete(p == parts.get(2) ? IoStatus.ENOSPC : IoStatus.OK)));
        }
        for (Future<?> f : done) {
            f.get(20, TimeUnit.SECONDS);
        }
        assertEquals(0, caller.calls.get(), "parts in flight still own the caller's buffer");
        parts.get(7).complete(IoStatus.OK);
        assertEquals(1, caller.calls.get());
        assertEquals(IoStatus.EIO, caller.status, "the first error, not a later one");
    }

    @Test
    void partsAfterAFailedOneAreNotSubmitted() {
        AtomicInteger submitted = new AtomicInteger();
        BlockDevice failing = new BlockDevice() {
            @Override
            public DeviceInfo info() {
                return INNER;
            }

            @Override
            public void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                               IoCompletion completion) {
                submitted.incrementAndGet();
                completion.onComplete(tag, offset == 2L * INNER_MAX ? IoStatus.ENOSPC : IoStatus.OK);
            }

            @Override
            public void close() {
            }
        };
        SplittingBlockDevice dev = new SplittingBlockDevice(failing);
        Caller caller = new Caller();
        dev.submit(IoOp.WRITE, 0, 16 * INNER_MAX, 0, ByteBuffer.allocate(16 * INNER_MAX), 3, caller);
        assertEquals(3, submitted.get(), "stops after the failed third part");
        assertEquals(1, caller.calls.get());
        assertEquals(IoStatus.ENOSPC, caller.status);
        assertEquals(0, dev.partsInFlight());
        // The slot is free again and serves the next request.
        Caller next = new Caller();
        dev.submit(IoOp.WRITE, 4L << 20, 2 * INNER_MAX, 0, ByteBuffer.allocate(2 * INNER_MAX), 4, next);
        assertEquals(IoStatus.OK, next.status);
    }

    @Test
    void invalidSplitRequestsFailWholeAndNeverReachTheDevice() {
        HeldDevice inner = new HeldDevice();
        SplittingBlockDevice dev = new SplittingBlockDevice(inner);
        Caller beyondEnd = new Caller();
        dev.submit(IoOp.WRITE, SIZE - INNER_MAX, 2 * INNER_MAX, 0, ByteBuffer.allocate(2 * INNER_MAX), 1, beyondEnd);
        Caller tooLarge = new Caller();
        dev.submit(IoOp.READ, 0, (32 << 20) + 4096, 0, ByteBuffer.allocate((32 << 20) + 4096), 2, tooLarge);
        Caller shortBuffer = new Caller();
        dev.submit(IoOp.WRITE, 0, 2 * INNER_MAX, 0, ByteBuffer.allocate(INNER_MAX), 3, shortBuffer);
        Caller readOnlyTarget = new Caller();
        dev.submit(IoOp.READ, 0, 2 * INNER_MAX, 0, ByteBuffer.allocate(2 * INNER_MAX).asReadOnlyBuffer(), 4,
                readOnlyTarget);
        assertEquals(IoStatus.EOVERFLOW, beyondEnd.status);
        assertEquals(IoStatus.EOVERFLOW, tooLarge.status);
        assertEquals(IoStatus.EINVAL, shortBuffer.status);
        assertEquals(IoStatus.EINVAL, readOnlyTarget.status);
        assertTrue(inner.drain().isEmpty(), "nothing was partly applied");
    }

    @Test
    void exhaustedSlotsAndPartCreditsMakeTheSubmitterWaitAndNothingFails() throws Exception {
        HeldDevice inner = new HeldDevice();
        SplittingBlockDevice dev = new SplittingBlockDevice(inner, 32 << 20, 1, 2);
        Caller first = new Caller();
        Caller second = new Caller();
        Thread submitter = new Thread(() -> {
            dev.submit(IoOp.WRITE, 0, 3 * INNER_MAX, 0, ByteBuffer.allocate(3 * INNER_MAX), 1, first);
            dev.submit(IoOp.WRITE, 1L << 20, 3 * INNER_MAX, 0, ByteBuffer.allocate(3 * INNER_MAX), 2, second);
        }, "submitter");
        submitter.start();
        await("the submitter waits for a part credit", WAIT, () -> dev.waits() > 0 && inner.held.size() == 2);
        assertTrue(submitter.isAlive(), "waiting, not failing");
        while (first.calls.get() == 0 || second.calls.get() == 0) {
            Part p = inner.held.poll();
            if (p != null) {
                p.complete(IoStatus.OK);
            } else {
                assertTrue(submitter.isAlive() || !inner.held.isEmpty() || first.calls.get() + second.calls.get() > 0,
                        "progress");
                Thread.onSpinWait();
            }
        }
        submitter.join(TimeUnit.SECONDS.toMillis(20));
        assertFalse(submitter.isAlive());
        assertEquals(IoStatus.OK, first.status);
        assertEquals(IoStatus.OK, second.status);
        assertEquals(1, first.calls.get());
        assertEquals(1, second.calls.get());
        assertEquals(2, inner.maxOutstanding.get(), "never more parts than the budget");
        assertEquals(6, inner.all.size());
    }

    @Test
    void aStaleOrForeignPartCompletionIsIgnored() {
        HeldDevice inner = new HeldDevice();
        SplittingBlockDevice dev = new SplittingBlockDevice(inner, 32 << 20, 1, 64);
        Caller first = new Caller();
        dev.submit(IoOp.READ, 0, 2 * INNER_MAX, 0, ByteBuffer.allocate(2 * INNER_MAX), 1, first);
        List<Part> old = inner.drain();
        old.forEach(p -> p.complete(IoStatus.OK));
        assertEquals(1, first.calls.get());

        Caller second = new Caller(); // reuses the only slot, next generation
        dev.submit(IoOp.READ, 0, 2 * INNER_MAX, 0, ByteBuffer.allocate(2 * INNER_MAX), 2, second);
        List<Part> current = inner.drain();
        old.get(0).completion().onComplete(old.get(0).tag(), IoStatus.EIO);
        old.get(1).completion().onComplete(old.get(1).tag() | SplittingBlockDevice.PART_MASK, IoStatus.EIO);
        current.get(0).completion().onComplete(current.get(0).tag() | (5L << SplittingBlockDevice.PART_BITS),
                IoStatus.EIO); // slot 5 does not exist
        assertEquals(3, dev.staleCompletions());
        assertEquals(0, second.calls.get(), "the new request is untouched");
        current.forEach(p -> p.complete(IoStatus.OK));
        assertEquals(IoStatus.OK, second.status);
        assertEquals(1, first.calls.get());
    }

    @Test
    void concurrentSplitIoReadsBackWhatWasWrittenWithCompletionsOutOfOrder() throws Exception {
        MemoryDevice inner = new MemoryDevice(pool(3));
        SplittingBlockDevice dev = new SplittingBlockDevice(inner, 2 << 20, 8, 48);
        int threads = 4;
        int depth = 3;
        long region = SIZE / threads;
        ExecutorService clients = pool(threads);
        List<Future<Integer>> results = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            long base = t * region;
            long seed = 1234 + t;
            results.add(clients.submit(() -> runClient(dev, base, region, depth, seed)));
        }
        int verified = 0;
        for (Future<Integer> f : results) {
            verified += f.get(120, TimeUnit.SECONDS);
        }
        assertTrue(dev.splitRequests() > 100, "most requests were split: " + dev.splitRequests());
        assertEquals(0, dev.partsInFlight());
        assertEquals(0, dev.staleCompletions());
        assertTrue(verified > 0);
    }

    /** Rounds of {@code depth} concurrent writes to disjoint ranges, then reads them back and compares. */
    private static int runClient(BlockDevice dev, long base, long region, int depth, long seed) throws Exception {
        Random random = new Random(seed);
        ByteBuffer[] out = new ByteBuffer[depth];
        ByteBuffer[] in = new ByteBuffer[depth];
        int maxLength = 2 << 20;
        for (int i = 0; i < depth; i++) {
            out[i] = ByteBuffer.allocateDirect(maxLength + 2048);
            in[i] = ByteBuffer.allocateDirect(maxLength + 2048);
        }
        long slice = (region / depth) & ~4095L;
        int verified = 0;
        for (int round = 0; round < 25; round++) {
            long[] offsets = new long[depth];
            int[] lengths = new int[depth];
            for (int i = 0; i < depth; i++) {
                lengths[i] = 512 * (1 + random.nextInt(maxLength / 512));
                long room = slice - lengths[i];
                offsets[i] = base + i * slice + 512L * random.nextInt((int) (room / 512) + 1);
                int position = 512 * random.nextInt(4); // payload not at the buffer's start
                out[i].clear().position(position).limit(position + lengths[i]);
                for (int b = position; b < position + lengths[i]; b += 8) {
                    out[i].putLong(b, random.nextLong());
                }
                in[i].clear().position(2048 - position).limit(2048 - position + lengths[i]);
            }
            submitAll(dev, IoOp.WRITE, offsets, lengths, out);
            submitAll(dev, IoOp.READ, offsets, lengths, in);
            for (int i = 0; i < depth; i++) {
                if (!out[i].equals(in[i])) { // compares the remaining bytes of both
                    fail("data mismatch at " + offsets[i] + " length " + lengths[i]);
                }
                verified++;
            }
        }
        return verified;
    }

    private static void submitAll(BlockDevice dev, IoOp op, long[] offsets, int[] lengths, ByteBuffer[] buffers)
            throws InterruptedException {
        CountDownLatch latch = new CountDownLatch(offsets.length);
        int[] statuses = new int[offsets.length];
        AtomicInteger calls = new AtomicInteger();
        for (int i = 0; i < offsets.length; i++) {
            dev.submit(op, offsets[i], lengths[i], 0, buffers[i], i, (tag, status) -> {
                statuses[(int) tag] = status;
                calls.incrementAndGet();
                latch.countDown();
            });
        }
        assertTrue(latch.await(60, TimeUnit.SECONDS), op + " completed");
        for (int i = 0; i < offsets.length; i++) {
            assertEquals(IoStatus.OK, statuses[i], op + " " + i);
        }
        assertEquals(offsets.length, calls.get(), "each request completed exactly once");
    }

    @Test
    void aSteadyStateSplitRequestAllocatesNothing() {
        var threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        MemoryDevice inner = new MemoryDevice(null);
        SplittingBlockDevice dev = new SplittingBlockDevice(inner);
        ByteBuffer buf = ByteBuffer.allocateDirect(512 << 10);
        Caller caller = new Caller();
        IoCompletion counting = (tag, status) -> caller.calls.incrementAndGet();
        for (int i = 0; i < 10_000; i++) { // warm-up: views built, code compiled
            dev.submit(IoOp.READ, (i % 32) << 20, 512 << 10, 0, buf.clear(), i, counting);
        }
        long tid = Thread.currentThread().getId();
        long before = threads.getThreadAllocatedBytes(tid);
        for (int i = 0; i < 5_000; i++) {
            dev.submit(IoOp.WRITE, (i % 32) << 20, 512 << 10, IoFlags.FUA, buf.clear(), i, counting);
        }
        long allocated = threads.getThreadAllocatedBytes(tid) - before;
        assertEquals(15_000, caller.calls.get());
        assertEquals(1, dev.viewRebuilds(), "one caller buffer, views built once");
        assertNotNull(dev.info());
        // 5,000 requests of 4 parts each; a view or a lambda per part would be about 1 MB.
        assertTrue(allocated < 64 << 10, "allocated " + allocated + " bytes for 20,000 parts");
    }
}
