package io.weft.cxl;

import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.DeviceInfo;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoFlags;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.core.store.StoreBlockDevice;
import io.weft.cxl.layout.RegionGeometry;
import io.weft.cxl.layout.RegionHeader;
import io.weft.testkit.ManuallyCompletedBlockDevice;
import io.weft.testkit.RecordingBlockDevice;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Backend and blkdev in one JVM over a real shared mapping: the ring protocol end to end. */
class InProcessChannelTest {
    private Path regionPath;
    private Path storePath;
    private CxlRegion region;
    private CxlHost host;

    @BeforeEach
    void setUp() throws Exception {
        regionPath = TestSupport.shmPath("inproc");
        storePath = TestSupport.shmPath("inproc-store");
        region = CxlRegion.format(regionPath, RegionGeometry.small(),
                RegionHeader.FLAG_ENTRY_CRC | RegionHeader.FLAG_DATA_CRC);
        host = CxlHost.register(region, 1, "node-1", TestSupport.fastOptions());
    }

    @AfterEach
    void tearDown() {
        if (region != null) {
            region.close(); // also closes the host
        }
        TestSupport.deleteQuietly(regionPath, storePath);
    }

    @Test
    void verifiedRandomIoFromSeveralThreadsWrapsTheRingsManyTimes() throws Exception {
        StoreBlockDevice store = TestSupport.newStore(storePath, 8L << 20);
        CxlBackend backend = host.createBackend(store, storePath.toString(),
                BackendOptions.defaults().withChannels(3).withCrc(true, true));
        CxlBlockDevice dev = host.openBlkdev(backend.id(), BlkdevOptions.defaults());
        assertEquals(3, dev.queueCount());
        assertEquals(store.info().size(), dev.info().size());
        int threads = 4;
        int blocksPerThread = 64;
        List<Throwable> errors = new ArrayList<>();
        List<Thread> workers = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            int first = t * blocksPerThread;
            Thread w = new Thread(() -> {
                try {
                    Random rnd = new Random(first);
                    long[] version = new long[blocksPerThread];
                    ByteBuffer buf = ByteBuffer.allocateDirect(Pattern.BLOCK);
                    for (int i = 0; i < 400; i++) {
                        int b = rnd.nextInt(blocksPerThread);
                        long block = first + b;
                        if (rnd.nextBoolean()) {
                            version[b]++;
                            Pattern.fill(buf, 0, block, version[b]);
                            buf.clear();
                            assertEquals(IoStatus.OK, SyncIo.run(dev, IoOp.WRITE, block * Pattern.BLOCK,
                                    Pattern.BLOCK, rnd.nextInt(8) == 0 ? IoFlags.FUA : 0, buf));
                        } else {
                            buf.clear();
                            for (int k = 0; k < Pattern.BLOCK; k += 8) {
                                buf.putLong(k, -1L);
                            }
                            assertEquals(IoStatus.OK, SyncIo.run(dev, IoOp.READ, block * Pattern.BLOCK,
                                    Pattern.BLOCK, 0, buf));
                            assertEquals(version[b], Pattern.versionOf(buf, 0, block), "block " + block);
                        }
                    }
                    assertEquals(IoStatus.OK, SyncIo.run(dev, IoOp.FLUSH, 0, 0, 0, null));
                } catch (Throwable e) {
                    synchronized (errors) {
                        errors.add(e);
                    }
                }
            });
            workers.add(w);
            w.start();
        }
        for (Thread w : workers) {
            w.join(60_000);
        }
        assertTrue(errors.isEmpty(), () -> "worker failures: " + errors);
        long served = 0;
        for (int c = 0; c < 3; c++) {
            served += backend.served(c);
        }
        assertTrue(served >= threads * 400, "backend served " + served);
        assertEquals(0, dev.inFlight());
        dev.close();
        backend.close();
    }

    @Test
    void deepQueueAsyncSubmissionsAllComplete() throws Exception {
        StoreBlockDevice store = TestSupport.newStore(storePath, 4L << 20);
        CxlBackend backend = host.createBackend(store, "s", BackendOptions.defaults().withChannels(1));
        CxlBlockDevice dev = host.openBlkdev(backend.id(), BlkdevOptions.defaults());
        int depth = 200; // more than the ring depth (32): producers must wait for free slots
        ByteBuffer[] bufs = new ByteBuffer[depth];
        CountDownLatch done = new CountDownLatch(depth);
        AtomicInteger failures = new AtomicInteger();
        IoCompletion completion = (tag, status) -> {
            if (status != IoStatus.OK) {
                failures.incrementAndGet();
            }
            done.countDown();
        };
        for (int i = 0; i < depth; i++) {
            bufs[i] = ByteBuffer.allocateDirect(Pattern.BLOCK);
            Pattern.fill(bufs[i], 0, i, 7);
            dev.submit(IoOp.WRITE, (long) i * Pattern.BLOCK, Pattern.BLOCK, 0, bufs[i], i, completion);
        }
        assertTrue(done.await(30, TimeUnit.SECONDS));
        assertEquals(0, failures.get());
        ByteBuffer readBack = ByteBuffer.allocateDirect(Pattern.BLOCK);
        for (int i = 0; i < depth; i += 17) {
            readBack.clear();
            assertEquals(IoStatus.OK, SyncIo.run(dev, IoOp.READ, (long) i * Pattern.BLOCK, Pattern.BLOCK, 0, readBack));
            assertEquals(7, Pattern.versionOf(readBack, 0, i));
        }
        dev.close();
        backend.close();
    }

    @Test
    void flushAndFuaReachTheBackendDevice() throws Exception {
        StoreBlockDevice store = TestSupport.newStore(storePath, 1L << 20);
        RecordingBlockDevice recording = new RecordingBlockDevice(store);
        CxlBackend backend = host.createBackend(recording, "s", BackendOptions.defaults().withChannels(1));
        CxlBlockDevice dev = host.openBlkdev(backend.id(), BlkdevOptions.defaults());
        assertTrue(dev.info().canFlush());
        assertTrue(dev.info().canFua());
        ByteBuffer buf = ByteBuffer.allocateDirect(4096);
        assertEquals(IoStatus.OK, SyncIo.run(dev, IoOp.WRITE, 8192, 4096, IoFlags.FUA, buf));
        assertEquals(IoStatus.OK, SyncIo.run(dev, IoOp.FLUSH, 0, 0, 0, null));
        assertEquals(IoStatus.OK, SyncIo.run(dev, IoOp.WRITE_ZEROES, 0, 8192, IoFlags.NO_HOLE, null));
        assertEquals(List.of("WRITE@8192+4096/1", "FLUSH@0+0/0", "WRITE_ZEROES@0+8192/2"), recording.requests());
        // Requests the client can judge itself never reach the channel.
        assertEquals(IoStatus.EOVERFLOW, SyncIo.run(dev, IoOp.READ, 1L << 20, 4096, 0, buf));
        assertEquals(IoStatus.EINVAL, SyncIo.run(dev, IoOp.READ, 100, 4096, 0, buf));
        assertEquals(3, recording.requests().size());
        dev.close();
        backend.close();
    }

    @Test
    void closingTheBackendFailsInFlightAndNewRequestsWithShutdown() throws Exception {
        ManuallyCompletedBlockDevice holding = new ManuallyCompletedBlockDevice(
                new DeviceInfo(1 << 20, 512, 4096, 1 << 20, false, true, true,
                false, false, false, false, true));
        CxlBackend backend = host.createBackend(holding, "hold", BackendOptions.defaults().withChannels(1));
        CxlBlockDevice dev = host.openBlkdev(backend.id(), BlkdevOptions.defaults());
        ConcurrentLinkedQueue<Integer> statuses = new ConcurrentLinkedQueue<>();
        dev.submit(IoOp.READ, 0, 4096, 0, ByteBuffer.allocateDirect(4096), 1, (t, s) -> statuses.add(s));
        await("request held", java.time.Duration.ofSeconds(10), () -> holding.held() == 1);
        backend.close();
        await("in-flight failed", java.time.Duration.ofSeconds(10), () -> statuses.size() == 1);
        assertEquals(IoStatus.ESHUTDOWN, statuses.peek());
        assertEquals(IoStatus.ESHUTDOWN, SyncIo.run(dev, IoOp.READ, 0, 4096, 0, ByteBuffer.allocateDirect(4096)));
        dev.close();
    }
}
