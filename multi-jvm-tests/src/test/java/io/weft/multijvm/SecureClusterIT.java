package io.weft.multijvm;

import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.node.cli.WeftMain;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;
import picocli.CommandLine;

/**
 * docs/security.md, "A secure three-node cluster", in three child JVMs: {@code weft certs init certs --nodes a,b,c},
 * then every node with {@code weft.tls.certificates = certs/<name>} (Artery over TLS with mutual authentication).
 * a is a storage node, b storage and client, c a client. c maps a device from a over rdma and writes and verifies
 * it with fio. Hostile nodes: x holds a certificate of another CA (its own {@code certs init}), y has no TLS at all;
 * neither ever becomes a member, while the cluster goes on serving.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class SecureClusterIT {
    private static final Duration WAIT = Duration.ofSeconds(60);
    /** How long a hostile node is watched: several join attempts (weft.cluster.seed-node-timeout is 5 s). */
    private static final Duration HOSTILE_WATCH = Duration.ofSeconds(20);

    private final List<NodeProcess> started = new ArrayList<>();
    private Path dir;
    private Path certs;
    private final int[] ports = new int[3];
    private NodeProcess a;
    private NodeProcess b;
    private NodeProcess c;
    private Fio fio;

    /**
     * The hostile nodes' management token, fixed: a node that never joins is never handed the cluster's token (nor
     * forms a cluster of its own, it names seeds), so without one it would answer the membership checks with 503.
     * Each node has a data dir of its own (as with {@code weft node}); no token file is shared.
     */
    private static final String HOSTILE_TOKEN = "weft.management.http.token = \"hostile-"
            + Long.toHexString(new java.security.SecureRandom().nextLong()) + "\"\n";

    private static void certsInit(Path into, String nodes) {
        StringWriter out = new StringWriter();
        CommandLine cli = WeftMain.commandLine();
        cli.setOut(new PrintWriter(out, true));
        cli.setErr(new PrintWriter(out, true));
        assertEquals(0, cli.execute("certs", "init", into.toString(), "--nodes", nodes), out.toString());
    }

    private String config(String name, String roles, Path certificates) throws Exception {
        Path root = Files.createDirectories(dir.resolve("data-" + name));
        return "weft.node.name = \"" + name + "\"\n"
                + "weft.node.roles = [" + roles + "]\n"
                + "weft.cluster.seed-nodes = [\"127.0.0.1:" + ports[0] + "\", \"127.0.0.1:" + ports[1]
                + "\", \"127.0.0.1:" + ports[2] + "\"]\n"
                + "weft.storage.export-roots = [\"" + root + "\"]\n"
                + "weft.management.jmx.enabled = false\n"
                + "weft.volumes = []\n"
                + "weft.rdma.provider = software\n"
                + "weft.rdma.listen = [\"127.0.0.1:0\"]\n"
                + (certificates == null ? "" : "weft.tls.certificates = \"" + certificates + "\"\n");
    }

    private boolean allSee(Set<Integer> members, NodeProcess... nodes) {
        for (NodeProcess n : nodes) {
            Membership m = Membership.of(n);
            if (m == null || !m.isExactly(members)) {
                return false;
            }
        }
        return true;
    }

    @BeforeAll
    void start() throws Exception {
        dir = Path.of(System.getProperty("weft.multijvm.dir", "target/multi-jvm"))
                .resolve("secure-" + ProcessHandle.current().pid()).toAbsolutePath();
        Files.createDirectories(dir);
        fio = new Fio(dir);
        certs = dir.resolve("certs");
        certsInit(certs, "a,b,c");
        for (int i = 0; i < 3; i++) {
            ports[i] = NodeProcess.freePort();
        }
        java.util.Arrays.sort(ports);
        // c and b first: when a (the first seed) starts, they answer that they are in no cluster and a forms it.
        c = NodeProcess.start(dir, "c", 1, config("c", "client", certs.resolve("c")), ports[2]);
        started.add(c);
        b = NodeProcess.start(dir, "b", 1, config("b", "storage, client", certs.resolve("b")), ports[1]);
        started.add(b);
        a = NodeProcess.start(dir, "a", 1, config("a", "storage", certs.resolve("a")), ports[0]);
        started.add(a);
        await("a, b and c in one cluster over TLS", WAIT,
                () -> allSee(Set.of(ports[0], ports[1], ports[2]), a, b, c));
    }

    @AfterAll
    void stopAll() {
        NodeProcess.killAll(started, dir);
    }

    @Test
    @Order(1)
    void aDeviceMappedAcrossNodesCarriesVerifiedIo() throws Exception {
        try (var f = new java.io.RandomAccessFile(dir.resolve("data-a").resolve("v.img").toFile(), "rw")) {
            f.setLength(16 << 20);
        }
        HttpResponse<String> r = c.post("/weft/devices", "{\"id\":\"d\",\"storageNode\":\"a\","
                + "\"path\":\"v.img\",\"mode\":\"rw\",\"transport\":\"rdma\"}");
        assertEquals(200, r.statusCode(), r.body());
        fio.write(c, "d", 0);
        fio.verify(c, "d", 0);
    }

    @Test
    @Order(2)
    void nodesWithACertificateOfAnotherCaOrWithoutTlsNeverJoin() throws Exception {
        Path hostileCerts = dir.resolve("hostile-certs");
        certsInit(hostileCerts, "x");
        int xPort = NodeProcess.freePort();
        NodeProcess x = NodeProcess.start(dir, "x", 1, config("x", "storage", hostileCerts.resolve("x"))
                + HOSTILE_TOKEN, xPort);
        started.add(x);
        int yPort = NodeProcess.freePort();
        NodeProcess y = NodeProcess.start(dir, "y", 1, config("y", "storage", null) + HOSTILE_TOKEN, yPort);
        started.add(y);

        Set<Integer> cluster = Set.of(ports[0], ports[1], ports[2]);
        long deadline = System.nanoTime() + HOSTILE_WATCH.toNanos();
        while (System.nanoTime() - deadline < 0) {
            for (NodeProcess member : List.of(a, b, c)) {
                Membership m = Membership.of(member);
                assertTrue(m == null || (!m.upPorts().contains(xPort) && !m.upPorts().contains(yPort)
                        && m.other().stream().noneMatch(o -> o.contains(":" + xPort) || o.contains(":" + yPort))),
                        "a hostile node got into " + member.name + "'s view: " + m);
            }
            for (NodeProcess hostile : List.of(x, y)) {
                Membership m = Membership.of(hostile);
                assertTrue(m == null || !m.upPorts().containsAll(cluster),
                        hostile.name + " sees the cluster: " + m);
            }
            // Pacing of the watch (it lasts HOSTILE_WATCH whatever happens), not a wait for something to happen.
            java.util.concurrent.locks.LockSupport.parkNanos(250_000_000L);
        }
        assertTrue(allSee(cluster, a, b, c), "the cluster itself is intact: " + Membership.of(a));
        x.kill9();
        y.kill9();
    }
}
