package io.weft.core.stats;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.DeviceInfo;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLongArray;
import org.junit.jupiter.api.Test;

class StatsBlockDeviceTest {
    private static final DeviceInfo INFO =
            new DeviceInfo(1 << 20, 512, 4096, 1 << 20, false, true, true, true, true, true, false, true);

    /** A device that holds requests until the test completes them (out of order if it likes). */
    private static final class HeldDevice implements BlockDevice {
        final ArrayDeque<long[]> held = new ArrayDeque<>();
        final List<IoCompletion> completions = new ArrayList<>();

        @Override
        public DeviceInfo info() {
            return INFO;
        }

        @Override
        public void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                           IoCompletion completion) {
            held.add(new long[] {tag});
            completions.add(completion);
        }

        void completeLast(int status) {
            long tag = held.removeLast()[0];
            completions.remove(completions.size() - 1).onComplete(tag, status);
        }

        @Override
        public void close() {
        }
    }

    /** A device that completes every request at once with OK. */
    private static final class InlineDevice implements BlockDevice {
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
        public void close() {
        }
    }

    @Test
    void measuresInFlightAndHandsBackTheCallersTags() {
        HeldDevice held = new HeldDevice();
        IoStats stats = new IoStats("vol0");
        StatsBlockDevice device = new StatsBlockDevice(held, stats, 8);
        List<String> completed = new ArrayList<>();
        IoCompletion caller = (tag, status) -> completed.add(tag + "=" + IoStatus.name(status));

        device.submit(IoOp.WRITE, 0, 4096, 0, ByteBuffer.allocate(4096), 1001, caller);
        device.submit(IoOp.READ, 0, 512, 0, ByteBuffer.allocate(512), 1002, caller);
        device.submit(IoOp.FLUSH, 0, 0, 0, null, 1003, caller);
        assertEquals(3, stats.snapshot().inFlight());

        held.completeLast(IoStatus.OK);
        held.completeLast(IoStatus.EIO);
        held.completeLast(IoStatus.OK);
        assertEquals(List.of("1003=OK", "1002=EIO", "1001=OK"), completed);

        IoStatsSnapshot s = stats.snapshot();
        assertEquals(0, s.inFlight());
        assertEquals(1, s.op(IoOp.WRITE).ops());
        assertEquals(4096, s.op(IoOp.WRITE).bytes());
        assertEquals(1, s.op(IoOp.READ).errors());
        assertEquals(0, s.op(IoOp.READ).bytes());
        assertEquals(1, s.op(IoOp.FLUSH).interval().count());
        assertEquals(0, s.untracked());
        assertSame(INFO, device.info());
    }

    @Test
    void passesRequestsThroughUntrackedWhenEverySlotIsBusy() {
        HeldDevice held = new HeldDevice();
        IoStats stats = new IoStats("vol0");
        StatsBlockDevice device = new StatsBlockDevice(held, stats, 2);
        List<Long> completed = new ArrayList<>();
        IoCompletion caller = (tag, status) -> completed.add(tag);
        for (long tag = 1; tag <= 5; tag++) {
            device.submit(IoOp.READ, 0, 512, 0, ByteBuffer.allocate(512), tag, caller);
        }
        assertEquals(2, stats.snapshot().inFlight());
        for (int i = 0; i < 5; i++) {
            held.completeLast(IoStatus.OK);
        }
        assertEquals(List.of(5L, 4L, 3L, 2L, 1L), completed);
        IoStatsSnapshot s = stats.snapshot();
        assertEquals(3, s.untracked());
        assertEquals(5, s.op(IoOp.READ).ops());
        assertEquals(2, s.op(IoOp.READ).total().count());
        // The slots came back: the next requests are tracked again.
        device.submit(IoOp.READ, 0, 512, 0, ByteBuffer.allocate(512), 6, caller);
        assertEquals(1, stats.snapshot().inFlight());
    }

    @Test
    void slotsSurviveManyThreadsCompletingOutOfOrder() throws Exception {
        int threads = 4;
        int perThread = 50_000;
        IoStats stats = new IoStats("vol0");
        StatsBlockDevice device = new StatsBlockDevice(new InlineDevice(), stats, 3);
        AtomicLongArray completedPerThread = new AtomicLongArray(threads);
        CountDownLatch done = new CountDownLatch(threads);
        List<Thread> workers = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            int id = t;
            Thread worker = new Thread(() -> {
                IoCompletion check = (tag, status) -> {
                    if (tag >>> 32 == id && status == IoStatus.OK) {
                        completedPerThread.incrementAndGet(id);
                    }
                };
                for (int i = 0; i < perThread; i++) {
                    device.submit(IoOp.READ, 0, 512, 0, null, ((long) id << 32) | i, check);
                }
                done.countDown();
            });
            workers.add(worker);
            worker.start();
        }
        assertTrue(done.await(60, TimeUnit.SECONDS));
        for (int t = 0; t < threads; t++) {
            assertEquals(perThread, completedPerThread.get(t), "thread " + t + " got its own tags back");
        }
        IoStatsSnapshot s = stats.snapshot();
        assertEquals((long) threads * perThread, s.op(IoOp.READ).ops());
        assertEquals(s.op(IoOp.READ).ops(), s.op(IoOp.READ).total().count() + s.untracked());
        assertEquals(0, s.inFlight());
    }

    @Test
    void theRecordingPathAllocatesNothing() {
        com.sun.management.ThreadMXBean threadBean =
                (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        IoStats stats = new IoStats("vol0");
        StatsBlockDevice device = new StatsBlockDevice(new InlineDevice(), stats, 16);
        IoCompletion sink = (tag, status) -> { };
        ByteBuffer buffer = ByteBuffer.allocate(4096);
        for (int i = 0; i < 200_000; i++) { // warm up: JIT, LongAdder cells
            device.submit(IoOp.WRITE, 0, 4096, 0, buffer, i, sink);
        }
        long tid = Thread.currentThread().getId();
        long before = threadBean.getThreadAllocatedBytes(tid);
        for (int i = 0; i < 100_000; i++) {
            device.submit(IoOp.WRITE, 0, 4096, 0, buffer, i, sink);
        }
        long allocated = threadBean.getThreadAllocatedBytes(tid) - before;
        // A single object per request would be >= 1.6 MB; allow a little for the measurement itself.
        assertTrue(allocated < 64 * 1024, "allocated " + allocated + " bytes for 100k requests");
        assertEquals(300_000, stats.snapshot().op(IoOp.WRITE).ops());
    }
}
