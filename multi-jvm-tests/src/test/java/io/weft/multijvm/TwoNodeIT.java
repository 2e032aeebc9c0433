package io.weft.multijvm;

import static io.weft.multijvm.NodeProcess.json;
import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The README's two-node deployment: a storage node s ({@code --roles storage}) and a client node c
 * ({@code --roles client}), both naming both as seeds. s gets the lower address, so a plain keep-majority would break
 * the 1–1 tie in s's favour and c would down itself. Device d on c is mapped from s over rdma and written (verified);
 * then {@code kill -9} of s: c must stay a member (same incarnation uid) and remove s; s restarted with its own
 * command line joins c's cluster, d is ready again by itself and the data written before the kill verifies.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TwoNodeIT {
    private static final Duration WAIT = Duration.ofSeconds(60);

    private final List<NodeProcess> started = new ArrayList<>();
    private Path dir;
    private int storagePort;
    private int clientPort;
    private NodeProcess s;
    private NodeProcess c;
    private Fio fio;

    private String config(String name, String roles) throws Exception {
        Path root = Files.createDirectories(dir.resolve("data-" + name));
        return "weft.node.name = \"" + name + "\"\n"
                + "weft.node.roles = [" + roles + "]\n"
                + "weft.cluster.seed-nodes = [\"127.0.0.1:" + storagePort + "\", \"127.0.0.1:" + clientPort + "\"]\n"
                + "weft.storage.export-roots = [\"" + root + "\"]\n"
                + "weft.management.jmx.enabled = false\n"
                + "weft.volumes = []\n"
                + "weft.client.io-timeout = 3s\n"
                + "weft.rdma.provider = software\n"
                + "weft.rdma.listen = [\"127.0.0.1:0\"]\n";
    }

    @BeforeAll
    void start() throws Exception {
        dir = Path.of(System.getProperty("weft.multijvm.dir", "target/multi-jvm"))
                .resolve("two-node-" + ProcessHandle.current().pid());
        Files.createDirectories(dir);
        fio = new Fio(dir);
        int p1 = NodeProcess.freePort();
        int p2 = NodeProcess.freePort();
        storagePort = Math.min(p1, p2);
        clientPort = Math.max(p1, p2);
        // c first: when s (the first seed) starts, c answers that it is not in a cluster yet and s forms at once.
        c = NodeProcess.start(dir, "c", 1, config("c", "client"), clientPort);
        started.add(c);
        s = NodeProcess.start(dir, "s", 1, config("s", "storage"), storagePort);
        started.add(s);
        await("s and c in one cluster", WAIT, () -> bothSee(Set.of(storagePort, clientPort)));
    }

    @AfterAll
    void stopAll() {
        NodeProcess.killAll(started, dir);
    }

    private boolean bothSee(Set<Integer> ports) {
        Membership ms = Membership.of(s);
        Membership mc = Membership.of(c);
        return ms != null && mc != null && ms.isExactly(ports) && mc.isExactly(ports);
    }

    private String deviceState(String id) {
        try {
            HttpResponse<String> r = c.get("/weft/devices/" + id);
            return r.statusCode() == 200 ? json(r).get("state").asText() : "absent";
        } catch (Exception e) {
            return "unreachable";
        }
    }

    @Test
    void storageNodeKilledNeverDownsTheClientAndTheDeviceComesBackWithItsData() throws Exception {
        try (var f = new java.io.RandomAccessFile(dir.resolve("data-s").resolve("v.img").toFile(), "rw")) {
            f.setLength(16 << 20);
        }
        HttpResponse<String> r = c.post("/weft/devices", "{\"id\":\"d\",\"storageNode\":\"s\","
                + "\"path\":\"v.img\",\"mode\":\"rw\",\"transport\":\"rdma\"}");
        assertEquals(200, r.statusCode(), r.body());
        fio.write(c, "d", 0);
        String uid = Membership.of(c).selfUid();

        s.kill9();
        try {
            await("c removes the dead s and stays a member itself (same incarnation " + uid + ")", WAIT, () -> {
                Membership m = Membership.of(c);
                if (!c.process.isAlive() || (m != null && !m.selfUid().equals(uid))) {
                    return true; // fails below, with the reason
                }
                return m != null && m.isExactly(Set.of(clientPort));
            });
        } catch (AssertionError e) {
            throw new AssertionError(e.getMessage() + "; c's view: " + Membership.of(c), e);
        }
        Membership after = Membership.of(c);
        assertTrue(c.process.isAlive() && after != null && uid.equals(after.selfUid()),
                "c must stay a member of its cluster (same incarnation " + uid + "); its view: " + after
                        + "; its SBR log: " + c.logText().lines().filter(l -> l.contains("SBR took")).toList());
        assertEquals("reconnecting", deviceState("d"), "c still has its device");

        s = NodeProcess.start(dir, "s", 2, config("s", "storage"), storagePort);
        started.add(s);
        await("s rejoins c's cluster", WAIT, () -> bothSee(Set.of(storagePort, clientPort)));
        await("d ready again by itself", WAIT, () -> "ready".equals(deviceState("d")));
        fio.verify(c, "d", 0);
    }
}
