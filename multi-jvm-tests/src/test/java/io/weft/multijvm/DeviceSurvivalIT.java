package io.weft.multijvm;

import static io.weft.multijvm.NodeProcess.json;
import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.weft.core.testing.RequiredTool;
import io.weft.cxl.CxlRegion;
import io.weft.cxl.layout.RegionGeometry;
import io.weft.cxl.layout.RegionHeader;
import java.io.RandomAccessFile;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Issue 15, "devices outlive membership changes": a client node that the cluster downs (its storage node died and
 * the split-brain resolver took the storage node's side, or it was left in a minority) keeps its devices and NBD
 * exports, starts a new actor-system incarnation, rejoins, and its devices remap by themselves once the storage
 * node is back — with the data written before intact and the export under the same name.
 *
 * <p>The storage node's first start forms the cluster (it names no peer, as the README's first node); every later
 * start, and every other node, names every node as a seed (storage first): a restarted storage node then finds a
 * live client's cluster, and a re-incarnated client finds the restarted storage node's. The storage node always has
 * the lower cluster port, so with two members the keep-majority tie goes to the storage side and the client is the
 * one downed (the case the issue measured). Each test runs its own nodes; logs under
 * {@code target/multi-jvm/survival-<pid>/}.
 */
class DeviceSurvivalIT {
    private static final Duration WAIT = Duration.ofSeconds(90);

    private final List<NodeProcess> started = new ArrayList<>();
    private final List<Path> regions = new ArrayList<>();
    private Path dir;
    private String fio;

    @BeforeEach
    void setUp(org.junit.jupiter.api.TestInfo info) throws Exception {
        fio = RequiredTool.require("fio", "fio").toString();
        dir = Path.of(System.getProperty("weft.multijvm.dir", "target/multi-jvm"))
                .resolve("survival-" + ProcessHandle.current().pid())
                .resolve(info.getTestMethod().orElseThrow().getName() + "-" + info.getDisplayName().hashCode());
        Files.createDirectories(dir);
    }

    @AfterEach
    void tearDown() throws Exception {
        NodeProcess.killAll(started, dir);
        for (Path region : regions) {
            Files.deleteIfExists(region);
        }
    }

    private static String config(String name, String roles, Path exportRoot, Path dataDir, List<String> seeds,
                                 Path region) {
        String hocon = ClusterNodeHocon.member(name, roles, exportRoot, seeds)
                + "weft.data-dir = \"" + dataDir + "\"\n"
                + "weft.management.jmx.enabled = false\n"
                + "weft.client.io-timeout = 3s\n"
                // Generous on a loaded CI machine: the first open of a backend (and the RDMA server's start) may take
                // long.
                + "weft.client.open-timeout = 10s\n"
                + "weft.client.map-timeout = 60s\n"
                + ClusterNodeHocon.SOFTWARE_RDMA;
        return region == null ? hocon : hocon + "weft.cxl.regions = [\"" + region + "\"]\n";
    }

    private NodeProcess start(String name, int incarnation, String hocon, int clusterPort) throws Exception {
        NodeProcess n = NodeProcess.start(dir, name, incarnation, hocon, clusterPort);
        started.add(n);
        return n;
    }

    /** {@code count} free cluster ports, ascending (the first goes to the storage node: the lower address). */
    private static int[] ascendingPorts(int count) throws Exception {
        int[] ports = new int[count];
        for (int i = 0; i < count; i++) {
            int p;
            do {
                p = NodeProcess.freePort();
            } while (contains(ports, i, p));
            ports[i] = p;
        }
        java.util.Arrays.sort(ports);
        return ports;
    }

    private static boolean contains(int[] ports, int n, int p) {
        for (int i = 0; i < n; i++) {
            if (ports[i] == p) {
                return true;
            }
        }
        return false;
    }

    private static JsonNode device(NodeProcess n, String id) {
        try {
            HttpResponse<String> r = n.get("/weft/devices/" + id);
            return r.statusCode() == 200 ? json(r) : null;
        } catch (Exception e) {
            return null;
        }
    }

    /** The device's state; "absent" when the node says it has no such device, "unreachable" when it does not answer. */
    private static String state(NodeProcess n, String id) {
        try {
            HttpResponse<String> r = n.get("/weft/devices/" + id);
            return r.statusCode() == 200 ? json(r).get("state").asText()
                    : r.statusCode() == 404 ? "absent" : "http " + r.statusCode();
        } catch (Exception e) {
            // Between two actor-system incarnations the management HTTP is not bound.
            return "unreachable";
        }
    }

    private static int incarnation(NodeProcess n) {
        try {
            JsonNode i = json(n.get("/weft/node")).get("incarnation");
            return i == null ? 1 : i.asInt();
        } catch (Exception e) {
            return -1;
        }
    }

    private static Path volume(Path root, String name) throws Exception {
        Path file = root.resolve(name);
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            f.setLength(16 << 20);
        }
        return file;
    }

    private static void map(NodeProcess client, String id, String storage, String path, String transport)
            throws Exception {
        HttpResponse<String> r = client.post("/weft/devices", "{\"id\":\"" + id + "\",\"storageNode\":\"" + storage
                + "\",\"path\":\"" + path + "\",\"mode\":\"rw\",\"transport\":\"" + transport + "\"}");
        assertEquals(200, r.statusCode(), r.body());
        JsonNode d = device(client, id);
        assertEquals("ready", d.get("state").asText(), d.toString());
        assertEquals(transport, d.get("transport").asText(), d.toString());
    }

    private static String nbdUri(NodeProcess client, String id) {
        return "nbd://" + client.ready.getProperty("nbd") + "/" + id;
    }

    /** 4 MiB written through the client's NBD export, each block with a crc32c fio can verify later. */
    private List<String> fioWrite(NodeProcess client, String id, String... extra) {
        List<String> cmd = new ArrayList<>(List.of(fio, "--name=" + id, "--ioengine=nbd",
                "--uri=" + nbdUri(client, id), "--rw=write", "--bs=64k", "--iodepth=4", "--size=4m",
                "--verify=crc32c", "--verify_fatal=1", "--verify_state_save=0"));
        cmd.addAll(List.of(extra));
        return cmd;
    }

    private void fioOk(String label, List<String> cmd) throws Exception {
        Path out = dir.resolve("fio-" + label + ".log");
        Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true)
                .redirectOutput(out.toFile()).start();
        if (!p.waitFor(WAIT.toSeconds(), TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("fio " + label + " did not finish within " + WAIT + ":\n" + Files.readString(out));
        }
        String text = Files.readString(out, StandardCharsets.UTF_8);
        assertEquals(0, p.exitValue(), "fio " + label + ":\n" + text);
        assertTrue(text.contains("err= 0") && !text.contains("verify:") && !text.contains("bad magic"),
                "fio " + label + ":\n" + text);
    }

    /** Waits until {@code pause} has passed since {@code since} (the storage node stays down that long). */
    private static void stayDown(long sinceNanos, Duration pause) {
        long until = sinceNanos + pause.toNanos();
        while (System.nanoTime() - until < 0) {
            LockSupport.parkNanos(Math.min(until - System.nanoTime(), TimeUnit.MILLISECONDS.toNanos(200)));
        }
    }

    /**
     * After the storage node came back: the device is ready again by itself, listed under the same export, the data
     * written before the kill verifies through the same NBD export name, and new IO runs.
     */
    private void assertDeviceBack(NodeProcess client, String id, String exportBefore) throws Exception {
        await(id + " ready again by itself (client " + client.log + ")", WAIT,
                () -> "ready".equals(state(client, id)));
        JsonNode listed = json(client.get("/weft/devices"));
        List<String> ids = new ArrayList<>();
        listed.forEach(d -> ids.add(d.get("id").asText()));
        assertEquals(List.of(id), ids, "GET /weft/devices: " + listed);
        assertEquals(exportBefore, device(client, id).get("export").asText(), "the export keeps its name");
        fioOk(id + "-verify-after", fioWrite(client, id, "--verify_only"));
        fioOk(id + "-write-after", fioWrite(client, id, "--offset=8m", "--do_verify=1"));
    }

    /** One storage node, one client, the storage node killed and restarted after {@code pause}. */
    private void storageKilledAndRestarted(String transport, Duration pause) throws Exception {
        Path region = null;
        if (transport.equals("cxl")) {
            region = Path.of("/dev/shm", "weft-survival-it-" + UUID.randomUUID());
            CxlRegion.format(region, RegionGeometry.small(), RegionHeader.FLAG_ENTRY_CRC).close();
            regions.add(region);
        }
        Path root = Files.createDirectories(dir.resolve("exports-s"));
        volume(root, "v.img");
        int[] ports = ascendingPorts(2);
        List<String> seeds = List.of("127.0.0.1:" + ports[0], "127.0.0.1:" + ports[1]);
        String storageConfig = config("s", "storage", root, dir.resolve("data-s"), seeds, region);
        // The first storage node of a new cluster: told to form it (no peers named), as the README's first node.
        NodeProcess s = start("s", 1, config("s", "storage", root, dir.resolve("data-s"), List.of(), region),
                ports[0]);
        NodeProcess c = start("c", 1, config("c", "client", null, dir.resolve("data-c"), seeds, region), ports[1]);
        await("two members up", WAIT, () -> c.upMembers() == 2);
        map(c, "d", "s", "v.img", transport);
        String export = device(c, "d").get("export").asText();
        assertEquals(nbdUri(c, "d"), export);
        fioOk("d-write", fioWrite(c, "d", "--do_verify=1"));

        long killedAt = System.nanoTime();
        s.kill9();
        await("d reconnecting after kill -9 of s", WAIT, () -> "reconnecting".equals(state(c, "d")));
        stayDown(killedAt, pause);
        start("s", 2, storageConfig, ports[0]);
        assertDeviceBack(c, "d", export);
        await("c rejoined: two members up", WAIT, () -> c.upMembers() == 2);
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"rdma", "cxl"})
    void storageKilledAndRestartedAfter2sDeviceComesBack(String transport) throws Exception {
        storageKilledAndRestarted(transport, Duration.ofSeconds(2));
    }

    @Test
    void storageKilledAndRestartedAfter15sDeviceComesBack() throws Exception {
        storageKilledAndRestarted("rdma", Duration.ofSeconds(15));
    }

    /**
     * Three nodes: storage a and b, client c. Both storage nodes are killed, so c is alone in a minority and downed
     * (keep-majority); it keeps its device, starts a new incarnation and, once a and b are back, rejoins and remaps.
     */
    @Test
    void clientLeftInAMinorityComesBack() throws Exception {
        Path rootA = Files.createDirectories(dir.resolve("exports-a"));
        Path rootB = Files.createDirectories(dir.resolve("exports-b"));
        volume(rootA, "v.img");
        int[] ports = ascendingPorts(3);
        List<String> seeds = List.of("127.0.0.1:" + ports[0], "127.0.0.1:" + ports[1], "127.0.0.1:" + ports[2]);
        String configA = config("a", "storage", rootA, dir.resolve("data-a"), seeds, null);
        String configB = config("b", "storage", rootB, dir.resolve("data-b"), seeds, null);
        NodeProcess a = start("a", 1, config("a", "storage", rootA, dir.resolve("data-a"), List.of(), null),
                ports[0]);
        NodeProcess b = start("b", 1, configB, ports[1]);
        NodeProcess c = start("c", 1, config("c", "client", null, dir.resolve("data-c"), seeds, null), ports[2]);
        await("three members up", WAIT, () -> c.upMembers() == 3);
        map(c, "d", "a", "v.img", "rdma");
        String export = device(c, "d").get("export").asText();
        fioOk("d-write", fioWrite(c, "d", "--do_verify=1"));

        a.kill9();
        b.kill9();
        await("d reconnecting after kill -9 of a and b", WAIT, () -> "reconnecting".equals(state(c, "d")));
        // c is in the minority, but Weft's split-brain rule keeps the side with the client (a and b are downed), so
        // c stays in its first incarnation; its device waits (docs/control-plane.md, "Split brain and writers").
        await("a and b gone from c's view (" + c.log + ")", WAIT, () -> c.upMembers() == 1);
        assertEquals("reconnecting", state(c, "d"), "c keeps its device while a and b are gone, waiting");
        start("a", 2, configA, ports[0]);
        start("b", 2, configB, ports[1]);
        assertDeviceBack(c, "d", export);
        await("a and b rejoined c: three members up", WAIT, () -> c.upMembers() == 3);
        assertEquals(1, incarnation(c), "the client in the minority was never downed");
    }
}
