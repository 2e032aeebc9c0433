package io.weft.multijvm;

import static io.weft.multijvm.NodeProcess.json;
import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.weft.core.testing.RequiredTool;
import java.io.RandomAccessFile;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Issue 11's measurement as a test: three nodes (storage a and b, client c), a mirrored device over software RDMA,
 * fio writing 64 KiB blocks at queue depth 32 through c's NBD export, {@code kill -9} of c with writes in flight, c
 * started again with the same data directory, the device mapped again with the same legs. Before the activity log
 * the device was ready at once with legs that differed (about 500 KB in the run); now the restarted client
 * resyncs exactly the logged extents from one leg and the two legs' files are byte-identical once it is ready.
 */
class MirrorCrashIT {
    private static final Duration WAIT = Duration.ofSeconds(90);
    private static final long LEG_SIZE = 64L << 20;
    /** fio writes [8 MiB, 16 MiB): activity log extents 2 and 3 (4 MiB each), 8 one-MiB bitmap regions. */
    private static final long FIO_OFFSET = 8L << 20;
    private static final long FIO_SIZE = 8L << 20;

    private final List<NodeProcess> started = Collections.synchronizedList(new ArrayList<>());
    private Path dir;
    private Process fio;

    @AfterEach
    void killEverything() {
        if (fio != null) {
            fio.destroyForcibly();
        }
        if (dir != null) {
            System.out.printf("[mirror-crash] ended node processes %s%n", NodeProcess.killAll(List.copyOf(started),
                    dir));
        }
    }

    private Path dataDir(String node) {
        return dir.resolve("data-" + node);
    }

    private String config(String name, String roles, Path exportRoot, List<String> seeds) {
        return ClusterNodeHocon.of(name, roles, exportRoot, dataDir(name), seeds, "5s");
    }

    private NodeProcess start(String name, int incarnation, String hocon, int clusterPort) {
        try {
            NodeProcess n = NodeProcess.start(dir, name, incarnation, hocon, clusterPort);
            started.add(n);
            return n;
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    private static int mapMirror(NodeProcess on) throws Exception {
        HttpResponse<String> r = on.post("/weft/devices", "{\"id\":\"m\",\"mode\":\"rw\",\"transport\":\"rdma\","
                + "\"legs\":[{\"storage\":\"a\",\"path\":\"m.img\"},{\"storage\":\"b\",\"path\":\"m.img\"}]}");
        if (r.statusCode() != 200) {
            System.out.printf("[mirror-crash] map on %s: %d %s%n", on.name, r.statusCode(), r.body());
        }
        return r.statusCode();
    }

    private static JsonNode device(NodeProcess on) {
        try {
            HttpResponse<String> r = on.get("/weft/devices/m");
            return r.statusCode() == 200 ? json(r) : null;
        } catch (Exception e) {
            return null;
        }
    }

    private static boolean ready(NodeProcess c) {
        JsonNode d = device(c);
        if (d == null || !"ready".equals(d.get("state").asText()) || d.get("mirror").get("degraded").asBoolean()) {
            return false;
        }
        for (JsonNode leg : d.get("mirror").get("legs")) {
            if (!"in-sync".equals(leg.get("state").asText())) {
                return false;
            }
        }
        return true;
    }

    @Test
    void aClientKilledDuringWritesResyncsTheLoggedExtentsAndTheLegsEndIdentical() throws Exception {
        String fioPath = RequiredTool.require("fio", "fio").toString();
        dir = Path.of(System.getProperty("weft.multijvm.dir", "target/multi-jvm"))
                .resolve("mirror-crash-" + ProcessHandle.current().pid()).toAbsolutePath();
        Path rootA = Files.createDirectories(dir.resolve("exports-a"));
        Path rootB = Files.createDirectories(dir.resolve("exports-b"));
        for (Path root : List.of(rootA, rootB)) {
            try (RandomAccessFile f = new RandomAccessFile(root.resolve("m.img").toFile(), "rw")) {
                f.setLength(LEG_SIZE);
            }
        }
        NodeProcess c = start("c", 1, config("c", "client", null, List.of()), 0);
        List<String> seed = List.of(c.clusterAddress());
        CompletableFuture<NodeProcess> startA = CompletableFuture.supplyAsync(() -> start("a", 1,
                config("a", "storage", rootA, seed), 0));
        CompletableFuture<NodeProcess> startB = CompletableFuture.supplyAsync(() -> start("b", 1,
                config("b", "storage", rootB, seed), 0));
        NodeProcess a = startA.get(3, TimeUnit.MINUTES);
        startB.get(3, TimeUnit.MINUTES);
        NodeProcess client = c;
        await("three members up", WAIT, () -> client.upMembers() == 3);
        assertEquals(200, mapMirror(c), "map of the mirrored device");
        await("m ready", WAIT, () -> ready(client));

        // fio at qd32 until the client dies under it.
        Path fioLog = dir.resolve("fio.log");
        fio = new ProcessBuilder(fioPath, "--name=crash", "--ioengine=nbd",
                "--uri=nbd://" + c.ready.getProperty("nbd") + "/m", "--rw=randwrite", "--bs=64k", "--iodepth=32",
                "--offset=" + FIO_OFFSET, "--size=" + FIO_SIZE, "--time_based", "--runtime=120",
                "--randseed=11").directory(dir.toFile()).redirectErrorStream(true).redirectOutput(fioLog.toFile())
                .start();
        await("fio writing through the mirror", WAIT, () -> {
            JsonNode d = device(client);
            return d != null && d.get("io").get("writes").asLong() > 2000;
        });
        for (ProcessHandle child : ProcessHandle.of(c.pid()).map(h -> h.descendants().toList()).orElse(List.of())) {
            a.remember(child.pid());
        }
        c.kill9();
        fio.destroyForcibly();
        fio.waitFor(30, TimeUnit.SECONDS);
        long differAfterKill = Files.mismatch(rootA.resolve("m.img"), rootB.resolve("m.img"));
        System.out.printf("[mirror-crash] after kill -9 of the client: first difference between the legs at %d%n",
                differAfterKill);

        int clusterPort = Integer.parseInt(c.clusterAddress().substring(c.clusterAddress().lastIndexOf(':') + 1));
        NodeProcess c2 = start("c", 2, config("c", "client", null, List.of(a.clusterAddress())), clusterPort);
        await("a, b and the new c up", WAIT, () -> c2.upMembers() == 3);
        // The dead client's rw mappings are released by their lease; until then the map is refused (409).
        await("m mapped again on the restarted client", WAIT, () -> {
            try {
                return mapMirror(c2) == 200;
            } catch (Exception e) {
                return false;
            }
        });
        await("m ready after the recovery resync", WAIT, () -> ready(c2));

        JsonNode resync = device(c2).get("mirror").get("resync");
        System.out.printf("[mirror-crash] recovery resync: %s%n", resync);
        assertEquals(1, resync.get("leg").asInt(), "leg 0 is the source, leg 1 is resynced: " + resync);
        assertFalse(resync.get("full").asBoolean(), "not a full sync: " + resync);
        assertEquals(8, resync.get("regionsTotal").asLong(),
                "exactly the logged extents (2 x 4 MiB = 8 regions) are copied: " + resync);
        assertEquals(8, resync.get("regionsDone").asLong(), resync.toString());
        assertEquals(-1, Files.mismatch(rootA.resolve("m.img"), rootB.resolve("m.img")),
                "after the recovery resync both legs hold the same bytes");
        assertTrue(Files.readString(c2.log).contains("stopped uncleanly"),
                "the restarted client says it found an unclean stop (" + c2.log + ")");
    }
}
