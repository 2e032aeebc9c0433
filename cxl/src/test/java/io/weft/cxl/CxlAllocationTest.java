package io.weft.cxl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.core.store.StoreBlockDevice;
import io.weft.cxl.layout.RegionGeometry;
import io.weft.cxl.layout.RegionHeader;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import org.agrona.concurrent.AgentInvoker;
import org.junit.jupiter.api.Test;

/**
 * The hot path allocates nothing per request: with the caller driving completions (invoker mode) every client-side
 * step of a request runs on the test thread, and the storage side runs on the handler agent's thread; the JVM counts
 * each thread's allocated bytes exactly. (The bound leaves room for a stray control-path object, not one per IO.)
 */
class CxlAllocationTest {
    @Test
    void clientSubmitAndCompletionAllocateNothingPerRequest() throws Exception {
        com.sun.management.ThreadMXBean threads =
                (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        Path regionPath = TestSupport.shmPath("alloc");
        Path storePath = TestSupport.shmPath("alloc-store");
        try (CxlRegion region = CxlRegion.format(regionPath, RegionGeometry.small(),
                RegionHeader.FLAG_ENTRY_CRC | RegionHeader.FLAG_DATA_CRC);
             CxlHost host = CxlHost.register(region, 1, "n", TestSupport.fastOptions())) {
            StoreBlockDevice store = TestSupport.newStore(storePath, 1 << 20);
            CxlBackend backend = host.createBackend(store, "s",
                    BackendOptions.defaults().withChannels(1).withCrc(true, true));
            CxlBlockDevice dev = host.openBlkdev(backend.id(), new BlkdevOptions(1, true));
            AgentInvoker invoker = dev.invoker();
            ByteBuffer buf = ByteBuffer.allocateDirect(4096);
            long[] done = new long[2];
            IoCompletion completion = (tag, status) -> {
                done[0]++;
                if (status != IoStatus.OK) {
                    done[1]++;
                }
            };
            Runnable oneRound = () -> {
                for (int i = 0; i < 1000; i++) {
                    long target = done[0] + 1;
                    buf.clear();
                    dev.submit((i & 1) == 0 ? IoOp.WRITE : IoOp.READ, (i % 200) * 4096L, 4096, 0, buf, i, completion);
                    while (done[0] < target) {
                        invoker.invoke();
                    }
                }
            };
            for (int warm = 0; warm < 20; warm++) {
                oneRound.run(); // let the JIT settle (thread-local calculators, class init)
            }
            long tid = Thread.currentThread().getId();
            long handlerTid = Thread.getAllStackTraces().keySet().stream()
                    .filter(t -> t.getName().startsWith("cxl-handlers-" + host.slot() + "-")).findFirst().orElseThrow()
                    .getId();
            long before = threads.getThreadAllocatedBytes(tid);
            long handlerBefore = threads.getThreadAllocatedBytes(handlerTid);
            for (int r = 0; r < 10; r++) {
                oneRound.run();
            }
            long allocated = threads.getThreadAllocatedBytes(tid) - before;
            long handlerAllocated = threads.getThreadAllocatedBytes(handlerTid) - handlerBefore;
            assertEquals(0, done[1], "no request failed");
            assertTrue(allocated < 10_000, "10000 requests allocated " + allocated + " bytes on the client thread");
            assertTrue(handlerAllocated < 10_000, "10000 requests allocated " + handlerAllocated
                    + " bytes on the backend handler thread");
            dev.close();
            backend.close();
        } finally {
            TestSupport.deleteQuietly(regionPath, storePath);
        }
    }
}
