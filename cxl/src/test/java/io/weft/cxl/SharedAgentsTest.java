package io.weft.cxl;

import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.core.store.StoreBlockDevice;
import io.weft.cxl.layout.ChannelLayout;
import io.weft.cxl.layout.RegionGeometry;
import io.weft.cxl.layout.RegionHeader;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Issue 12: agents per process, not per device. A storage host and a client host (two registrations in one JVM, as
 * two nodes on one machine) share one region; every backend is served by the storage process's shared handler agent
 * and every blkdev by the client process's shared completion agent.
 */
class SharedAgentsTest {
    /** 32 backends, blkdevs and one-channel segments of 8 × 16 KiB: room for many small devices. */
    private static final RegionGeometry GEOMETRY = new RegionGeometry(4, 32, 32, 32, 8, 16 << 10);
    private static final Duration WAIT = Duration.ofSeconds(30);
    private static final int BLOCK = 4096;
    private final List<Path> paths = new ArrayList<>();

    @AfterEach
    void cleanUp() {
        TestSupport.deleteQuietly(paths.toArray(new Path[0]));
    }

    private Path shm(String what) {
        Path p = TestSupport.shmPath(what);
        paths.add(p);
        return p;
    }

    /** Threads of the data plane: every "cxl-" thread except the host agents (one per registration). */
    private static int agentThreads() {
        int n = 0;
        for (Thread t : Thread.getAllStackTraces().keySet()) {
            if (t.isAlive() && t.getName().startsWith("cxl-") && !t.getName().startsWith("cxl-host-")) {
                n++;
            }
        }
        return n;
    }

    private CxlBackend newBackend(CxlHost storage) throws Exception {
        StoreBlockDevice store = TestSupport.newStore(shm("shared-store"), 1 << 20);
        return storage.createBackend(store, "s", BackendOptions.defaults().withChannels(1));
    }

    private static ByteBuffer block(int device, int n, int round) {
        ByteBuffer b = ByteBuffer.allocateDirect(BLOCK);
        for (int i = 0; i < BLOCK; i++) {
            b.put(i, (byte) (device * 31 + n * 7 + round + i));
        }
        return b;
    }

    /** Writes 4 blocks to {@code dev} and reads them back. */
    private static void verifiedIo(CxlBlockDevice dev, int device, int round) {
        for (int n = 0; n < 4; n++) {
            assertEquals(IoStatus.OK, SyncIo.run(dev, IoOp.WRITE, n * 8192L, BLOCK, 0, block(device, n, round)),
                    "write to device " + device);
        }
        for (int n = 0; n < 4; n++) {
            ByteBuffer in = ByteBuffer.allocateDirect(BLOCK);
            assertEquals(IoStatus.OK, SyncIo.run(dev, IoOp.READ, n * 8192L, BLOCK, 0, in), "read from " + device);
            assertEquals(block(device, n, round), in, "device " + device + " block " + n + " round " + round);
        }
    }

    @Test
    void threadsDoNotGrowWithDevicesAndClosingSomeLeavesTheOthersServed() throws Exception {
        Path regionPath = shm("shared-region");
        int before = agentThreads(); // other tests' hosts are closed, but do not count on it
        try (CxlRegion region = CxlRegion.format(regionPath, GEOMETRY, RegionHeader.FLAG_ENTRY_CRC);
             CxlHost storage = CxlHost.register(region, 1, "storage", TestSupport.fastOptions());
             CxlHost client = CxlHost.register(region, 2, "client", TestSupport.fastOptions())) {
            List<CxlBackend> backends = new ArrayList<>();
            List<CxlBlockDevice> devs = new ArrayList<>();
            backends.add(newBackend(storage));
            devs.add(client.openBlkdev(backends.get(0).id(), BlkdevOptions.defaults()));
            verifiedIo(devs.get(0), 0, 0);
            int withOne = agentThreads();
            assertEquals(2, withOne - before, "one handler agent and one completion agent");
            int count = 24;
            for (int d = 1; d < count; d++) {
                backends.add(newBackend(storage));
                devs.add(client.openBlkdev(backends.get(d).id(), BlkdevOptions.defaults()));
            }
            assertEquals(withOne, agentThreads(), "agent threads with " + count + " devices open");
            assertEquals(2, storage.agentThreads() + client.agentThreads());

            // IO on every device from 4 threads while half of the devices close under it: each request completes
            // exactly once, and the devices left open keep moving the right data.
            AtomicIntegerArray completions = new AtomicIntegerArray(count * 64);
            AtomicReference<String> wrong = new AtomicReference<>();
            List<Thread> workers = new ArrayList<>();
            for (int w = 0; w < 4; w++) {
                int first = w;
                Thread t = new Thread(() -> {
                    for (int round = 0; round < 16; round++) {
                        for (int d = first; d < count; d += 4) {
                            int id = d * 64 + round * 4 + first;
                            ByteBuffer buf = block(d, round, 1);
                            devs.get(d).submit(IoOp.WRITE, (round % 16) * 8192L, BLOCK, 0, buf, id, (tag, s) -> {
                                if (completions.incrementAndGet((int) tag) != 1) {
                                    wrong.compareAndSet(null, "request " + tag + " completed twice");
                                }
                                if (s != IoStatus.OK && s != IoStatus.ESHUTDOWN) {
                                    wrong.compareAndSet(null, "request " + tag + ": " + IoStatus.name(s));
                                }
                            });
                        }
                    }
                }, "io-" + w);
                workers.add(t);
                t.start();
            }
            for (int d = 0; d < count; d += 2) {
                devs.get(d).close();
                backends.get(d).close();
            }
            for (Thread t : workers) {
                t.join(WAIT.toMillis());
                assertTrue(!t.isAlive(), t.getName() + " finished submitting");
            }
            await("every request completed", WAIT, () -> {
                for (int d = 0; d < count; d++) {
                    for (int round = 0; round < 16; round++) {
                        if (completions.get(d * 64 + round * 4 + d % 4) == 0) {
                            return false;
                        }
                    }
                }
                return true;
            });
            assertEquals(null, wrong.get());
            for (int d = 1; d < count; d += 2) {
                verifiedIo(devs.get(d), d, 2);
            }
            assertEquals(withOne, agentThreads(), "agent threads after closing half of the devices");
        }
        assertEquals(before, agentThreads(), "closing the hosts stops their agents");
    }

    /** Heartbeat 20 s: an agent woken by anything but its doorbell or an unpark would take 20 s. */
    private static CxlOptions sleepyOptions() {
        Duration beat = Duration.ofSeconds(20);
        return new CxlOptions(beat, beat.multipliedBy(3), beat.multipliedBy(6), 200, 100, Duration.ofNanos(1_000),
                Duration.ofMillis(1), Duration.ZERO);
    }

    private static Thread thread(String prefix) {
        for (Thread t : Thread.getAllStackTraces().keySet()) {
            if (t.getName().startsWith(prefix)) {
                return t;
            }
        }
        throw new AssertionError("no thread " + prefix + "*");
    }

    private static boolean asleep(CxlBackend b, CxlRegion region) {
        for (int seg : b.segmentIds()) {
            if (region.channel(seg).control.getIntVolatile(ChannelLayout.HANDLER_DOORBELL)
                    != ChannelLayout.DOORBELL_ASLEEP) {
                return false;
            }
        }
        return true;
    }

    @Test
    void idleAgentsSleepAndEachDevicesRequestWakesThem() throws Exception {
        Path regionPath = shm("shared-sleep");
        try (CxlRegion region = CxlRegion.format(regionPath, GEOMETRY, RegionHeader.FLAG_ENTRY_CRC);
             CxlHost storage = CxlHost.register(region, 1, "storage", sleepyOptions());
             CxlHost client = CxlHost.register(region, 2, "client", sleepyOptions())) {
            List<CxlBackend> backends = new ArrayList<>();
            List<CxlBlockDevice> devs = new ArrayList<>();
            for (int d = 0; d < 8; d++) {
                backends.add(newBackend(storage));
                devs.add(client.openBlkdev(backends.get(d).id(), BlkdevOptions.defaults()));
            }
            Thread completionAgent = thread("cxl-completions-" + client.slot() + "-");
            for (int round = 0; round < 2; round++) {
                for (int d = 0; d < devs.size(); d++) {
                    CxlBackend b = backends.get(d);
                    await("handler agent asleep on its doorbell", WAIT, () -> asleep(b, region));
                    await("completion agent parked", WAIT, () ->
                            completionAgent.getState() == Thread.State.TIMED_WAITING);
                    AtomicInteger status = new AtomicInteger(-1);
                    devs.get(d).submit(IoOp.WRITE, 0, BLOCK, 0, block(d, 0, round), d,
                            (tag, s) -> status.set(s));
                    // Far below the 20 s heartbeat: only the doorbell and the unpark can have woken the agents.
                    await("device " + d + "'s request completed", Duration.ofSeconds(10),
                            () -> status.get() >= 0);
                    assertEquals(IoStatus.OK, status.get());
                }
            }
        }
    }

    @Test
    void closingTheLeadChannelsBackendRePointsTheOthersAtANewDoorbell() throws Exception {
        Path regionPath = shm("shared-lead");
        try (CxlRegion region = CxlRegion.format(regionPath, GEOMETRY, RegionHeader.FLAG_ENTRY_CRC);
             CxlHost storage = CxlHost.register(region, 1, "storage", sleepyOptions());
             CxlHost client = CxlHost.register(region, 2, "client", sleepyOptions())) {
            CxlBackend lead = newBackend(storage);
            CxlBackend other = newBackend(storage);
            ChannelSegment otherChannel = region.channel(other.segmentIds()[0]);
            await("both name the first backend's channel as the doorbell", WAIT, () ->
                    otherChannel.control.getIntVolatile(ChannelLayout.DOORBELL_SEGMENT) == lead.segmentIds()[0] + 1);
            lead.close();
            await("the remaining channel names its own doorbell", WAIT, () ->
                    otherChannel.control.getIntVolatile(ChannelLayout.DOORBELL_SEGMENT)
                    == other.segmentIds()[0] + 1);
            // A new backend takes the freed segment: ringing it must not be what wakes the agent.
            CxlBackend third = newBackend(storage);
            CxlBlockDevice dev = client.openBlkdev(other.id(), BlkdevOptions.defaults());
            for (int round = 0; round < 3; round++) {
                await("handler agent asleep", WAIT, () -> asleep(other, region) && asleep(third, region));
                AtomicInteger status = new AtomicInteger(-1);
                dev.submit(IoOp.WRITE, 0, BLOCK, 0, block(1, 0, round), round, (tag, s) -> status.set(s));
                await("request completed after the lead's backend closed", Duration.ofSeconds(10),
                        () -> status.get() >= 0);
                assertEquals(IoStatus.OK, status.get());
            }
        }
    }
}
