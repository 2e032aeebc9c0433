package io.weft.actors;

import static io.weft.actors.TestNodes.get;
import static io.weft.actors.TestNodes.io;
import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.core.mirror.LegState;
import io.weft.core.mirror.ResyncProgress;
import io.weft.core.mirror.WriteIntentBitmap;
import java.lang.management.ManagementFactory;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import javax.management.MBeanServer;
import javax.management.ObjectName;
import org.apache.pekko.actor.Address;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Legs added to and removed from a mapped mirrored device at run time (three storage nodes and a client in this JVM,
 * in-process data path), under a verifying workload: an added leg is fully synced and never serves a read before it
 * is in sync; removing legs keeps IO going; the last in-sync leg cannot be removed; leg positions and the bitmap
 * stay right across a client restart.
 */
class MirrorLegsTest {
    private static final Duration WAIT = Duration.ofSeconds(30);
    private static final int REGION = WriteIntentBitmap.DEFAULT_REGION_SIZE;
    private static final int SIZE = 24 * REGION;
    private static final byte NEVER_WRITTEN = (byte) 0xEE;
    /**
     * The storage nodes' volumes live on tmpfs: a FLUSH then costs no disk fsync, which on a loaded machine could
     * exceed the mirror's 500 ms leg timeout on every leg at once (seen: all legs dropped, the FLUSH failed).
     */
    private Path tmp;
    private WeftRuntime a;
    private WeftRuntime b;
    private WeftRuntime c;
    private WeftRuntime client;
    private Path dataDir;
    private Workload workload;

    @BeforeEach
    void makeDirectory() throws Exception {
        Path shm = Path.of("/dev/shm");
        tmp = Files.createTempDirectory(Files.isDirectory(shm) ? shm : Path.of(System.getProperty("java.io.tmpdir")),
                "weft-legs-test-");
    }

    @AfterEach
    void stop() throws Exception {
        if (workload != null) {
            workload.stop();
        }
        for (WeftRuntime n : new WeftRuntime[] {client, c, b, a}) {
            if (n != null) {
                n.shutdown();
            }
        }
        try (var files = Files.walk(tmp)) {
            for (Path p : files.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }

    private static String hostPort(Address address) {
        return address.host().get() + ":" + address.port().get();
    }

    private Path exports(String node) {
        return tmp.resolve(node);
    }

    /** Starts storage nodes a, b, c (each exporting m.img of SIZE bytes filled with {@code fill[i]}) and a client. */
    private void startCluster(byte fillA, byte fillB, byte fillC) throws Exception {
        startCluster(fillA, fillB, fillC, "cl", false);
    }

    private void startCluster(byte fillA, byte fillB, byte fillC, String clientName, boolean jmx) throws Exception {
        byte[] fills = {fillA, fillB, fillC};
        String[] names = {"a", "b", "c"};
        for (int i = 0; i < 3; i++) {
            byte[] content = new byte[SIZE];
            Arrays.fill(content, fills[i]);
            Files.write(Files.createDirectories(exports(names[i])).resolve("m.img"), content);
        }
        a = startStorage("a", List.of());
        String seed = hostPort(a.clusterAddress());
        b = startStorage("b", List.of(seed));
        c = startStorage("c", List.of(seed));
        dataDir = Files.createDirectories(tmp.resolve("client-data"));
        client = startClient(seed, clientName, jmx);
    }

    private WeftRuntime startStorage(String name, List<String> seeds) {
        return WeftRuntime.start(TestNodes.config(name, List.of("storage"), exports(name), seeds, Map.of()));
    }

    private WeftRuntime startClient(String seed) {
        return startClient(seed, "cl", false);
    }

    private WeftRuntime startClient(String seed, String name, boolean jmx) {
        WeftRuntime n = WeftRuntime.start(TestNodes.config(name, List.of("client"), null, List.of(seed),
                Map.of("weft.data-dir", dataDir.toString(), "weft.client.io-timeout", "30s",
                        "weft.management.jmx.enabled", jmx, "weft.management.jmx.allow-changes", jmx)));
        await("client sees the storage nodes", WAIT,
                () -> get(n.storageNodes()).containsAll(List.of("a", "b", "c")));
        return n;
    }

    private static MapSpec.Leg leg(String node) {
        return new MapSpec.Leg(node, "m.img");
    }

    private NodeState.DeviceEntry map(MapSpec.Leg... legs) {
        Reply mapped = get(client.map(MapSpec.mirrored("m", List.of(legs), AccessMode.RW, null)));
        assertTrue(mapped.ok(), mapped.message());
        NodeState.DeviceEntry dev = client.state().device("m");
        assertEquals(DeviceState.READY, dev.snapshot().state());
        return dev;
    }

    private static long readsServedBy(WeftRuntime storage) {
        return storage.state().backends().stream()
                .mapToLong(e -> e.stats.peek().op(IoOp.READ).ops()).sum();
    }

    private static List<Integer> legIndexes(NodeState.DeviceEntry dev) {
        return dev.mirrorStatus().legs().stream().map(NodeState.LegView::index).toList();
    }

    private static List<String> legStates(NodeState.DeviceEntry dev) {
        return dev.mirrorStatus().legs().stream().map(NodeState.LegView::state).toList();
    }

    private byte[] backing(String node) throws Exception {
        return Files.readAllBytes(exports(node).resolve("m.img"));
    }

    private void unmap() {
        assertEquals(IoStatus.OK, io(client.state().device("m").device, IoOp.FLUSH, 0, 0, ByteBuffer.allocate(0)));
        Reply unmapped = get(client.unmap("m", false));
        assertTrue(unmapped.ok(), unmapped.message());
        await("device gone", WAIT, () -> client.state().device("m") == null);
    }

    @Test
    void aLegAddedUnderAVerifyingWorkloadIsFullySyncedAndServesNoReadBeforeItIsInSync() throws Exception {
        startCluster((byte) 0, (byte) 0, NEVER_WRITTEN);
        NodeState.DeviceEntry dev = map(leg("a"), leg("b"));
        workload = new Workload(dev.device, new byte[SIZE], 1);
        workload.start();
        workload.awaitMore(200);

        Reply added = get(client.addLeg("m", leg("c")));
        assertTrue(added.ok(), added.message());
        assertTrue(added.message().contains("added leg 2"), added.message());
        assertEquals(List.of(leg("a"), leg("b"), leg("c")), dev.snapshot().legPositions());
        // Sampled while the copy runs: a read served by c before it is in sync would count here (and would also
        // return never-written 0xEE bytes, which the workload's model check catches).
        long samplesWhileResyncing = 0;
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (dev.snapshot().mirror().legState(2) != LegState.IN_SYNC) {
            long reads = readsServedBy(c);
            LegState state = dev.snapshot().mirror().legState(2);
            if (state == LegState.RESYNCING) {
                assertEquals(0, reads, "leg c served a read while resyncing");
                samplesWhileResyncing++;
            }
            assertTrue(state == LegState.RESYNCING || state == LegState.IN_SYNC, "leg c is " + state);
            assertTrue(System.nanoTime() < deadline, "leg c not in sync in time");
            Thread.onSpinWait();
        }
        ResyncProgress sync = dev.snapshot().mirror().progress();
        assertEquals(2, sync.leg());
        assertTrue(sync.full(), "an added leg gets a full copy");
        assertEquals(SIZE / REGION, sync.regionsTotal());
        await("device ready with three legs", WAIT, () -> dev.snapshot().state() == DeviceState.READY);
        assertEquals(List.of("in-sync", "in-sync", "in-sync"), legStates(dev));
        assertEquals(List.of(0, 1, 2), legIndexes(dev));
        workload.awaitMore(300); // reads now spread over three legs
        byte[] model = workload.stop();
        System.out.printf("[legs] add under IO: %d requests verified, %d samples while resyncing%n",
                workload.requests.get(), samplesWhileResyncing);
        assertNull(workload.failure.get(), () -> workload.failure.get());
        assertTrue(readsServedBy(c) > 0 || readsServedBy(a) + readsServedBy(b) > 0, "reads went somewhere");

        unmap();
        assertArrayEquals(model, backing("a"), "leg a holds every acknowledged write");
        assertArrayEquals(model, backing("b"), "leg b holds every acknowledged write");
        assertArrayEquals(model, backing("c"), "the added leg c is byte-identical to the others");
    }

    @Test
    void removedLegsLeaveIoGoingAndTheLastInSyncLegStays() throws Exception {
        startCluster((byte) 0, (byte) 0, (byte) 0);
        NodeState.DeviceEntry dev = map(leg("a"), leg("b"), leg("c"));
        workload = new Workload(dev.device, new byte[SIZE], 2);
        workload.start();
        workload.awaitMore(100);

        Reply removed = get(client.removeLeg("m", 0));
        assertTrue(removed.ok(), removed.message());
        assertEquals(List.of(1, 2), legIndexes(dev), "the other legs keep their indexes");
        await("a's mapping closed", WAIT,
                () -> a.state().backends().stream().allMatch(e -> e.snapshot().mappings().isEmpty()));
        workload.awaitMore(100);
        assertEquals(DeviceState.READY, dev.snapshot().state());
        assertEquals(LegState.EMPTY, dev.snapshot().mirror().legState(0));

        Reply again = get(client.removeLeg("m", 0));
        assertFalse(again.ok());
        assertTrue(again.message().startsWith("no leg 0"), again.message());
        assertTrue(get(client.removeLeg("m", 1)).ok());
        workload.awaitMore(100);
        Reply last = get(client.removeLeg("m", 2));
        assertFalse(last.ok(), "the last in-sync leg cannot be removed");
        assertTrue(last.message().contains("last in-sync leg"), last.message());
        assertEquals(List.of(2), legIndexes(dev));
        Reply sameNode = get(client.addLeg("m", new MapSpec.Leg("c", "other.img")));
        assertFalse(sameNode.ok());
        assertTrue(sameNode.message().contains("already has a leg on storage node c"), sameNode.message());

        // a comes back as a new leg (stale contents): lowest free position, full copy, then in sync.
        Reply readded = get(client.addLeg("m", leg("a")));
        assertTrue(readded.ok(), readded.message());
        await("re-added leg in sync", WAIT, () -> dev.snapshot().mirror().legState(0) == LegState.IN_SYNC);
        assertTrue(dev.snapshot().mirror().progress().full());
        assertEquals(List.of(0, 2), legIndexes(dev));
        workload.awaitMore(100);
        byte[] model = workload.stop();
        assertNull(workload.failure.get(), () -> workload.failure.get());
        unmap();
        assertArrayEquals(model, backing("c"));
        assertArrayEquals(model, backing("a"));
    }

    @Test
    void legPositionsAndTheBitmapSurviveAClientRestartWhateverTheMapOrder() throws Exception {
        startCluster((byte) 0, (byte) 0, NEVER_WRITTEN);
        NodeState.DeviceEntry dev = map(leg("a"), leg("b"));
        byte[] model = new byte[SIZE];
        Workload.writeAt(dev.device, model, 0, 65536, 1);
        assertTrue(get(client.addLeg("m", leg("c"))).ok());
        await("c in sync", WAIT, () -> dev.snapshot().mirror().legState(2) == LegState.IN_SYNC);
        assertTrue(get(client.removeLeg("m", 0)).ok());
        assertEquals(List.of("1 b:m.img", "2 c:m.img"), Files.readAllLines(dataDir.resolve("m.legs")).stream()
                .filter(l -> !l.startsWith("#")).toList());

        // Flushed: every leg holds the writes so far durably, so losing b's node costs only the regions written
        // while it is out (unflushed extents of the activity log would be resynced too: b's node may lose them).
        assertEquals(IoStatus.OK, io(dev.device, IoOp.FLUSH, 0, 0, ByteBuffer.allocate(0)));
        // b goes away; regions 3 and 9 are written meanwhile (dirty, for b at position 1).
        b.shutdown();
        b = null;
        await("device degraded", WAIT, () -> dev.snapshot().state() == DeviceState.DEGRADED);
        Workload.writeAt(dev.device, model, 3L * REGION, 4096, 3);
        Workload.writeAt(dev.device, model, 9L * REGION + 8192, 8192, 9);
        assertEquals(2, dev.snapshot().mirror().status().dirtyRegions());
        client.shutdown();
        client = null;

        b = startStorage("b", List.of(hostPort(a.clusterAddress())));
        client = startClient(hostPort(a.clusterAddress()));
        NodeState.DeviceEntry again = map2(leg("c"), leg("b")); // the other order: positions come from m.legs
        await("ready after the partial resync", WAIT, () -> again.snapshot().state() == DeviceState.READY);
        assertEquals(List.of(leg("b"), leg("c")), again.mirrorStatus().legs().stream()
                .map(l -> new MapSpec.Leg(l.storageNode(), l.path())).toList());
        assertEquals(List.of(1, 2), legIndexes(again));
        ResyncProgress progress = again.snapshot().mirror().progress();
        assertEquals(1, progress.leg(), "b, at its old position, is the one resynced");
        assertFalse(progress.full());
        assertEquals(2, progress.regionsTotal(), "only the regions written while b was out");
        Workload.verifyAll(again.device, model);
        unmap();
        assertArrayEquals(model, backing("b"));
        assertArrayEquals(model, backing("c"));

        // a was removed earlier, so m.legs does not name it: mapped again it is a new leg and gets a full copy.
        NodeState.DeviceEntry withA = map2(leg("a"), leg("b"), leg("c"));
        await("a in sync", WAIT, () -> withA.snapshot().state() == DeviceState.READY);
        assertEquals(0, withA.snapshot().mirror().progress().leg());
        assertTrue(withA.snapshot().mirror().progress().full(), "a leg the leg file does not know is fully copied");
        unmap();
        assertArrayEquals(model, backing("a"));
    }

    @Test
    void legRoutesAnswer400404409AndJmxHasTheOperations() throws Exception {
        startCluster((byte) 0, (byte) 0, (byte) 0, "legs-http", true);
        Files.write(exports("c").resolve("s.img"), new byte[REGION]);
        NodeState.DeviceEntry dev = map(leg("a"), leg("b"));
        assertTrue(get(client.map(new MapSpec("s", "c", "s.img", AccessMode.RW, null))).ok());
        URI base = client.httpUri().orElseThrow();

        assertEquals(400, post(base, "/weft/devices/m/legs", "{}").statusCode(), "storage missing");
        assertEquals(400, post(base, "/weft/devices/m/legs", "{\"storage\":\"c\"}").statusCode(), "path missing");
        assertEquals(400, post(base, "/weft/devices/m/legs", "[1]").statusCode(), "not an object");
        HttpResponse<String> badIndex = post(base, "/weft/devices/m/legs/x/remove", "{}");
        assertEquals(400, badIndex.statusCode());
        assertTrue(badIndex.body().contains("\"message\" : \"leg index must be a number"), badIndex.body());
        assertEquals(400, post(base, "/weft/devices/m/legs/-1/remove", "{}").statusCode());
        assertEquals(404, post(base, "/weft/devices/nope/legs", "{\"storage\":\"c\",\"path\":\"m.img\"}")
                .statusCode());
        assertEquals(404, post(base, "/weft/devices/nope/legs/0/remove", "{}").statusCode());
        HttpResponse<String> noLeg = post(base, "/weft/devices/m/legs/2/remove", "{}");
        assertEquals(404, noLeg.statusCode(), noLeg.body());
        assertTrue(noLeg.body().contains("\"error\" : \"no leg 2 on device m"), noLeg.body());
        HttpResponse<String> notMirrored = post(base, "/weft/devices/s/legs", "{\"storage\":\"a\",\"path\":\"m.img\"}");
        assertEquals(409, notMirrored.statusCode(), notMirrored.body());
        assertTrue(notMirrored.body().contains("not mirrored"), notMirrored.body());
        assertEquals(409, post(base, "/weft/devices/s/legs/0/remove", "{}").statusCode());
        assertEquals(409, post(base, "/weft/devices/m/legs", "{\"storage\":\"b\",\"path\":\"m.img\"}")
                .statusCode(), "b already holds a leg");

        HttpResponse<String> added = post(base, "/weft/devices/m/legs", "{\"storage\":\"c\",\"path\":\"m.img\"}");
        assertEquals(200, added.statusCode(), added.body());
        assertTrue(added.body().contains("added leg 2"), added.body());
        assertEquals(409, post(base, "/weft/devices/m/legs", "{\"storage\":\"c\",\"path\":\"x.img\"}")
                .statusCode(), "three legs: no free position");
        await("c in sync", WAIT, () -> dev.snapshot().state() == DeviceState.READY);
        HttpResponse<String> status = http.send(HttpRequest.newBuilder(base.resolve("/weft/devices/m"))
                .header("Authorization", TestNodes.bearer(client)).GET().build(),
                HttpResponse.BodyHandlers.ofString());
        assertTrue(status.body().contains("\"storageNode\" : \"c\""), status.body());

        MBeanServer mbs = ManagementFactory.getPlatformMBeanServer();
        ObjectName bean = new ObjectName("io.weft:type=Device,node=\"legs-http\",name=\"m\"");
        await("device MBean registered", WAIT, () -> mbs.isRegistered(bean));
        assertEquals(3, mbs.getAttribute(bean, "LegCount"));
        Object removed = mbs.invoke(bean, "removeLeg", new Object[] {0}, new String[] {"int"});
        assertTrue(String.valueOf(removed).startsWith("ok"), String.valueOf(removed));
        assertEquals(2, mbs.getAttribute(bean, "LegCount"));
        Object readded = mbs.invoke(bean, "addLeg", new Object[] {"a", "m.img"},
                new String[] {"java.lang.String", "java.lang.String"});
        assertTrue(String.valueOf(readded).startsWith("ok"), String.valueOf(readded));
        await("a in sync again", WAIT, () -> dev.snapshot().state() == DeviceState.READY);

        assertEquals(200, post(base, "/weft/devices/m/legs/0/remove", "{}").statusCode());
        assertEquals(200, post(base, "/weft/devices/m/legs/1/remove", "").statusCode());
        HttpResponse<String> last = post(base, "/weft/devices/m/legs/2/remove", "{}");
        assertEquals(409, last.statusCode(), last.body());
        assertTrue(last.body().contains("last in-sync leg"), last.body());
    }

    @Test
    void aFullResyncOverHttpOrJmxMakesALegThatDiffersIdenticalAndTheOnlyInSyncLegIsRefused() throws Exception {
        // A new mirror assumes its legs identical; these differ (filled with 1 and 2): the case for --full.
        startCluster((byte) 1, (byte) 2, (byte) 0, "legs-resync", true);
        NodeState.DeviceEntry dev = map(leg("a"), leg("b"));
        URI base = client.httpUri().orElseThrow();
        assertFalse(Arrays.equals(backing("a"), backing("b")));

        assertEquals(400, post(base, "/weft/devices/m/legs/x/resync", "{\"full\":true}").statusCode());
        HttpResponse<String> noLeg = post(base, "/weft/devices/m/legs/2/resync", "{\"full\":true}");
        assertEquals(404, noLeg.statusCode(), noLeg.body());
        HttpResponse<String> partial = post(base, "/weft/devices/m/legs/1/resync", "{}");
        assertEquals(409, partial.statusCode(), "an in-sync leg has nothing marked: " + partial.body());
        HttpResponse<String> full = post(base, "/weft/devices/m/legs/1/resync", "{\"full\":true}");
        assertEquals(200, full.statusCode(), full.body());
        assertTrue(full.body().contains("resyncing leg 1"), full.body());
        await("b fully resynced", WAIT, () -> dev.snapshot().state() == DeviceState.READY
                && !dev.snapshot().mirror().progress().running()
                && dev.snapshot().mirror().legState(1) == LegState.IN_SYNC);
        assertTrue(dev.snapshot().mirror().progress().full());
        assertArrayEquals(backing("a"), backing("b"));

        MBeanServer mbs = ManagementFactory.getPlatformMBeanServer();
        ObjectName bean = new ObjectName("io.weft:type=Device,node=\"legs-resync\",name=\"m\"");
        await("device MBean registered", WAIT, () -> mbs.isRegistered(bean));
        Object viaJmx = mbs.invoke(bean, "resyncLeg", new Object[] {0, true}, new String[] {"int", "boolean"});
        assertTrue(String.valueOf(viaJmx).startsWith("ok"), String.valueOf(viaJmx));
        await("a fully resynced", WAIT, () -> dev.snapshot().state() == DeviceState.READY
                && !dev.snapshot().mirror().progress().running()
                && dev.snapshot().mirror().legState(0) == LegState.IN_SYNC);

        assertEquals(200, post(base, "/weft/devices/m/legs/0/remove", "{}").statusCode());
        HttpResponse<String> source = post(base, "/weft/devices/m/legs/1/resync", "{\"full\":true}");
        assertEquals(409, source.statusCode(), source.body());
        assertTrue(source.body().contains("only in-sync leg"), source.body());
    }

    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    private HttpResponse<String> post(URI base, String path, String body) throws Exception {
        return http.send(HttpRequest.newBuilder(base.resolve(path)).header("Content-Type", "application/json")
                .header("Authorization", TestNodes.bearer(client))
                .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
    }

    /** Maps without insisting on READY (a leg may still be resyncing). */
    private NodeState.DeviceEntry map2(MapSpec.Leg... legs) {
        Reply mapped = get(client.map(MapSpec.mirrored("m", List.of(legs), AccessMode.RW, null)));
        assertTrue(mapped.ok(), mapped.message());
        return client.state().device("m");
    }

    /**
     * One thread, queue depth 1: random 4 KiB-aligned writes (4-64 KiB of seeded random bytes) and reads of the
     * same sizes, every read checked against the model of acknowledged writes. The first problem stops it.
     */
    static final class Workload {
        private final BlockDevice device;
        private final byte[] model;
        private final Random random;
        private final Thread thread;
        final AtomicLong requests = new AtomicLong();
        final AtomicReference<String> failure = new AtomicReference<>();
        private volatile boolean running = true;

        Workload(BlockDevice device, byte[] model, long seed) {
            this.device = device;
            this.model = model;
            this.random = new Random(seed);
            this.thread = new Thread(this::run, "legs-test-workload");
            thread.setDaemon(true);
        }

        void start() {
            thread.start();
        }

        private void run() {
            try {
                while (running) {
                    int length = 4096 * (1 + random.nextInt(16));
                    long offset = 4096L * random.nextInt((model.length - length) / 4096 + 1);
                    if (random.nextInt(100) < 40) {
                        ByteBuffer read = ByteBuffer.allocate(length);
                        int st = io(device, IoOp.READ, offset, length, read);
                        if (st != IoStatus.OK) {
                            failure.compareAndSet(null, "read at " + offset + ": " + IoStatus.name(st));
                            return;
                        }
                        if (!Arrays.equals(read.array(), 0, length, model, (int) offset, (int) offset + length)) {
                            failure.compareAndSet(null, "read at " + offset + " (" + length + " bytes) does not"
                                    + " match the acknowledged writes");
                            return;
                        }
                    } else {
                        byte[] data = new byte[length];
                        random.nextBytes(data);
                        int st = io(device, IoOp.WRITE, offset, length, ByteBuffer.wrap(data));
                        if (st != IoStatus.OK) {
                            failure.compareAndSet(null, "write at " + offset + ": " + IoStatus.name(st));
                            return;
                        }
                        System.arraycopy(data, 0, model, (int) offset, length);
                    }
                    requests.incrementAndGet();
                }
            } catch (Throwable t) {
                failure.compareAndSet(null, t.toString());
            }
        }

        /** Waits until {@code n} more requests completed (or the workload failed). */
        void awaitMore(long n) {
            long target = requests.get() + n;
            await(n + " more requests", WAIT, () -> requests.get() >= target || failure.get() != null);
            assertNull(failure.get(), () -> failure.get());
        }

        /** Stops and returns the model (valid once the thread has ended). */
        byte[] stop() {
            running = false;
            try {
                thread.join(WAIT.toMillis());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            assertFalse(thread.isAlive(), "workload thread stuck");
            return model;
        }

        static void writeAt(BlockDevice device, byte[] model, long offset, int length, long seed) {
            byte[] data = new byte[length];
            new Random(seed).nextBytes(data);
            assertEquals(IoStatus.OK, io(device, IoOp.WRITE, offset, length, ByteBuffer.wrap(data)));
            System.arraycopy(data, 0, model, (int) offset, length);
        }

        /** Reads the whole device in 64 KiB requests (every transport's per-request limit allows that). */
        static void verifyAll(BlockDevice device, byte[] model) {
            int chunk = 64 << 10;
            for (int offset = 0; offset < model.length; offset += chunk) {
                ByteBuffer read = ByteBuffer.allocate(chunk);
                assertEquals(IoStatus.OK, io(device, IoOp.READ, offset, chunk, read), "read at " + offset);
                assertTrue(Arrays.equals(read.array(), 0, chunk, model, offset, offset + chunk),
                        "data at " + offset + " is not what was acknowledged");
            }
        }
    }
}
