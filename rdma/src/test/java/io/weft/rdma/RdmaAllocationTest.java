package io.weft.rdma;

import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.core.store.FileBackingStore;
import io.weft.core.store.StoreBlockDevice;
import io.weft.rdma.client.PathSpec;
import io.weft.rdma.client.RdmaClientConfig;
import io.weft.rdma.client.RdmaSession;
import io.weft.rdma.server.RdmaServer;
import io.weft.rdma.server.RdmaServerConfig;
import io.weft.rdma.verbs.soft.SoftwareProvider;
import java.lang.management.ManagementFactory;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The data path allocates nothing per IO: after warm-up, the client queue agent and the storage IO agent allocate
 * (almost) no bytes over tens of thousands of reads and writes. Measured with the JVM's per-thread allocation
 * counters, so it checks the real threads rather than a model.
 */
class RdmaAllocationTest {
    private static final int BLOCK = 4096;
    private static final int DEPTH = 8;

    @TempDir
    Path dir;

    /** A request slot that resubmits from its completion until the budget is spent; allocates nothing itself. */
    private static final class Loop implements IoCompletion {
        final BlockDevice device;
        final AtomicLong budget;
        final AtomicInteger idle;
        final AtomicLong errors;
        final ByteBuffer buffer = ByteBuffer.allocateDirect(BLOCK);
        long state = 12345;

        Loop(BlockDevice device, AtomicLong budget, AtomicInteger idle, AtomicLong errors) {
            this.device = device;
            this.budget = budget;
            this.idle = idle;
            this.errors = errors;
        }

        void next() {
            if (budget.decrementAndGet() < 0) {
                idle.incrementAndGet();
                return;
            }
            state = state * 6364136223846793005L + 1442695040888963407L;
            IoOp op = (state & 1) == 0 ? IoOp.READ : IoOp.WRITE;
            long offset = ((state >>> 8) & 1023) * BLOCK;
            buffer.clear();
            device.submit(op, offset, BLOCK, 0, buffer, 0, this);
        }

        @Override
        public void onComplete(long tag, int status) {
            if (status != IoStatus.OK) {
                errors.incrementAndGet();
            }
            next();
        }
    }

    private static void run(BlockDevice device, long ios, AtomicLong errors) throws InterruptedException {
        AtomicLong budget = new AtomicLong(ios);
        AtomicInteger idle = new AtomicInteger();
        Loop[] loops = new Loop[DEPTH];
        for (int i = 0; i < DEPTH; i++) {
            loops[i] = new Loop(device, budget, idle, errors);
        }
        for (Loop l : loops) {
            l.next();
        }
        await(ios + " IOs", Duration.ofSeconds(120), () -> idle.get() == DEPTH);
    }

    private static long allocatedByAgents(com.sun.management.ThreadMXBean threads) {
        long total = 0;
        for (Thread t : Thread.getAllStackTraces().keySet()) {
            String n = t.getName();
            if (n.startsWith("weft-rdma-client-alloc-q") || n.startsWith("weft-rdma-storage-io-")) {
                total += threads.getThreadAllocatedBytes(t.getId());
            }
        }
        return total;
    }

    @Test
    void agentsAllocateNothingPerIo() throws Exception {
        com.sun.management.ThreadMXBean threads =
                (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        assertTrue(threads.isThreadAllocatedMemorySupported());
        threads.setThreadAllocatedMemoryEnabled(true);
        try (SoftwareProvider provider = new SoftwareProvider();
             StoreBlockDevice store = new StoreBlockDevice(FileBackingStore.createSparse(dir.resolve("d"), 8 << 20));
             RdmaServer server = RdmaServer.start(provider, RdmaServerConfig.DEFAULTS, TestGrants.served("vol0", store),
                     List.of(new InetSocketAddress("127.0.0.1", 0)));
             RdmaSession session = RdmaSession.open(provider, "alloc", "vol0", TestGrants.GRANT,
                     List.of(PathSpec.to(server.listenAddresses().get(0))),
                     RdmaClientConfig.DEFAULTS.withQueueDepth(16))) {
            AtomicLong errors = new AtomicLong();
            run(session.device(), 50_000, errors); // warm-up: JIT, lazily created JDK and Agrona internals
            long before = allocatedByAgents(threads);
            long sleepsBefore = SoftwareProvider.selectorSleeps();
            int ios = 50_000;
            run(session.device(), ios, errors);
            long allocated = allocatedByAgents(threads) - before;
            long sleeps = SoftwareProvider.selectorSleeps() - sleepsBefore;
            assertEquals(0, errors.get());
            System.out.println("agents allocated " + allocated + " bytes over " + ios + " IOs and " + sleeps
                    + " selector sleeps");
            // Allowed: 64 KiB of one-off allocation (late JIT compilation, lazily created JDK internals, heartbeats)
            // plus what the JDK's epoll selector costs per wake-up (it boxes a ready descriptor above 127: one IO
            // connection per agent here, 16 bytes). One object of ours per IO (>= 16 x ios) fails.
            long budget = 64 * 1024 + 16 * sleeps;
            assertTrue(allocated < budget, () -> "agents allocated " + allocated + " bytes over " + ios + " IOs and "
                    + sleeps + " selector sleeps (budget " + budget + ")");
            assertTrue(sleeps < ios / 2, () -> "agents slept " + sleeps + " times: too often for this test to tell a"
                    + " per-IO allocation from the selector's");
        }
    }
}
