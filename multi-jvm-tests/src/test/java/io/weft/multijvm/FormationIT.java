package io.weft.multijvm;

import static io.weft.multijvm.NodeProcess.json;
import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * The README's three-node cluster ("A cluster on one machine"): nodes a, b and c with both roles, every node started
 * with the same {@code --seed} list a, b, c. Device d on c is mapped from a over rdma. Each node in turn is killed
 * with {@code kill -9} and restarted with its own command line (same address) while its old incarnation is still a
 * member: afterwards there is one cluster (every node lists the same three members, all Up, none unreachable), not
 * two, and d is ready again with IO reaching the path.
 *
 * <p>The steps share the cluster and run in order. Child logs: {@code target/multi-jvm/formation-<pid>/}.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class FormationIT {
    private static final Duration WAIT = Duration.ofSeconds(60);

    private final List<NodeProcess> started = new ArrayList<>();
    private final Map<String, NodeProcess> nodes = new LinkedHashMap<>();
    private final Map<String, Integer> ports = new LinkedHashMap<>();
    private final Map<String, Integer> incarnations = new LinkedHashMap<>();
    private Path dir;

    /** What `./weft node --name N --seed A --seed B --seed C` sets: every node names every seed, a first. */
    private String config(String name) throws Exception {
        Path root = Files.createDirectories(dir.resolve("data-" + name));
        StringBuilder s = new StringBuilder();
        s.append("weft.node.name = \"").append(name).append("\"\n");
        s.append("weft.cluster.seed-nodes = [");
        String sep = "";
        for (int port : ports.values()) {
            s.append(sep).append("\"127.0.0.1:").append(port).append('"');
            sep = ", ";
        }
        s.append("]\n");
        s.append("weft.storage.export-roots = [\"").append(root).append("\"]\n");
        s.append("weft.management.jmx.enabled = false\n");
        s.append("weft.volumes = []\n");
        s.append("weft.client.io-timeout = 3s\n");
        s.append("weft.rdma.provider = software\n");
        s.append("weft.rdma.listen = [\"127.0.0.1:0\"]\n");
        return s.toString();
    }

    private NodeProcess start(String name) throws Exception {
        int incarnation = incarnations.merge(name, 1, Integer::sum);
        NodeProcess n = NodeProcess.start(dir, name, incarnation, config(name), ports.get(name));
        started.add(n);
        nodes.put(name, n);
        return n;
    }

    @BeforeAll
    void formCluster() throws Exception {
        dir = Path.of(System.getProperty("weft.multijvm.dir", "target/multi-jvm"))
                .resolve("formation-" + ProcessHandle.current().pid());
        for (String name : List.of("a", "b", "c")) {
            ports.put(name, NodeProcess.freePort());
        }
        for (String name : ports.keySet()) {
            start(name);
        }
        awaitOneCluster("three nodes started");
        try (var f = new java.io.RandomAccessFile(dir.resolve("data-a").resolve("shared.img").toFile(), "rw")) {
            f.setLength(16 << 20);
        }
        HttpResponse<String> r = nodes.get("c").post("/weft/devices", "{\"id\":\"d\",\"storageNode\":\"a\","
                + "\"path\":\"shared.img\",\"mode\":\"rw\",\"transport\":\"rdma\"}");
        assertEquals(200, r.statusCode(), r.body());
        assertEquals("OK", probe("d"));
    }

    @AfterAll
    void stopAll() {
        NodeProcess.killAll(started, dir);
    }

    /** Every node lists the same three members, all Up and reachable. */
    private void awaitOneCluster(String when) {
        Set<Integer> expected = new TreeSet<>(ports.values());
        try {
            await("one cluster " + when + ": every node sees exactly " + expected + " Up", WAIT,
                    () -> nodes.values().stream().allMatch(n -> {
                        Membership m = Membership.of(n);
                        return m != null && m.isExactly(expected);
                    }));
        } catch (AssertionError e) {
            StringBuilder views = new StringBuilder(e.getMessage()).append("; views:");
            nodes.forEach((name, n) -> views.append("\n  ").append(name).append(" (port ").append(ports.get(name))
                    .append("): ").append(Membership.of(n)));
            throw new AssertionError(views.toString(), e);
        }
    }

    private String deviceState(String id) {
        try {
            HttpResponse<String> r = nodes.get("c").get("/weft/devices/" + id);
            return r.statusCode() == 200 ? json(r).get("state").asText() : "absent";
        } catch (Exception e) {
            return "unreachable";
        }
    }

    /** Reads the device's first block on c; returns the status name. */
    private String probe(String id) throws Exception {
        HttpResponse<String> r = nodes.get("c").post("/weft/devices/" + id + "/probe", "");
        assertEquals(200, r.statusCode(), r.body());
        return json(r).get("status").asText();
    }

    private void killAndRestart(String name) throws Exception {
        nodes.get(name).kill9();
        // Restarted at once, with the same command line: its old incarnation is still a member (unreachable).
        start(name);
        awaitOneCluster("after kill -9 and restart of " + name);
    }

    @Test
    @Order(1)
    void firstSeedKilledAndRestartedRejoinsTheCluster() throws Exception {
        killAndRestart("a");
        await("d ready again after a's restart (state " + deviceState("d") + ")", WAIT,
                () -> "ready".equals(deviceState("d")));
        assertEquals("OK", probe("d"), "IO reaches a again");
    }

    @Test
    @Order(2)
    void secondSeedKilledAndRestartedRejoinsTheCluster() throws Exception {
        killAndRestart("b");
        assertEquals("ready", deviceState("d"));
        assertEquals("OK", probe("d"));
    }

    @Test
    @Order(3)
    void clientNodeKilledAndRestartedRejoinsTheCluster() throws Exception {
        killAndRestart("c");
    }
}
