package io.weft.multijvm;

import static io.weft.multijvm.NodeProcess.json;
import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.weft.core.testing.RequiredTool;
import io.weft.cxl.CxlRegion;
import io.weft.cxl.layout.RegionGeometry;
import io.weft.cxl.layout.RegionHeader;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Nested;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.parallel.Isolated;

/**
 * Randomized failover drills across real JVMs, once per data transport (CXL over a shared /dev/shm region, RDMA with
 * the software provider): storage nodes {@code a} and {@code b}, client node {@code c}, and a mirrored device
 * {@code m0} on c with one leg on a and one on b. Each drill is asked of c's HTTP API ({@code POST /weft/drills}):
 * it runs a verifying workload over m0 while it kills ({@code kill -9}, then restarts), freezes ({@code SIGSTOP},
 * then {@code SIGCONT}) or cuts (closes the transport paths of) a or b, picked with a seeded {@link SplittableRandom}.
 * Every report must show every acknowledged write intact, the longest IO stall within the design's bound (1 s), the
 * leg's loss detected and the leg back in sync; m0 must be ready (both legs in sync) before the next drill.
 *
 * Flaps (two freezes just past the leg timeout) are in the random set too; after every drill the legs must be
 * byte-identical (compared block by block by the drill). Per transport, one client-kill drill driven from outside the
 * client ({@code weft drill m0 --fault client-kill}, the CLI in this JVM); and a two-node topology (storage s, client
 * c, single-leg device) with a kill of s.
 *
 * <p>Also here: a resync after a kill copies only the regions written meanwhile (counted), and a client node killed
 * and restarted (same data directory) in the middle of a degraded period keeps its write-intent bitmap, so the
 * returning leg gets exactly the regions written while it was away (RDMA cluster).
 *
 * <p>Seed: printed at the start; {@code -Dweft.drills.seed=N} replays the same choices. {@code -Dweft.drills.count=N}
 * sets the drills per transport (default 11). One line per drill and the stall distribution per fault kind go to the
 * test output; every drill is also appended to {@code target/multi-jvm/drills-<pid>/drills.csv}. Node logs: same
 * directory.
 *
 * <p>{@link Isolated}: the stall bound is measured, so no other test class shares the machine meanwhile.
 */
@Isolated
class DrillsIT {
    /** DESIGN.md §8: the longest IO stall while a mirror leg's node dies. */
    static final double STALL_BOUND_MILLIS = 1000;
    static final long SEED = Long.getLong("weft.drills.seed", ThreadLocalRandom.current().nextLong());
    static final int DRILLS_PER_TRANSPORT = Integer.getInteger("weft.drills.count", 11);
    private static final Duration WAIT = Duration.ofSeconds(60);
    private static final long LEG_SIZE = 64L << 20;
    private static final List<String> FAULTS = List.of("kill", "freeze", "cut", "flap");
    /** A flap here: two freezes just past the leg timeout with the node running 1 s between them. */
    private static final String FLAP_SCHEDULE = "\"flaps\":2,\"runFor\":\"1s\",";
    private static final Pattern RESYNC_STARTED = Pattern.compile("resync started: (\\d+) regions");

    private static final List<Outcome> OUTCOMES = Collections.synchronizedList(new ArrayList<>());
    private static final long CLASS_START = System.nanoTime();

    /** One drill as the test saw it. */
    record Outcome(String transport, int index, String fault, String target, long seed, long workingSet,
                   int queueDepth, String phase, boolean intact, double stall, double stallBefore, double detect,
                   double failover, double resync, double iopsBefore, double iopsDuring, double iopsAfter,
                   long requests, long wallMillis, List<String> problems) {

        String line() {
            return String.format(Locale.ROOT, "[drill] %-4s #%-2d %-6s %s: stall %7.1f ms (before %5.1f), detect %6.1f,"
                            + " failover %6.1f, resync %7.1f ms, IOPS %6.0f/%6.0f/%6.0f, intact=%s, %d MiB qd%d,"
                            + " seed %d, %.1f s%s",
                    transport, index, fault, target, stall, stallBefore, detect, failover, resync, iopsBefore,
                    iopsDuring, iopsAfter, intact, workingSet >> 20, queueDepth, seed, wallMillis / 1000.0,
                    problems.isEmpty() ? "" : "  PROBLEMS: " + String.join("; ", problems));
        }

        static final String CSV_HEADER = "transport,index,fault,target,seed,workingSet,queueDepth,phase,intact,"
                + "stallMillis,stallBeforeMillis,detectMillis,failoverMillis,resyncMillis,iopsBefore,iopsDuring,"
                + "iopsAfter,requests,wallMillis";

        String csv() {
            return String.format(Locale.ROOT,
                    "%s,%d,%s,%s,%d,%d,%d,%s,%s,%.3f,%.3f,%.3f,%.3f,%.3f,%.0f,%.0f,%.0f,%d,%d",
                    transport, index, fault, target, seed, workingSet, queueDepth, phase, intact, stall, stallBefore,
                    detect, failover, resync, iopsBefore, iopsDuring, iopsAfter, requests, wallMillis);
        }
    }

    @BeforeAll
    static void printSeed() {
        System.out.printf("[drills] seed %d (replay with -Dweft.drills.seed=%d), %d drills per transport, stall bound"
                + " %.0f ms%n", SEED, SEED, DRILLS_PER_TRANSPORT, STALL_BOUND_MILLIS);
    }

    /** The distribution the closing note quotes: max / median stall per fault kind, per transport and overall. */
    @AfterAll
    static void printDistribution() {
        List<Outcome> all;
        synchronized (OUTCOMES) {
            all = List.copyOf(OUTCOMES);
        }
        System.out.printf("[drills] %d drills in %.1f s (seed %d)%n", all.size(),
                (System.nanoTime() - CLASS_START) / 1e9, SEED);
        Map<String, List<Double>> byKind = new TreeMap<>();
        for (Outcome o : all) {
            if ("done".equals(o.phase())) {
                byKind.computeIfAbsent(o.fault(), k -> new ArrayList<>()).add(o.stall());
                byKind.computeIfAbsent(o.transport() + " " + o.fault(), k -> new ArrayList<>()).add(o.stall());
            }
        }
        for (var e : byKind.entrySet()) {
            List<Double> s = new ArrayList<>(e.getValue());
            Collections.sort(s);
            double median = s.size() % 2 == 1 ? s.get(s.size() / 2)
                    : (s.get(s.size() / 2 - 1) + s.get(s.size() / 2)) / 2;
            System.out.printf(Locale.ROOT, "[drills] stall %-12s n=%2d max %7.1f ms median %7.1f ms  all %s%n",
                    e.getKey(), s.size(), s.get(s.size() - 1), median,
                    s.stream().map(v -> String.format(Locale.ROOT, "%.0f", v)).toList());
        }
    }

    @Nested
    class Cxl extends TransportDrills {
        Cxl() {
            super("cxl");
        }
    }

    @Nested
    class Rdma extends TransportDrills {
        Rdma() {
            super("rdma");
        }

        /**
         * b is killed (by the test), writes land only on a and mark 4 regions in c's bitmap, c is killed -9 and started
         * again with the same data directory, b comes back, the device is mapped again: the returning leg gets exactly
         * the 4 dirty regions, the two legs' files end up identical and fio verifies the data through c's NBD export.
         */
        @Test
        @Order(2)
        void aClientRestartedInADegradedPeriodKeepsItsBitmapAndResyncsOnlyTheDirtyRegions() throws Exception {
            String fio = RequiredTool.require("fio", "fio").toString();
            createLeg(rootA, "m1.img");
            createLeg(rootB, "m1.img");
            mapMirror(c, "m1");
            await("m1 ready", WAIT, () -> ready("m1"));

            b.refreshPid();
            b.kill9();
            await("m1 degraded after kill -9 of b", WAIT, () -> "degraded".equals(state(c, "m1")));
            // 3 regions at 8 MiB and 1 at 40 MiB (1 MiB regions; the device's bitmap says its region size).
            int regionSize = device(c, "m1").get("mirror").get("regionSize").asInt();
            assertEquals(1 << 20, regionSize, "the ranges below assume 1 MiB regions");
            List<String> w1 = fioJob(fio, c, "m1", "w1", 8 << 20, 3 << 20);
            List<String> w2 = fioJob(fio, c, "m1", "w2", 40 << 20, 1 << 20);
            fioOk("m1-w1", w1, "--do_verify=1");
            fioOk("m1-w2", w2, "--do_verify=1");
            JsonNode degraded = device(c, "m1").get("mirror");
            assertEquals(4, degraded.get("dirtyRegions").asLong(), degraded.toString());
            long firstDifference = Files.mismatch(rootA.resolve("m1.img"), rootB.resolve("m1.img"));
            assertTrue(firstDifference >= 8 << 20 && firstDifference < 11 << 20,
                    "b's file missed the writes made while it was down; first difference at " + firstDifference);

            // The client dies with the leg still out; its bitmap file must carry the 4 regions over.
            for (ProcessHandle child : ProcessHandle.of(c.pid()).map(h -> h.descendants().toList())
                    .orElse(List.of())) {
                a.remember(child.pid()); // drill-restarted storage nodes are c's children: keep them killable
            }
            c.kill9();
            Path wib = dataDir("c").resolve("m1.wib");
            assertTrue(Files.size(wib) > 0, wib + " survives the client");

            int clusterPort = Integer.parseInt(c.clusterAddress().substring(c.clusterAddress().lastIndexOf(':') + 1));
            CompletableFuture<NodeProcess> c2 = CompletableFuture.supplyAsync(() -> startUnchecked("c", 2,
                    config("c", "client", null, List.of(a.clusterAddress())), clusterPort));
            // Same cluster ports: each new incarnation replaces its dead predecessor at once.
            int bPort = Integer.parseInt(b.clusterAddress().substring(b.clusterAddress().lastIndexOf(':') + 1));
            CompletableFuture<NodeProcess> b2 = CompletableFuture.supplyAsync(() -> startUnchecked("b", 2,
                    config("b", "storage", rootB, List.of(a.clusterAddress())), bPort));
            c = c2.get(2, TimeUnit.MINUTES);
            b = b2.get(2, TimeUnit.MINUTES);
            await("a, b and the new c up", WAIT, () -> c.upMembers() == 3);
            // The old c's rw mapping on a is released by its lease; until then the map is refused (409).
            await("m1 mapped again on the restarted c", WAIT, () -> {
                try {
                    return mapMirrorStatus(c, "m1") == 200;
                } catch (Exception e) {
                    return false;
                }
            });
            await("m1 ready after the resync of b's leg", WAIT, () -> ready("m1"));

            JsonNode resync = device(c, "m1").get("mirror").get("resync");
            assertEquals(1, resync.get("leg").asInt(), resync.toString());
            assertFalse(resync.get("full").asBoolean(), "only dirty regions, not a full sync: " + resync);
            // The client died uncleanly, so its activity log's extents (4 MiB, the default) are in doubt too and are
            // resynced with the bitmap's regions: {8, 9, 10, 40} ∪ the regions of extents [8, 12) and [40, 44) MiB
            // = 8 regions (docs/mirror.md, "Activity log"). Still only those, not a full sync.
            int expectedRegions = 8;
            assertEquals(expectedRegions, resync.get("regionsTotal").asLong(),
                    "copied = the 4 dirty regions and the rest of their 2 logged extents: " + resync);
            assertEquals(expectedRegions, resync.get("regionsDone").asLong(), resync.toString());
            assertEquals((long) expectedRegions * regionSize, resync.get("bytesCopied").asLong(), resync.toString());
            assertEquals(0, device(c, "m1").get("mirror").get("dirtyRegions").asLong());
            assertEquals(-1, Files.mismatch(rootA.resolve("m1.img"), rootB.resolve("m1.img")),
                    "after the resync b's leg holds exactly a's data");
            fioOk("m1-w1-verify", w1, "--verify_only");
            fioOk("m1-w2-verify", w2, "--verify_only");
            System.out.printf("[drills] client restart in a degraded period: bitmap kept 4 dirty regions"
                    + " (+ 2 logged extents), resync copied %d regions (%d bytes) to b's leg%n",
                    resync.get("regionsDone").asLong(),
                    resync.get("bytesCopied").asLong());
        }
    }

    /**
     * The README's two-node deployment: one storage node {@code s} and one client node {@code c} (each naming both as
     * seeds), a single-leg device {@code d} on s over rdma. A kill drill of s: the device's IO queues while s is down
     * ({@code weft.client.io-timeout} is longer than the restart), s restarts with its own command line, the device
     * reconnects by itself, and every acknowledged write reads back intact.
     */
    @Nested
    @TestInstance(TestInstance.Lifecycle.PER_CLASS)
    class TwoNodes {
        final List<NodeProcess> started = Collections.synchronizedList(new ArrayList<>());
        Path dir;
        NodeProcess s;
        NodeProcess c;
        Thread reaper;

        String config(String name, String roles, Path exportRoot, List<String> seeds) {
            // IO queues through the storage node's restart (a JVM start and cluster rejoin took 50 s on a loaded
            // 2-core machine) instead of failing.
            return ClusterNodeHocon.of(name, roles, exportRoot, dir.resolve("data-" + name), seeds, "150s");
        }

        NodeProcess start(String name, String hocon, int port) {
            try {
                NodeProcess n = NodeProcess.start(dir, name, 1, hocon, port);
                started.add(n);
                return n;
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        }

        @BeforeAll
        void startStorageAndClientAndMapTheDevice() throws Exception {
            dir = Path.of(System.getProperty("weft.multijvm.dir", "target/multi-jvm"))
                    .resolve("drills-" + ProcessHandle.current().pid()).resolve("two-nodes").toAbsolutePath();
            Path root = Files.createDirectories(dir.resolve("exports-s"));
            Path runDir = dir;
            reaper = new Thread(() -> NodeProcess.killAll(List.copyOf(started), runDir), "drills-two-node-reaper");
            Runtime.getRuntime().addShutdownHook(reaper);
            int portS = NodeProcess.freePort();
            int portC = NodeProcess.freePort();
            List<String> seeds = List.of("127.0.0.1:" + portS, "127.0.0.1:" + portC);
            s = start("s", config("s", "storage", root, seeds), portS);
            c = start("c", config("c", "client", null, seeds), portC);
            await("s and c up", WAIT, () -> c.upMembers() == 2);
            try (RandomAccessFile f = new RandomAccessFile(root.resolve("d.img").toFile(), "rw")) {
                f.setLength(32L << 20);
            }
            HttpResponse<String> mapped = c.post("/weft/devices", "{\"id\":\"d\",\"mode\":\"rw\",\"transport\":"
                    + "\"rdma\",\"storageNode\":\"s\",\"path\":\"d.img\"}");
            assertEquals(200, mapped.statusCode(), mapped.body());
            await("d ready", WAIT, () -> "ready".equals(deviceState()));
        }

        String deviceState() {
            try {
                HttpResponse<String> r = c.get("/weft/devices/d");
                return r.statusCode() == 200 ? json(r).get("state").asText() : "absent";
            } catch (Exception e) {
                return "unknown";
            }
        }

        @AfterAll
        void killBoth() {
            if (dir != null) {
                System.out.printf("[drills] two nodes: ended node processes %s%n",
                        NodeProcess.killAll(List.copyOf(started), dir));
            }
            if (reaper != null) {
                Runtime.getRuntime().removeShutdownHook(reaper);
            }
        }

        @Test
        void aKilledStorageNodeRestartsAndItsSingleLegDeviceKeepsEveryAcknowledgedWrite() throws Exception {
            long pidBefore = s.refreshPid();
            long drillSeed = new SplittableRandom(SEED ^ 0x2A0DE5L).nextLong(1L << 40);
            HttpResponse<String> posted = c.post("/weft/drills", "{\"device\":\"d\",\"fault\":\"kill\","
                    + "\"target\":\"s\",\"overwrite\":true,\"seed\":" + drillSeed + ",\"queueDepth\":8,"
                    + "\"workingSet\":\"16MiB\",\"before\":\"400ms\",\"during\":\"1s\",\"after\":\"400ms\","
                    + "\"resyncTimeout\":\"120s\"}");
            assertEquals(202, posted.statusCode(), posted.body());
            String id = json(posted).get("id").asText();
            JsonNode[] last = new JsonNode[1];
            await("two-node drill " + id + " done", Duration.ofMinutes(4), () -> {
                try {
                    last[0] = json(c.get("/weft/drills/" + id));
                    String phase = last[0].get("phase").asText();
                    return phase.equals("done") || phase.equals("failed");
                } catch (Exception e) {
                    return false;
                }
            });
            await("s answering again after the kill drill", WAIT, () -> {
                try {
                    return s.refreshPid() != pidBefore;
                } catch (Exception e) {
                    return false;
                }
            });
            JsonNode r = last[0].path("report");
            System.out.printf("[drill] two nodes: kill of s under d (seed %d): %s%n%s%n", drillSeed,
                    last[0].path("faultDone").asText(), last[0].path("reportText").asText());
            assertEquals("done", last[0].path("phase").asText(), last[0].toString());
            assertTrue(r.path("intact").asBoolean(), last[0].path("reportText").asText());
            assertEquals(0, r.path("blocksLost").asLong());
            assertEquals(0, r.path("blocksCorrupted").asLong());
            assertEquals((16L << 20) / 4096, r.path("blocksVerified").asLong());
            assertTrue(r.path("writesAcknowledged").asLong() > 0, "the workload wrote");
            assertEquals(0, r.path("writesFailed").asLong(), "IO queued through the restart instead of failing: "
                    + last[0].path("reportText").asText());
            assertEquals(-1, r.path("legBytesCompared").asLong(), "a single-leg device has no legs to compare");
            assertTrue(last[0].path("faultDone").asText().contains("device d reconnected"),
                    last[0].path("faultDone").asText());
            await("d ready after the drill", WAIT, () -> "ready".equals(deviceState()));
        }
    }

    /** One cluster (a, b, c) over one transport and the drills on its mirrored device. */
    @TestInstance(TestInstance.Lifecycle.PER_CLASS)
    @TestMethodOrder(MethodOrderer.OrderAnnotation.class)
    abstract class TransportDrills {
        final String transport;
        final List<NodeProcess> started = Collections.synchronizedList(new ArrayList<>());
        Path dir;
        Path region;
        Path rootA;
        Path rootB;
        NodeProcess a;
        NodeProcess b;
        NodeProcess c;
        /** Ends the nodes if the test JVM is stopped before {@link #killEveryNode()} runs. */
        Thread reaper;

        TransportDrills(String transport) {
            this.transport = transport;
        }

        Path dataDir(String node) {
            return dir.resolve("data-" + node);
        }

        String config(String name, String roles, Path exportRoot, List<String> seeds) {
            String hocon = ClusterNodeHocon.of(name, roles, exportRoot, dataDir(name), seeds, "5s");
            return region == null ? hocon : hocon + "weft.cxl.regions = [\"" + region + "\"]\n";
        }

        NodeProcess start(String name, int incarnation, String hocon, int clusterPort) throws Exception {
            NodeProcess n = NodeProcess.start(dir, name, incarnation, hocon, clusterPort);
            started.add(n);
            return n;
        }

        NodeProcess startUnchecked(String name, int incarnation, String hocon, int clusterPort) {
            try {
                return start(name, incarnation, hocon, clusterPort);
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        }

        @BeforeAll
        void formClusterAndMapTheMirror() throws Exception {
            dir = Path.of(System.getProperty("weft.multijvm.dir", "target/multi-jvm"))
                    .resolve("drills-" + ProcessHandle.current().pid()).resolve(transport).toAbsolutePath();
            rootA = Files.createDirectories(dir.resolve("exports-a"));
            rootB = Files.createDirectories(dir.resolve("exports-b"));
            if (transport.equals("cxl")) {
                region = Path.of("/dev/shm", "weft-drills-it-" + UUID.randomUUID());
                CxlRegion.format(region, RegionGeometry.small(), RegionHeader.FLAG_ENTRY_CRC).close();
            }
            Path runDir = dir;
            reaper = new Thread(() -> NodeProcess.killAll(List.copyOf(started), runDir), "drills-reaper");
            Runtime.getRuntime().addShutdownHook(reaper);
            long t0 = System.nanoTime();
            // Every node names every seed, c first (it forms the cluster): any of them restarted with its own
            // command line (a kill drill restarts a or b, the client-kill drill c) joins the running cluster
            // instead of forming one of its own.
            int portC = NodeProcess.freePort();
            int portA = NodeProcess.freePort();
            int portB = NodeProcess.freePort();
            List<String> seed = List.of("127.0.0.1:" + portC, "127.0.0.1:" + portA, "127.0.0.1:" + portB);
            c = start("c", 1, config("c", "client", null, seed), portC);
            CompletableFuture<NodeProcess> startA = CompletableFuture.supplyAsync(() -> startUnchecked("a", 1,
                    config("a", "storage", rootA, seed), portA));
            CompletableFuture<NodeProcess> startB = CompletableFuture.supplyAsync(() -> startUnchecked("b", 1,
                    config("b", "storage", rootB, seed), portB));
            a = startA.get(3, TimeUnit.MINUTES);
            b = startB.get(3, TimeUnit.MINUTES);
            await("three members up", WAIT, () -> c.upMembers() == 3);
            createLeg(rootA, "m0.img");
            createLeg(rootB, "m0.img");
            mapMirror(c, "m0");
            await("m0 ready", WAIT, () -> ready("m0"));
            assertEquals(transport, device(c, "m0").get("transport").asText());
            System.out.printf("[drills] %s cluster up and m0 mapped in %.1f s (%s)%n", transport,
                    (System.nanoTime() - t0) / 1e9, dir);
        }

        @AfterAll
        void killEveryNode() throws Exception {
            List<NodeProcess> nodes;
            synchronized (started) {
                nodes = List.copyOf(started);
            }
            if (dir != null) {
                var ended = NodeProcess.killAll(nodes, dir);
                System.out.printf("[drills] %s: ended node processes %s%n", transport, ended);
            }
            if (region != null) {
                Files.deleteIfExists(region);
            }
            if (reaper != null) {
                Runtime.getRuntime().removeShutdownHook(reaper);
            }
        }

        void createLeg(Path root, String file) throws IOException {
            try (RandomAccessFile f = new RandomAccessFile(root.resolve(file).toFile(), "rw")) {
                f.setLength(LEG_SIZE);
            }
        }

        int mapMirrorStatus(NodeProcess on, String id) throws Exception {
            HttpResponse<String> r = on.post("/weft/devices", "{\"id\":\"" + id + "\",\"mode\":\"rw\",\"transport\":\""
                    + transport + "\",\"legs\":[{\"storage\":\"a\",\"path\":\"" + id + ".img\"},{\"storage\":\"b\","
                    + "\"path\":\"" + id + ".img\"}]}");
            if (r.statusCode() != 200) {
                System.out.printf("[drills] map %s on %s: %d %s%n", id, on.name, r.statusCode(), r.body());
            }
            return r.statusCode();
        }

        void mapMirror(NodeProcess on, String id) throws Exception {
            assertEquals(200, mapMirrorStatus(on, id), "map of the mirrored device " + id);
        }

        JsonNode device(NodeProcess on, String id) {
            try {
                HttpResponse<String> r = on.get("/weft/devices/" + id);
                return r.statusCode() == 200 ? json(r) : null;
            } catch (Exception e) {
                return null;
            }
        }

        String state(NodeProcess on, String id) {
            JsonNode d = device(on, id);
            return d == null ? "absent" : d.get("state").asText();
        }

        /** Ready with every leg in sync (what a drill needs to start from). */
        boolean ready(String id) {
            JsonNode d = device(c, id);
            if (d == null || !"ready".equals(d.get("state").asText()) || d.get("mirror") == null
                    || d.get("mirror").get("degraded").asBoolean()) {
                return false;
            }
            for (JsonNode leg : d.get("mirror").get("legs")) {
                if (!"in-sync".equals(leg.get("state").asText())) {
                    return false;
                }
            }
            return true;
        }

        List<String> fioJob(String fio, NodeProcess on, String id, String name, long offset, long size) {
            return new ArrayList<>(List.of(fio, "--name=" + id + "-" + name, "--ioengine=nbd",
                    "--uri=nbd://" + on.ready.getProperty("nbd") + "/" + id, "--rw=write", "--bs=64k",
                    "--iodepth=8", "--offset=" + offset, "--size=" + size, "--randseed=" + offset,
                    "--verify=crc32c", "--verify_fatal=1", "--verify_state_save=0"));
        }

        /** Runs fio against the current client node's export (the URI is rebuilt for a restarted client). */
        void fioOk(String label, List<String> job, String mode) throws Exception {
            List<String> cmd = new ArrayList<>(job);
            cmd.replaceAll(arg -> arg.startsWith("--uri=nbd://")
                    ? "--uri=nbd://" + c.ready.getProperty("nbd") + arg.substring(arg.lastIndexOf('/')) : arg);
            cmd.add(mode);
            Path out = dir.resolve("fio-" + label + ".log");
            Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true)
                    .redirectOutput(out.toFile()).start();
            if (!p.waitFor(WAIT.toSeconds(), TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new AssertionError("fio " + label + " did not finish:\n" + Files.readString(out));
            }
            String text = Files.readString(out);
            assertEquals(0, p.exitValue(), text);
            assertTrue(text.contains("err= 0") && !text.contains("verify:") && !text.contains("bad magic"), text);
        }

        @Test
        @Order(1)
        void randomizedDrillsKeepEveryAcknowledgedWriteWithinTheStallBound() throws Exception {
            SplittableRandom random = new SplittableRandom(SEED ^ (transport.hashCode() * 0x9E3779B97F4A7C15L));
            Map<String, NodeProcess> targets = Map.of("a", a, "b", b);
            List<Outcome> mine = new ArrayList<>();
            boolean resyncCounted = false;
            for (int i = 1; i <= DRILLS_PER_TRANSPORT; i++) {
                String fault = FAULTS.get(random.nextInt(FAULTS.size()));
                String target = random.nextBoolean() ? "a" : "b";
                long drillSeed = random.nextLong();
                long workingSet = (16L + 4 * random.nextInt(5)) << 20; // 16..32 MiB
                int queueDepth = 8 + random.nextInt(9); // 8..16
                NodeProcess node = targets.get(target);
                long pidBefore = node.refreshPid();
                await("m0 ready before drill " + i, WAIT, () -> ready("m0"));
                // No wiping between drills: the drill prefills its working set with a known generation itself.
                // Regions still marked from earlier drills (a resync may leave some): the next resync copies them too.
                long dirtyBefore = device(c, "m0").get("mirror").get("dirtyRegions").asLong();

                long t0 = System.nanoTime();
                HttpResponse<String> posted = c.post("/weft/drills", String.format(Locale.ROOT,
                        "{\"device\":\"m0\",\"fault\":\"%s\",\"target\":\"%s\",\"overwrite\":true,\"seed\":%d,"
                                + "\"queueDepth\":%d,\"workingSet\":%d,\"before\":\"400ms\",\"during\":\"1200ms\","
                                + "%s\"after\":\"400ms\",\"resyncTimeout\":\"60s\"}",
                        fault, target, drillSeed, queueDepth, workingSet, fault.equals("flap") ? FLAP_SCHEDULE : ""));
                assertEquals(202, posted.statusCode(), "POST /weft/drills: " + posted.body());
                String id = json(posted).get("id").asText();
                JsonNode[] last = new JsonNode[1];
                await("drill " + id + " (" + fault + " " + target + ") done", Duration.ofMinutes(3), () -> {
                    try {
                        last[0] = json(c.get("/weft/drills/" + id));
                        String phase = last[0].get("phase").asText();
                        return phase.equals("done") || phase.equals("failed");
                    } catch (Exception e) {
                        return false;
                    }
                });
                long wall = (System.nanoTime() - t0) / 1_000_000;
                Outcome o = judge(i, fault, target, drillSeed, workingSet, queueDepth, last[0], wall);
                List<String> problems = o.problems();
                OUTCOMES.add(o);
                mine.add(o);
                boolean canGoOn = true;
                try {
                    if (fault.equals("kill")) {
                        // The drill restarted the node from c's JVM: a new process the test has to know about.
                        await(target + " answering again after the kill drill", WAIT, () -> {
                            try {
                                return node.refreshPid() != pidBefore;
                            } catch (Exception e) {
                                return false;
                            }
                        });
                    }
                    await("three members up after drill " + id, WAIT, () -> c.upMembers() == 3);
                    if (fault.equals("kill") && "done".equals(o.phase()) && !resyncCounted) {
                        resyncCounted = true;
                        problems.addAll(resyncCopiedOnlyDirtyRegions(last[0].get("report"), target, workingSet,
                                dirtyBefore));
                    }
                    await("m0 ready with both legs in sync after drill " + id, WAIT, () -> ready("m0"));
                } catch (AssertionError e) {
                    problems.add(e.getMessage() + "; m0: " + device(c, "m0"));
                    canGoOn = false;
                }
                System.out.println(o.line());
                Path csv = dir.getParent().resolve("drills.csv");
                if (!Files.exists(csv)) {
                    Files.writeString(csv, Outcome.CSV_HEADER + "\n", StandardCharsets.UTF_8);
                }
                Files.writeString(csv, o.csv() + "\n", StandardCharsets.UTF_8, StandardOpenOption.APPEND);
                if (!problems.isEmpty()) {
                    System.out.println(last[0] == null ? "(no status)" : last[0].path("reportText").asText());
                }
                if (!canGoOn) {
                    break; // the next drill cannot start from a degraded device
                }
            }
            List<String> failures = new ArrayList<>();
            for (Outcome o : mine) {
                for (String p : o.problems()) {
                    failures.add(o.transport() + " #" + o.index() + " " + o.fault() + " " + o.target() + ": " + p);
                }
            }
            assertTrue(failures.isEmpty(), "seed " + SEED + ":\n" + String.join("\n", failures));
            assertEquals(DRILLS_PER_TRANSPORT, mine.size());
        }

        /**
         * The client-kill drill, driven from outside the client as a user runs it: {@code weft drill m0 --fault
         * client-kill} (the CLI, here in the test JVM) runs the verifying workload through c's NBD export, kills c
         * with {@code kill -9} mid-write, starts it again with its own command line, maps m0 again with its legs,
         * then reads every acknowledged write back and has c compare the legs block by block. Zero acknowledged
         * writes lost or corrupted, and the legs byte-identical: the second needs the mirror to know which regions
         * a crashed client may have left different (the activity log), or the legs differ where writes were in
         * flight at the kill.
         */
        @Test
        @Order(3)
        void aClientKilledDuringWritesLosesNoAcknowledgedWriteAndItsLegsEndIdentical() throws Exception {
            if (device(c, "m0") == null) {
                // The rdma cluster's c was restarted by the test before (Order 2) and mapped only m1 again.
                await("m0 mapped on c", WAIT, () -> {
                    try {
                        return mapMirrorStatus(c, "m0") == 200 || device(c, "m0") != null;
                    } catch (Exception e) {
                        return false;
                    }
                });
            }
            await("m0 ready before the client-kill drill", WAIT, () -> ready("m0"));
            long pidBefore = c.refreshPid();
            long drillSeed = new SplittableRandom(SEED ^ 0xC11E47L ^ transport.hashCode()).nextLong(1L << 40);
            long workingSet = 32L << 20;
            java.io.StringWriter out = new java.io.StringWriter();
            java.io.StringWriter err = new java.io.StringWriter();
            var cli = io.weft.node.cli.WeftMain.commandLine();
            cli.setOut(new java.io.PrintWriter(out, true));
            cli.setErr(new java.io.PrintWriter(err, true));
            long t0 = System.nanoTime();
            // The node left its management token in the test's runtime dir, not this user's: hand it over.
            int exit = cli.execute("drill", "m0", "--fault", "client-kill", "--overwrite", "--json",
                    "--node", c.ready.getProperty("http"), "--token", c.bearer().substring("Bearer ".length()),
                    "--seed", Long.toString(drillSeed), "--queue-depth", "16",
                    "--working-set", Long.toString(workingSet), "--before", "400ms", "--during", "1s",
                    "--after", "400ms", "--resync-timeout", "90s");
            long wall = (System.nanoTime() - t0) / 1_000_000;
            // The CLI started the new c as a child of this JVM: remember it so it is ended with the others.
            await("c answering again after the client-kill drill", WAIT, () -> {
                try {
                    return c.refreshPid() != pidBefore;
                } catch (Exception e) {
                    return false;
                }
            });
            assertFalse(out.toString().isBlank(), "weft drill printed no status (exit " + exit + "): " + err);
            JsonNode status = new com.fasterxml.jackson.databind.ObjectMapper().readTree(out.toString());
            JsonNode r = status.path("report");
            System.out.printf("[drill] %-4s client-kill of c: exit %d, %.1f s, seed %d, %s%n%s%n", transport, exit,
                    wall / 1000.0, drillSeed, status.path("faultDone").asText(), status.path("reportText").asText());
            assertEquals("done", status.path("phase").asText(), status.path("error").asText() + "\n" + err);
            List<String> problems = new ArrayList<>();
            for (String field : List.of("blocksLost", "blocksCorrupted", "blocksUnreadable", "readMismatches",
                    "requestsHung")) {
                if (r.path(field).asLong(-1) != 0) {
                    problems.add(field + " = " + r.path(field).asLong(-1));
                }
            }
            if (r.path("blocksVerified").asLong() != workingSet / 4096) {
                problems.add("verified " + r.path("blocksVerified").asLong() + " of " + workingSet / 4096 + " blocks");
            }
            if (r.path("writesAcknowledged").asLong() == 0) {
                problems.add("no write was acknowledged: the drill tested nothing");
            }
            problems.addAll(legsIdentical(r));
            assertTrue(problems.isEmpty(), "seed " + SEED + ", drill seed " + drillSeed + ": " + problems + "\n"
                    + status.path("reportText").asText());
            assertTrue(r.path("intact").asBoolean(), status.path("reportText").asText());
            assertEquals(0, exit, err.toString());
            assertTrue(status.path("faultDone").asText().contains("SIGKILL sent to c"), status.toString());
            await("m0 ready with both legs in sync after the client-kill drill", WAIT, () -> ready("m0"));
        }

        /** Reads a finished drill's status and lists what is wrong with it. */
        Outcome judge(int index, String fault, String target, long seed, long workingSet, int queueDepth,
                      JsonNode status, long wall) {
            List<String> problems = new ArrayList<>();
            String phase = status == null ? "none" : status.get("phase").asText();
            JsonNode r = status == null ? null : status.get("report");
            if (!"done".equals(phase) || r == null || r.isNull()) {
                problems.add("drill ended in phase " + phase + ": " + (status == null ? "" : status.path("error")));
                return new Outcome(transport, index, fault, target, seed, workingSet, queueDepth, phase, false, -1,
                        -1, -1, -1, -1, 0, 0, 0, 0, wall, problems);
            }
            boolean intact = r.get("intact").asBoolean();
            if (!intact) {
                problems.add(String.format(Locale.ROOT, "NOT INTACT: lost %d, corrupted %d, unreadable %d,"
                                + " read mismatches %d, hung %d", r.get("blocksLost").asLong(),
                        r.get("blocksCorrupted").asLong(), r.get("blocksUnreadable").asLong(),
                        r.get("readMismatches").asLong(), r.get("requestsHung").asLong()));
            }
            if (r.get("blocksVerified").asLong() != workingSet / 4096) {
                problems.add("verified " + r.get("blocksVerified").asLong() + " of " + workingSet / 4096 + " blocks");
            }
            double stall = r.get("longestStallMillis").asDouble();
            if (stall > STALL_BOUND_MILLIS) {
                problems.add(String.format(Locale.ROOT, "longest stall %.1f ms > %.0f ms", stall,
                        STALL_BOUND_MILLIS));
            }
            double detect = r.get("timeToDetectMillis").asDouble();
            if (detect < 0) {
                problems.add("the leg's loss was never detected");
            }
            double resync = r.get("timeToResyncMillis").asDouble();
            if (resync < 0) {
                problems.add("the leg never came back in sync");
            }
            if (fault.equals("kill") && resync >= 0) {
                problems.addAll(onlyDirtyRegionsCopied(r));
            }
            problems.addAll(legsIdentical(r));
            if (r.get("writesAcknowledged").asLong() == 0) {
                problems.add("no write was acknowledged: the drill tested nothing");
            }
            // One leg survives every fault here: the application must not see a single IO error.
            if (r.get("writesFailed").asLong() != 0 || r.get("readsFailed").asLong() != 0) {
                problems.add("IO errors reached the application with a leg left: writes failed "
                        + r.get("writesFailed").asLong() + ", reads failed " + r.get("readsFailed").asLong());
            }
            return new Outcome(transport, index, fault, target, seed, workingSet, queueDepth, phase, intact, stall,
                    r.get("stallBeforeMillis").asDouble(), detect, r.get("timeToFailoverMillis").asDouble(), resync,
                    r.get("iopsBefore").asDouble(), r.get("iopsDuring").asDouble(), r.get("iopsAfter").asDouble(),
                    r.get("requests").asLong(), wall, problems);
        }

        /**
         * The drill compared the legs block by block over the whole device (each leg read directly, after every leg
         * was back in sync) and they are byte-identical.
         */
        List<String> legsIdentical(JsonNode r) {
            List<String> problems = new ArrayList<>();
            long compared = r.path("legBytesCompared").asLong(-1);
            long differing = r.path("legDifferingBytes").asLong(-1);
            if (compared != LEG_SIZE) {
                problems.add("legs compared over " + compared + " bytes, not the whole " + LEG_SIZE + "-byte device;"
                        + " events: " + r.path("events"));
            } else if (differing != 0) {
                problems.add("LEGS DIFFER in " + differing + " bytes: " + r.path("legDifferences"));
            }
            return problems;
        }

        /**
         * Counted independently of the bitmap: the resync copies no region the drill did not write while the leg was
         * out (or that was already dirty before the fault, or in an activity-log extent the drill had not flushed when
         * the leg was dropped: the mirror marks those for a dropped leg), and the bitmap holds every region the drill
         * wrote then.
         */
        List<String> onlyDirtyRegionsCopied(JsonNode r) {
            List<String> problems = new ArrayList<>();
            long before = r.get("regionsDirtyBeforeFault").asLong();
            long atReturn = r.get("regionsDirtyAtReturn").asLong();
            long written = r.get("regionsWrittenWhileOut").asLong();
            long copied = r.get("regionsCopied").asLong();
            long unflushed = r.get("regionsUnflushedAtDrop").asLong();
            if (atReturn < 0 || written < 0 || copied < 0 || unflushed < 0) {
                problems.add("kill drill without resync counts: dirty at return " + atReturn + ", written while out "
                        + written + ", unflushed at the drop " + unflushed + ", copied " + copied);
            } else {
                if (copied > written + unflushed + before) {
                    problems.add("resync copied " + copied + " regions > " + written + " written while the leg was out"
                            + " + " + unflushed + " unflushed at its drop + " + before + " dirty before the fault");
                }
                if (written > atReturn) {
                    problems.add(written + " regions written while the leg was out > " + atReturn
                            + " dirty in the bitmap at its return");
                }
            }
            System.out.printf("[drills] %s kill: regions dirty before %d, written while out %d, unflushed at the"
                    + " drop %d, dirty at return %d, copied %d (%d bytes)%n", transport, before, written, unflushed,
                    atReturn, copied, r.get("bytesCopied").asLong());
            return problems;
        }

        /**
         * After a kill drill, the returning leg's resync: not full, every region it planned copied, as many as the
         * drill's report says were dirty at the return, and no more than the working set spans (the device is
         * 64 MiB; the workload writes only its first 16–32 MiB) plus the regions already marked before the drill.
         */
        List<String> resyncCopiedOnlyDirtyRegions(JsonNode report, String target, long workingSet,
                                                  long dirtyBefore) {
            List<String> problems = new ArrayList<>();
            long planned = -1;
            for (JsonNode e : report.get("events")) {
                Matcher m = RESYNC_STARTED.matcher(e.asText());
                if (m.find()) {
                    planned = Long.parseLong(m.group(1));
                }
            }
            JsonNode mirror = device(c, "m0").get("mirror");
            JsonNode resync = mirror.get("resync");
            long regionSize = mirror.get("regionSize").asLong();
            long spanned = (workingSet + regionSize - 1) / regionSize + dirtyBefore;
            int leg = target.equals("a") ? 0 : 1;
            if (resync.get("leg").asInt() != leg || resync.get("full").asBoolean()
                    || resync.get("regionsDone").asLong() != resync.get("regionsTotal").asLong()
                    || resync.get("regionsTotal").asLong() != planned
                    || planned < 1 || planned > spanned) {
                problems.add("resync of leg " + leg + " after the kill should copy the " + planned
                        + " dirty regions (≤ " + spanned + " of " + LEG_SIZE / regionSize + ", " + dirtyBefore
                        + " of them dirty before the drill): " + resync);
            }
            System.out.printf("[drills] %s kill of %s: resync copied %d of %d planned dirty regions (%d bytes);"
                            + " working set spans %d of %d regions (+%d dirty before the drill)%n",
                    transport, target, resync.get("regionsDone").asLong(), planned,
                    resync.get("bytesCopied").asLong(), spanned - dirtyBefore,
                    LEG_SIZE / regionSize, dirtyBefore);
            return problems;
        }
    }
}
