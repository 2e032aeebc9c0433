package io.weft.cxl;

import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.core.process.ChildJvm;
import io.weft.core.store.StoreBlockDevice;
import io.weft.cxl.CxlRegion.Table;
import io.weft.cxl.layout.RegionGeometry;
import io.weft.cxl.layout.RegionHeader;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Backend and blkdev in different JVMs sharing a /dev/shm region: verified IO, kill -9 of either side, replay. */
class TwoJvmIT {
    private static final long STORE_BYTES = 16L << 20;
    private static final Duration START = Duration.ofSeconds(60);

    private Path regionPath;
    private Path storePath;
    private CxlRegion region;
    private CxlHost host;

    @BeforeEach
    void setUp() throws Exception {
        regionPath = TestSupport.shmPath("2jvm");
        storePath = TestSupport.shmPath("2jvm-store");
        region = CxlRegion.format(regionPath, RegionGeometry.small(), RegionHeader.FLAG_ENTRY_CRC);
        host = CxlHost.register(region, 1, "test-jvm", TestSupport.fastOptions());
    }

    @AfterEach
    void tearDown() {
        if (region != null) {
            region.close(); // also closes the host
        }
        TestSupport.deleteQuietly(regionPath, storePath);
    }

    /**
     * A CXL child JVM ({@link BackendMain}, {@link ClientMain}) on this test's class path, with a small serial-GC
     * heap; {@code -Dweft.childJvmArgs} adds JVM options (e.g. JFR flags for a benchmark profile).
     */
    static ChildJvm startChild(Class<?> main, String... args) throws java.io.IOException {
        return ChildJvm.builder(main).jvmOptions("-Xmx256m", "-XX:+UseSerialGC")
                .jvmOptions(ChildJvm.splitOptions(System.getProperty("weft.childJvmArgs"))).args(args).start();
    }

    private ChildJvm startBackend(int channels, String mode, boolean dataCrc, boolean slow) throws Exception {
        return startChild(BackendMain.class, regionPath.toString(), "2", storePath.toString(),
                Long.toString(STORE_BYTES), Integer.toString(channels), mode, dataCrc ? "DATA_CRC" : "NO_DATA_CRC",
                slow ? "SLOW" : "FAST");
    }

    private static int backendIdOf(String readyLine) {
        return Integer.parseInt(readyLine.replaceAll(".*backend=(\\d+).*", "$1"));
    }

    @Test
    void manyChannelsCarryVerifiedIoBetweenTwoJvms() throws Exception {
        try (ChildJvm backend = startBackend(16, "CREATE", true, false)) {
            int id = backendIdOf(backend.awaitLine("READY", START));
            CxlBlockDevice dev = host.openBlkdev(id, BlkdevOptions.defaults());
            assertEquals(16, dev.queueCount());
            Workload w = new Workload(dev, 16, 32).start();
            await("4000 verified ops", Duration.ofSeconds(120), () -> w.ops.get() >= 4000
                    || !w.errors.isEmpty());
            w.stopAndJoin();
            assertTrue(w.errors.isEmpty(), () -> "errors: " + w.errors);
            assertEquals(IoStatus.OK, SyncIo.run(dev, IoOp.FLUSH, 0, 0, 0, null));
            assertEquals(List.of(), w.verifyAll(dev));
            RegionStatus status = host.status();
            assertEquals(16, status.channels().size());
            assertTrue(status.channels().stream().noneMatch(RegionStatus.Channel::fenced), status::render);
            assertTrue(status.channels().stream().allMatch(c -> c.completionTail() > 0), status::render);
            dev.close();
            backend.send("stop");
            assertEquals(0, backend.awaitExit(START), backend::output);
        }
        // The store file written by the other JVM holds the data: check it directly, without the transport.
        try (StoreBlockDevice local = TestSupport.newStore(storePath, STORE_BYTES)) {
            ByteBuffer buf = ByteBuffer.allocateDirect(Pattern.BLOCK);
            int versioned = 0;
            for (int block = 0; block < 16 * 32; block++) {
                buf.clear();
                assertEquals(IoStatus.OK,
                        local.execute(IoOp.READ, (long) block * Pattern.BLOCK, Pattern.BLOCK, 0, buf));
                long v = Pattern.versionOf(buf, 0, block);
                assertTrue(v >= 0, "block " + block + " corrupt");
                versioned += v > 0 ? 1 : 0;
            }
            assertTrue(versioned > 0);
        }
    }

    @Test
    void backendKilledMidWorkloadIsDetectedAndItsRestartReplaysPendingRequests() throws Exception {
        int id;
        CxlBlockDevice dev;
        Workload w;
        try (ChildJvm backend = startBackend(2, "CREATE", false, true)) {
            id = backendIdOf(backend.awaitLine("READY", START));
            dev = host.openBlkdev(id, BlkdevOptions.defaults());
            w = new Workload(dev, 6, 64).start();
            await("1000 ops before the kill", Duration.ofSeconds(60), () -> w.ops.get() >= 1000
                    || !w.errors.isEmpty());
            assertTrue(dev.backendAlive());
            // Freeze the store with requests pending, so the kill certainly leaves submitted-but-not-completed work.
            backend.send("hold");
            backend.awaitLine("HOLDING", START);
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (true) {
                backend.send("held");
                if (!backend.awaitLine("HELD", START).equals("HELD 0")) {
                    break;
                }
                assertTrue(System.nanoTime() < deadline, "no request reached the held store");
            }
            backend.kill9();
        }
        long pending = 0;
        for (RegionStatus.Channel c : host.status().channels()) {
            pending += c.submissionTail() - c.completionTail();
        }
        assertTrue(pending > 0, "the killed backend left requests pending");
        await("client notices the dead backend", Duration.ofSeconds(10), () -> !dev.backendAlive());
        await("host notices the dead backend", Duration.ofSeconds(10),
                () -> host.isDead(Table.BACKEND, id));
        long opsAtDeath = w.ops.get();
        try (ChildJvm restarted = startBackend(2, "REATTACH:" + id, false, false)) {
            assertEquals(id, backendIdOf(restarted.awaitLine("READY", START)));
            await("workload resumes", Duration.ofSeconds(60), () -> w.ops.get() >= opsAtDeath + 1000
                    || !w.errors.isEmpty());
            assertTrue(dev.backendAlive());
            w.stopAndJoin();
            assertTrue(w.errors.isEmpty(), () -> "errors: " + w.errors);
            assertEquals(List.of(), w.verifyAll(dev));
            assertEquals(0, dev.inFlight());
            dev.close();
            restarted.send("stop");
            assertEquals(0, restarted.awaitExit(START), restarted::output);
        }
    }

    @Test
    void forceStopAcrossProcessesFailsInFlightWithEioAndTheChannelsServeTheNextBlkdev() throws Exception {
        try (ChildJvm backend = startChild(BackendMain.class, regionPath.toString(), "2", storePath.toString(),
                Long.toString(STORE_BYTES), "1", "CREATE", "DATA_CRC", "HOLD")) {
            int id = backendIdOf(backend.awaitLine("READY", START));
            CxlBlockDevice dev = host.openBlkdev(id, BlkdevOptions.defaults());
            java.util.concurrent.ConcurrentLinkedQueue<String> done =
                    new java.util.concurrent.ConcurrentLinkedQueue<>();
            for (int i = 0; i < 8; i++) {
                ByteBuffer buf = ByteBuffer.allocateDirect(Pattern.BLOCK);
                Pattern.fill(buf, 0, i, 1);
                dev.submit(IoOp.WRITE, (long) i * Pattern.BLOCK, Pattern.BLOCK, 0, buf, i,
                        (tag, status) -> done.add(tag + ":" + IoStatus.name(status)));
            }
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (true) {
                backend.send("held");
                if (backend.awaitLine("HELD", START).equals("HELD 8")) {
                    break;
                }
                assertTrue(System.nanoTime() < deadline, "backend never held all 8 requests");
            }
            assertEquals(8, dev.inFlight());
            dev.forceStop();
            assertEquals(8, done.size());
            assertTrue(done.stream().allMatch(s -> s.endsWith(":EIO")), done::toString);
            assertTrue(host.status().blkdevs().isEmpty());
            backend.send("release");
            assertEquals("RELEASED 8", backend.awaitLine("RELEASED", START));
            assertEquals(8, done.size(), "late completions call nobody");
            CxlBlockDevice next = host.openBlkdev(id, BlkdevOptions.defaults());
            ByteBuffer buf = ByteBuffer.allocateDirect(Pattern.BLOCK);
            Pattern.fill(buf, 0, 20, 3);
            assertEquals(IoStatus.OK, SyncIo.run(next, IoOp.WRITE, 20L * Pattern.BLOCK, Pattern.BLOCK, 0, buf));
            buf.clear();
            assertEquals(IoStatus.OK, SyncIo.run(next, IoOp.READ, 20L * Pattern.BLOCK, Pattern.BLOCK, 0, buf));
            assertEquals(3, Pattern.versionOf(buf, 0, 20));
            next.close();
            backend.send("stop");
            assertEquals(0, backend.awaitExit(START), backend::output);
        }
    }

    @Test
    void clientKilledMidWorkloadIsDetectedClearedAndItsAcknowledgedWritesSurvive() throws Exception {
        StoreBlockDevice store = TestSupport.newStore(storePath, STORE_BYTES);
        CxlBackend backend = host.createBackend(store, storePath.toString(), BackendOptions.defaults().withChannels(2));
        int blocks = 64;
        Map<Integer, Long> acked = new HashMap<>();
        int blkdevSlot;
        int clientHostSlot;
        try (ChildJvm client = startChild(ClientMain.class, regionPath.toString(), "3",
                Integer.toString(backend.id()), Integer.toString(blocks))) {
            String open = client.awaitLine("OPEN", START);
            blkdevSlot = Integer.parseInt(open.replaceAll(".*blkdev=(\\d+).*", "$1"));
            clientHostSlot = Integer.parseInt(open.replaceAll(".*host=(\\d+).*", "$1"));
            await("500 acknowledged writes", Duration.ofSeconds(60), () -> client.lineCount() > 500);
            // A live blkdev is never cleared.
            assertThrows(IllegalStateException.class, () -> host.clearDead(Table.BLKDEV, blkdevSlot));
            client.kill9();
            for (String line : client.drain()) {
                if (line.startsWith("ACK ")) {
                    String[] p = line.split(" ");
                    acked.put(Integer.parseInt(p[1]), Long.parseLong(p[2]));
                }
                assertFalse(line.startsWith("ERROR"), line);
            }
        }
        assertTrue(acked.size() == blocks, "every block acknowledged at least once: " + acked.size());
        await("blkdev seen dead", Duration.ofSeconds(10), () -> host.isDead(Table.BLKDEV, blkdevSlot));
        await("client host seen dead", Duration.ofSeconds(10),
                () -> host.isDead(Table.HOST, clientHostSlot));
        host.clearDead(Table.BLKDEV, blkdevSlot);
        host.clearDead(Table.HOST, clientHostSlot);
        assertTrue(host.status().blkdevs().isEmpty());
        assertTrue(host.status().channels().stream().noneMatch(RegionStatus.Channel::clientAttached));
        // A new client takes over the channels; each block holds its last acknowledged version or the one after it
        // (written by the backend but killed before the client printed its ACK).
        CxlBlockDevice dev = host.openBlkdev(backend.id(), BlkdevOptions.defaults());
        ByteBuffer buf = ByteBuffer.allocateDirect(Pattern.BLOCK);
        for (Map.Entry<Integer, Long> e : acked.entrySet()) {
            buf.clear();
            assertEquals(IoStatus.OK, SyncIo.run(dev, IoOp.READ, (long) e.getKey() * Pattern.BLOCK, Pattern.BLOCK,
                    0, buf));
            long v = Pattern.versionOf(buf, 0, e.getKey());
            assertTrue(v == e.getValue() || v == e.getValue() + 1,
                    "block " + e.getKey() + " holds v" + v + ", acknowledged v" + e.getValue());
        }
        buf.clear();
        Pattern.fill(buf, 0, 0, 1000);
        assertEquals(IoStatus.OK, SyncIo.run(dev, IoOp.WRITE, 0, Pattern.BLOCK, 0, buf));
        dev.close();
        backend.close();
    }
}
