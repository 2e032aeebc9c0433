package io.weft.cxl;

import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.core.store.StoreBlockDevice;
import io.weft.cxl.layout.RegionGeometry;
import io.weft.cxl.layout.RegionHeader;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import io.weft.core.io.BlockDevice;
import io.weft.core.io.DeviceInfo;
import io.weft.core.io.IoCompletion;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * Submitter assistance: the submitting thread delivers its own completion after sleeping on the channel's client
 * doorbell. Heartbeats are 20 s, so an idle completion agent sleeps through the test: a completion that arrives on
 * the submitting thread, inside {@code awaitCompletions}, got there because the handler rang the client doorbell.
 */
class SubmitterAssistTest {
    private static final Duration LONG_HEARTBEAT = Duration.ofSeconds(20);

    private static CxlOptions sleepyOptions() {
        return new CxlOptions(LONG_HEARTBEAT, LONG_HEARTBEAT.multipliedBy(3), LONG_HEARTBEAT.multipliedBy(6), 200, 100,
                Duration.ofNanos(1_000), Duration.ofMillis(1), Duration.ZERO);
    }

    @Test
    void loneRequestCompletesOnTheSubmitterWokenByTheClientDoorbell() throws Exception {
        Path regionPath = TestSupport.shmPath("assist");
        Path storePath = TestSupport.shmPath("assist-store");
        try (CxlRegion region = CxlRegion.format(regionPath, RegionGeometry.small(), RegionHeader.FLAG_ENTRY_CRC);
             CxlHost host = CxlHost.register(region, 1, "n", sleepyOptions())) {
            StoreBlockDevice store = TestSupport.newStore(storePath, 1 << 20);
            CxlBackend backend = host.createBackend(store, "s", BackendOptions.defaults().withChannels(1));
            // no polling at all: the submitter goes straight to the doorbell sleep (up to 2 s)
            CxlBlockDevice dev = host.openBlkdev(backend.id(), new BlkdevOptions(1, false, 2_000_000_000L, 0));
            Thread me = Thread.currentThread();
            int rounds = 10;
            int onSubmitter = 0;
            for (int round = 0; round < rounds; round++) {
                ByteBuffer out = ByteBuffer.allocateDirect(4096);
                for (int i = 0; i < 4096; i++) {
                    out.put(i, (byte) (round * 7 + i));
                }
                Thread[] writeThread = new Thread[1];
                AtomicInteger writeStatus = new AtomicInteger(-1);
                dev.submit(IoOp.WRITE, round * 4096L, 4096, 0, out, round, (tag, s) -> {
                    writeThread[0] = Thread.currentThread();
                    writeStatus.set(s);
                });
                dev.awaitCompletions(2_000_000_000L); // what an NBD reader does before it blocks on its socket
                await("write completes", Duration.ofSeconds(10), () -> writeStatus.get() >= 0);
                assertEquals(IoStatus.OK, writeStatus.get());
                ByteBuffer in = ByteBuffer.allocateDirect(4096);
                Thread[] readThread = new Thread[1];
                AtomicInteger readStatus = new AtomicInteger(-1);
                dev.submit(IoOp.READ, round * 4096L, 4096, 0, in, round, (tag, s) -> {
                    readThread[0] = Thread.currentThread();
                    readStatus.set(s);
                });
                dev.awaitCompletions(2_000_000_000L);
                await("read completes", Duration.ofSeconds(10), () -> readStatus.get() >= 0);
                assertEquals(IoStatus.OK, readStatus.get());
                byte[] expected = new byte[4096];
                byte[] actual = new byte[4096];
                out.get(0, expected);
                in.get(0, actual);
                assertArrayEquals(expected, actual, "round " + round);
                onSubmitter += (writeThread[0] == me ? 1 : 0) + (readThread[0] == me ? 1 : 0);
            }
            // The agent may win the consumer role now and then (it runs a duty cycle when it wakes); the doorbell
            // must have delivered the rest.
            assertTrue(onSubmitter >= rounds, onSubmitter + " of " + 2 * rounds + " completions on the submitter");
            dev.close();
            backend.close();
        } finally {
            TestSupport.deleteQuietly(regionPath, storePath);
        }
    }

    /**
     * An NBD reader submits request after request from its socket: submit must never wait for its own completion
     * (that serialised a pipelined connection to one request at a time). The backend's device is held shut, so the
     * request stays in flight; with a one-hour wait allowed, a waiting submit would not return.
     */
    @Test
    void submitReturnsWhileItsRequestIsStillInFlight() throws Exception {
        Path regionPath = TestSupport.shmPath("assist-nowait");
        Path storePath = TestSupport.shmPath("assist-nowait-store");
        try (CxlRegion region = CxlRegion.format(regionPath, RegionGeometry.small(), RegionHeader.FLAG_ENTRY_CRC);
             CxlHost host = CxlHost.register(region, 1, "n", sleepyOptions())) {
            StoreBlockDevice store = TestSupport.newStore(storePath, 1 << 20);
            CountDownLatch gate = new CountDownLatch(1);
            BlockDevice held = new BlockDevice() {
                @Override
                public DeviceInfo info() {
                    return store.info();
                }

                @Override
                public void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                                   IoCompletion completion) {
                    try {
                        gate.await(60, TimeUnit.SECONDS);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                    store.submit(op, offset, length, flags, buffer, tag, completion);
                }

                @Override
                public void close() {
                    store.close();
                }
            };
            CxlBackend backend = host.createBackend(held, "s", BackendOptions.defaults().withChannels(1));
            CxlBlockDevice dev = host.openBlkdev(backend.id(), new BlkdevOptions(1, false, 3_600_000_000_000L, 0));
            AtomicInteger status = new AtomicInteger(-1);
            CountDownLatch submitted = new CountDownLatch(1);
            Thread submitter = new Thread(() -> {
                dev.submit(IoOp.READ, 0, 4096, 0, ByteBuffer.allocateDirect(4096), 1, (tag, s) -> status.set(s));
                submitted.countDown();
            }, "submitter");
            submitter.start();
            assertTrue(submitted.await(30, TimeUnit.SECONDS), "submit waited for its own completion");
            assertEquals(-1, status.get(), "the request was still held by the backend's device");
            gate.countDown();
            await("the held request completes", Duration.ofSeconds(30), () -> status.get() >= 0);
            assertEquals(IoStatus.OK, status.get());
            submitter.join(10_000);
            dev.close();
            backend.close();
        } finally {
            TestSupport.deleteQuietly(regionPath, storePath);
        }
    }

    @Test
    void concurrentSubmittersEachGetEveryCompletionExactlyOnce() throws Exception {
        Path regionPath = TestSupport.shmPath("assist-many");
        Path storePath = TestSupport.shmPath("assist-many-store");
        try (CxlRegion region = CxlRegion.format(regionPath, RegionGeometry.small(), RegionHeader.FLAG_ENTRY_CRC);
             CxlHost host = CxlHost.register(region, 1, "n", CxlOptions.defaults())) {
            StoreBlockDevice store = TestSupport.newStore(storePath, 1 << 20);
            CxlBackend backend = host.createBackend(store, "s", BackendOptions.defaults().withChannels(1));
            CxlBlockDevice dev = host.openBlkdev(backend.id(), BlkdevOptions.submitterAssisted());
            int threads = 4;
            int perThread = 500;
            ConcurrentLinkedQueue<Long> completed = new ConcurrentLinkedQueue<>();
            AtomicInteger failed = new AtomicInteger();
            Thread[] submitters = new Thread[threads];
            for (int t = 0; t < threads; t++) {
                int id = t;
                submitters[t] = new Thread(() -> {
                    ByteBuffer buf = ByteBuffer.allocateDirect(4096);
                    AtomicInteger outstanding = new AtomicInteger();
                    for (int i = 0; i < perThread; i++) {
                        long tag = ((long) id << 32) | i;
                        outstanding.incrementAndGet();
                        dev.submit(IoOp.READ, (i % 64) * 4096L, 4096, 0, buf.duplicate().clear(), tag, (tg, s) -> {
                            if (s != IoStatus.OK) {
                                failed.incrementAndGet();
                            }
                            completed.add(tg);
                            outstanding.decrementAndGet();
                        });
                        while (outstanding.get() > 4) {
                            Thread.onSpinWait();
                        }
                    }
                }, "submitter-" + t);
                submitters[t].start();
            }
            await("every request completes", Duration.ofSeconds(60),
                    () -> completed.size() >= threads * perThread);
            for (Thread t : submitters) {
                t.join(10_000);
            }
            assertEquals(0, failed.get());
            assertEquals(threads * perThread, completed.size());
            assertEquals(threads * perThread, completed.stream().distinct().count(), "no completion delivered twice");
            dev.close();
            backend.close();
        } finally {
            TestSupport.deleteQuietly(regionPath, storePath);
        }
    }
}
