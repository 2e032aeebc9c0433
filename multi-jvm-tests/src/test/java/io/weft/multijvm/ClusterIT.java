package io.weft.multijvm;

import static io.weft.multijvm.NodeProcess.json;
import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * Three child JVMs on loopback — storage node A, storage+client node B, client node C — form a cluster, and the
 * control plane is checked from outside over HTTP (and JMX): mapping across nodes, rw exclusivity, export roots,
 * kill -9 of a storage node (device reconnecting), its restart (device remaps by itself), SIGSTOP of a storage node
 * (detected, then recovered), kill -9 of a client node (its rw mapping released).
 *
 * <p>These tests exercise the control plane; the data path across JVMs is covered by {@link TransportsIT}. Devices here
 * are mapped over the {@code control-only} transport (the control plane runs for real; IO completes with ENOTSUP). The
 * IO side of the same story — IO queued, EIO after the io-timeout, IO resuming after the remap — is covered in-JVM by
 * the actors module's TwoNodeTest over the in-process transport.
 *
 * <p>The steps share the cluster and run in order.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ClusterIT {
    private static final Duration WAIT = Duration.ofSeconds(60);

    private final List<NodeProcess> started = new ArrayList<>();
    private Path dir;
    private Path rootA;
    private Path rootB;
    private NodeProcess a;
    private NodeProcess b;
    private NodeProcess c;

    private String config(String name, String roles, Path exportRoot, List<String> seeds) {
        return ClusterNodeHocon.member(name, roles, exportRoot, seeds)
                + "weft.transport.default = control-only\n"
                + "weft.client.io-timeout = 2s\n"
                + "weft.storage.mapping-lease = 3s\n";
    }

    private NodeProcess start(String name, int incarnation, String hocon) throws Exception {
        NodeProcess n = NodeProcess.start(dir, name, incarnation, hocon, NodeProcess.freePort());
        started.add(n);
        return n;
    }

    @BeforeAll
    void formCluster() throws Exception {
        dir = Path.of(System.getProperty("weft.multijvm.dir", "target/multi-jvm"))
                .resolve("cluster-" + ProcessHandle.current().pid());
        rootA = Files.createDirectories(dir.resolve("exports-a"));
        rootB = Files.createDirectories(dir.resolve("exports-b"));
        a = start("store-a", 1, config("store-a", "storage", rootA, List.of()));
        List<String> seed = List.of(a.clusterAddress());
        b = start("store-b", 1, config("store-b", "storage, client", rootB, seed));
        // JMX operations that change state: allowed here because NodeProcess runs JMX with authentication.
        c = start("client-c", 1, config("client-c", "client", null, seed)
                + "\nweft.management.jmx.allow-changes = true");
        for (NodeProcess n : List.of(a, b, c)) {
            await(n.name + " ready", WAIT, () -> status(n, "/ready") == 200);
        }
        await("three members up", WAIT, () -> c.upMembers() == 3);
    }

    @AfterAll
    void stopAll() throws Exception {
        for (NodeProcess n : started) {
            n.stop();
        }
    }

    private static int status(NodeProcess n, String path) {
        try {
            return n.get(path).statusCode();
        } catch (Exception e) {
            return -1;
        }
    }

    private static String deviceState(NodeProcess n, String id) {
        try {
            HttpResponse<String> r = n.get("/weft/devices/" + id);
            return r.statusCode() == 200 ? json(r).get("state").asText() : "absent";
        } catch (Exception e) {
            return "unreachable";
        }
    }

    /** Reads the device's first block from inside its node; returns the status name. */
    private static String probe(NodeProcess n, String id) throws Exception {
        HttpResponse<String> r = n.post("/weft/devices/" + id + "/probe", "");
        assertEquals(200, r.statusCode(), r.body());
        return json(r).get("status").asText();
    }

    private static HttpResponse<String> map(NodeProcess on, String id, String storage, String path, String mode)
            throws Exception {
        return on.post("/weft/devices", "{\"id\":\"" + id + "\",\"storageNode\":\"" + storage + "\",\"path\":\""
                + path + "\",\"mode\":\"" + mode + "\"}");
    }

    @Test
    @Order(1)
    void mapsADeviceFromAnotherNode() throws Exception {
        HttpResponse<String> vol = c.post("/weft/volumes",
                "{\"storageNode\":\"store-a\",\"path\":\"vol.img\",\"size\":\"4MiB\"}");
        assertEquals(200, vol.statusCode(), vol.body());
        assertTrue(Files.size(rootA.resolve("vol.img")) == 4 << 20, "sparse file created on store-a's root");
        HttpResponse<String> mapped = map(c, "d1", "store-a", "vol.img", "rw");
        assertEquals(200, mapped.statusCode(), mapped.body());
        JsonNode dev = json(c.get("/weft/devices/d1"));
        assertEquals("ready", dev.get("state").asText());
        assertEquals(4 << 20, dev.get("size").asLong());
        assertEquals("control-only", dev.get("transport").asText());
        // IO reaches the path (control-only answers every request with ENOTSUP).
        assertEquals("ENOTSUP", probe(c, "d1"));
        JsonNode backends = json(a.get("/weft/backends"));
        assertEquals("client-c", backends.get(0).get("mappings").get(0).get("clientNode").asText());
        // JMX from outside the JVM (authenticated, allow-changes on): the same state, and operations work.
        String bean = "io.weft:type=Device,node=\"client-c\",name=\"d1\"";
        await("d1 MBean registered", WAIT, () -> {
            try {
                return "ready".equals(c.jmxAttribute(bean, "State"));
            } catch (Exception e) {
                return false;
            }
        });
        Object remap = c.jmxInvoke(bean, "remap");
        assertTrue(String.valueOf(remap).startsWith("ok"), String.valueOf(remap));
        await("d1 reconnected after the JMX remap", WAIT, () -> {
            try {
                return (Long) c.jmxAttribute(bean, "Reconnects") >= 1 && "ready".equals(deviceState(c, "d1"));
            } catch (Exception e) {
                return false;
            }
        });
        String backendBean = "io.weft:type=Backend,node=\"store-a\",path=\"" + rootA.toRealPath().resolve("vol.img")
                + "\"";
        await("store-a's backend MBean shows the one mapping", WAIT, () -> {
            try {
                return Integer.valueOf(1).equals(a.jmxAttribute(backendBean, "MappingCount"));
            } catch (Exception e) {
                return false;
            }
        });
    }

    @Test
    @Order(2)
    void rwIsExclusiveAndExportRootsHoldAcrossNodes() throws Exception {
        HttpResponse<String> second = map(b, "d2", "store-a", "vol.img", "rw");
        assertEquals(409, second.statusCode(), second.body());
        assertTrue(second.body().contains("client-c/d1"), second.body());
        HttpResponse<String> ro = map(b, "d3", "store-a", "vol.img", "ro");
        assertEquals(200, ro.statusCode(), ro.body());

        Files.writeString(rootB.resolve("b-only.img"), "x".repeat(4096));
        HttpResponse<String> otherRoot = map(c, "x1", "store-a", rootB.resolve("b-only.img").toString(), "ro");
        assertEquals(409, otherRoot.statusCode(), otherRoot.body());
        assertTrue(otherRoot.body().contains("outside"), otherRoot.body());
        HttpResponse<String> dotdot = map(c, "x2", "store-a", "../exports-b/b-only.img", "ro");
        assertEquals(409, dotdot.statusCode(), dotdot.body());
        assertTrue(dotdot.body().contains(".."), dotdot.body());
        Files.createSymbolicLink(rootA.resolve("link.img"), rootB.resolve("b-only.img"));
        HttpResponse<String> symlink = map(c, "x3", "store-a", "link.img", "ro");
        assertEquals(409, symlink.statusCode(), symlink.body());

        // The in-process transport cannot cross JVMs: the map fails at once and says why.
        HttpResponse<String> inprocess = c.post("/weft/devices", "{\"id\":\"x4\",\"storageNode\":\"store-a\","
                + "\"path\":\"vol.img\",\"mode\":\"ro\",\"transport\":\"inprocess\"}");
        assertEquals(409, inprocess.statusCode(), inprocess.body());
        assertTrue(inprocess.body().contains("share a JVM"), inprocess.body());
    }

    @Test
    @Order(3)
    void killedStorageNodeThenRestartedDeviceRemapsByItself() throws Exception {
        long killedAt = System.nanoTime();
        a.kill9();
        await("d1 reconnecting after kill -9 of store-a", WAIT, () -> "reconnecting".equals(deviceState(c, "d1")));
        long detected = System.nanoTime();
        await("d3 (on store-b) reconnecting too", WAIT, () -> "reconnecting".equals(deviceState(b, "d3")));
        System.out.printf("[measure] kill -9 of storage → device reconnecting: %d ms%n",
                (detected - killedAt) / 1_000_000);
        // No path: IO waits, then fails with EIO after the io-timeout (2 s here) — it never hangs.
        assertEquals("EIO", probe(c, "d1"));

        long restartAt = System.nanoTime();
        a = start("store-a", 2, config("store-a", "storage", rootA, List.of(b.clusterAddress(),
                c.clusterAddress())));
        long nodeUp = System.nanoTime();
        await("d1 ready again by itself", WAIT, () -> "ready".equals(deviceState(c, "d1")));
        long back = System.nanoTime();
        await("d3 ready again by itself", WAIT, () -> "ready".equals(deviceState(b, "d3")));
        System.out.printf("[measure] storage restart: process launch → node started %d ms; node started → device"
                + " ready %d ms%n", (nodeUp - restartAt) / 1_000_000, (back - nodeUp) / 1_000_000);
        JsonNode d1 = json(c.get("/weft/devices/d1"));
        assertTrue(d1.get("reconnects").asLong() >= 1, d1.toString());
        assertEquals("ENOTSUP", probe(c, "d1"), "IO reaches the path again");
        await("old store-a incarnation removed", WAIT, () -> c.upMembers() == 3);
    }

    @Test
    @Order(4)
    void frozenStorageNodeIsDetectedAndRecovers() throws Exception {
        Files.write(rootB.resolve("frozen.img"), new byte[1 << 16]);
        HttpResponse<String> mapped = map(c, "f1", "store-b", "frozen.img", "rw");
        assertEquals(200, mapped.statusCode(), mapped.body());
        long stoppedAt = System.nanoTime();
        b.signal("STOP");
        try {
            await("f1 reconnecting while store-b is frozen", WAIT,
                    () -> "reconnecting".equals(deviceState(c, "f1")));
            System.out.printf("[measure] SIGSTOP of storage → device reconnecting: %d ms%n",
                    (System.nanoTime() - stoppedAt) / 1_000_000);
        } finally {
            b.signal("CONT");
        }
        await("f1 ready after SIGCONT", WAIT, () -> "ready".equals(deviceState(c, "f1")));
    }

    @Test
    @Order(5)
    void killedClientNodeReleasesItsRwMapping() throws Exception {
        long killedAt = System.nanoTime();
        c.kill9();
        await("store-a dropped client-c's mapping", WAIT, () -> {
            try {
                return !a.get("/weft/backends").body().contains("client-c");
            } catch (Exception e) {
                return false;
            }
        });
        System.out.printf("[measure] kill -9 of client → rw mapping released: %d ms%n",
                (System.nanoTime() - killedAt) / 1_000_000);
        HttpResponse<String> now = map(b, "d4", "store-a", "vol.img", "rw");
        assertEquals(200, now.statusCode(), now.body());
        HttpResponse<String> metrics = b.get("/metrics");
        assertTrue(metrics.body().contains("device=\"d4\""), metrics.body());
    }
}
