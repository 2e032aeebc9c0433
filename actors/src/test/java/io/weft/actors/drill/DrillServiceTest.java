package io.weft.actors.drill;

import static io.weft.actors.TestNodes.get;
import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.weft.actors.AccessMode;
import io.weft.actors.DeviceState;
import io.weft.actors.MapSpec;
import io.weft.actors.NodeState;
import io.weft.actors.Reply;
import io.weft.actors.TestNodes;
import io.weft.actors.WeftRuntime;
import java.io.RandomAccessFile;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.apache.pekko.actor.Address;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * The drill routes on a client node with two storage nodes in this JVM (in-process data path): request validation
 * (400 / 404 / 409), one drill per device, and a cut of one leg of a mirrored device that drops the leg, resyncs it
 * and reads every acknowledged write back intact.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class DrillServiceTest {
    private static final Duration WAIT = Duration.ofSeconds(60);
    private static final long SIZE = 16L << 20;
    private static final ObjectMapper JSON = new ObjectMapper();
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    private WeftRuntime a;
    private WeftRuntime b;
    private WeftRuntime client;
    private URI base;
    private Path dataDir;

    @BeforeAll
    void start(@TempDir Path tmp) throws Exception {
        Path exportsA = Files.createDirectories(tmp.resolve("a"));
        Path exportsB = Files.createDirectories(tmp.resolve("b"));
        for (Path p : List.of(exportsA.resolve("m.img"), exportsB.resolve("m.img"), exportsA.resolve("p.img"))) {
            try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
                f.setLength(SIZE);
            }
        }
        dataDir = Files.createDirectories(tmp.resolve("client-data"));
        a = WeftRuntime.start(TestNodes.config("a", List.of("storage"), exportsA, List.of(), Map.of()));
        String seed = hostPort(a.clusterAddress());
        b = WeftRuntime.start(TestNodes.config("b", List.of("storage"), exportsB, List.of(seed), Map.of()));
        client = WeftRuntime.start(TestNodes.config("cl", List.of("client"), null, List.of(seed),
                Map.of("weft.data-dir", dataDir.toString(), "weft.client.io-timeout", "30s")));
        base = client.httpUri().orElseThrow();
        await("client sees both storage nodes", WAIT,
                () -> get(client.storageNodes()).containsAll(List.of("a", "b")));
        Reply mirrored = get(client.map(MapSpec.mirrored("m", List.of(new MapSpec.Leg("a", "m.img"),
                new MapSpec.Leg("b", "m.img")), AccessMode.RW, null)));
        assertTrue(mirrored.ok(), mirrored.message());
        Reply plain = get(client.map(new MapSpec("p", "a", "p.img", AccessMode.RW, null)));
        assertTrue(plain.ok(), plain.message());
    }

    @AfterAll
    void stop() {
        for (WeftRuntime n : new WeftRuntime[] {client, a, b}) {
            if (n != null) {
                n.shutdown();
            }
        }
    }

    private static String hostPort(Address address) {
        return address.host().get() + ":" + address.port().get();
    }

    private HttpResponse<String> httpGet(String path) throws Exception {
        return http.send(HttpRequest.newBuilder(base.resolve(path)).header("Authorization", TestNodes.bearer(client))
                .GET().build(), HttpResponse.BodyHandlers.ofString());
    }

    private HttpResponse<String> post(String body) throws Exception {
        return http.send(HttpRequest.newBuilder(base.resolve("/weft/drills"))
                .header("Content-Type", "application/json").header("Authorization", TestNodes.bearer(client))
                .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
    }

    private HttpResponse<String> postTo(String path, String body) throws Exception {
        return http.send(HttpRequest.newBuilder(base.resolve(path))
                .header("Content-Type", "application/json").header("Authorization", TestNodes.bearer(client))
                .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
    }

    private void assertRefused(int status, String mustMention, String body) throws Exception {
        HttpResponse<String> r = post(body);
        assertEquals(status, r.statusCode(), r.body());
        String error = JSON.readTree(r.body()).path("error").asText();
        assertTrue(error.contains(mustMention), "error '" + error + "' should mention '" + mustMention + "'");
    }

    private JsonNode awaitEnd(String id) {
        JsonNode[] last = new JsonNode[1];
        await(id + " ends", WAIT, () -> {
            try {
                last[0] = JSON.readTree(httpGet("/weft/drills/" + id).body());
                String phase = last[0].path("phase").asText();
                return phase.equals("done") || phase.equals("failed");
            } catch (Exception e) {
                return false;
            }
        });
        return last[0];
    }

    @Test
    void badRequestsAreRefusedWithTheRightStatus() throws Exception {
        assertRefused(400, "fault", "{\"device\":\"m\",\"target\":\"b\",\"overwrite\":true}");
        assertRefused(400, "kill, freeze, flap or cut", "{\"device\":\"m\",\"fault\":\"melt\",\"target\":\"b\","
                + "\"overwrite\":true}");
        assertRefused(400, "overwrite", "{\"device\":\"m\",\"fault\":\"cut\",\"target\":\"b\"}");
        assertRefused(400, "path", "{\"device\":\"m\",\"fault\":\"kill\",\"target\":\"b\",\"path\":0,"
                + "\"overwrite\":true}");
        assertRefused(400, "during", "{\"device\":\"m\",\"fault\":\"cut\",\"target\":\"b\",\"during\":\"soon\","
                + "\"overwrite\":true}");
        assertRefused(404, "no device nope", "{\"device\":\"nope\",\"fault\":\"cut\",\"target\":\"b\","
                + "\"overwrite\":true}");
        assertRefused(400, "[a, b]", "{\"device\":\"m\",\"fault\":\"cut\",\"target\":\"zz\",\"overwrite\":true}");
        assertRefused(400, "exceeds the size", "{\"device\":\"m\",\"fault\":\"cut\",\"target\":\"b\","
                + "\"workingSet\":\"1GiB\",\"overwrite\":true}");
        // The in-process transport has one path per session: cutting "path 0" alone cannot be done.
        assertRefused(409, "single transport path", "{\"device\":\"m\",\"fault\":\"cut\",\"target\":\"b\","
                + "\"path\":0,\"workingSet\":\"4MiB\",\"overwrite\":true}");
        // The target runs in this JVM: signalling it would stop the client node as well.
        assertRefused(409, "runs in this JVM", "{\"device\":\"m\",\"fault\":\"freeze\",\"target\":\"b\","
                + "\"workingSet\":\"4MiB\",\"overwrite\":true}");
        assertRefused(409, "runs in this JVM", "{\"device\":\"p\",\"fault\":\"kill\",\"target\":\"a\","
                + "\"workingSet\":\"4MiB\",\"overwrite\":true}");
        assertRefused(409, "runs in this JVM", "{\"device\":\"m\",\"fault\":\"flap\",\"target\":\"b\","
                + "\"flaps\":2,\"workingSet\":\"4MiB\",\"overwrite\":true}");
        assertRefused(400, "'flaps', 'freezeFor' and 'runFor' apply to a flap only", "{\"device\":\"m\","
                + "\"fault\":\"freeze\",\"target\":\"b\",\"flaps\":2,\"overwrite\":true}");
        // A client-kill kills this node: the node cannot drive it, the CLI on its host does.
        assertRefused(400, "driven from outside it: run 'weft drill DEVICE --fault client-kill", "{\"device\":"
                + "\"m\",\"fault\":\"client-kill\",\"target\":\"b\",\"overwrite\":true}");
        assertEquals(404, httpGet("/weft/drills/drill-999").statusCode());
    }

    @Test
    void nodeInfoShowsPidAndDataDir() throws Exception {
        JsonNode node = JSON.readTree(httpGet("/weft/node").body());
        assertEquals(ProcessHandle.current().pid(), node.path("pid").asLong());
        assertEquals(dataDir.toAbsolutePath().toString(), node.path("dataDir").asText());
    }

    @Test
    void aCutOfOneMirrorLegDropsItResyncsItAndLosesNothing() throws Exception {
        NodeState.DeviceEntry dev = client.state().device("m");
        await("mirror ready", WAIT, () -> dev.snapshot().state() == DeviceState.READY);
        HttpResponse<String> accepted = post("{\"device\":\"m\",\"fault\":\"cut\",\"target\":\"b\","
                + "\"overwrite\":true,\"seed\":7,\"queueDepth\":8,\"workingSet\":\"4MiB\",\"before\":\"500ms\","
                + "\"during\":\"1s\",\"after\":\"500ms\",\"resyncTimeout\":\"30s\"}");
        assertEquals(202, accepted.statusCode(), accepted.body());
        JsonNode started = JSON.readTree(accepted.body());
        String id = started.path("id").asText();
        assertEquals("cut", started.path("fault").asText());
        assertEquals("b", started.path("target").asText());
        // One drill per device at a time.
        assertRefused(409, id, "{\"device\":\"m\",\"fault\":\"cut\",\"target\":\"a\",\"overwrite\":true}");

        JsonNode end = awaitEnd(id);
        assertEquals("done", end.path("phase").asText(), end.toString());
        JsonNode report = end.path("report");
        System.out.println(end.path("reportText").asText());
        assertTrue(report.path("intact").asBoolean(), end.path("reportText").asText());
        assertEquals(0, report.path("blocksLost").asLong());
        assertEquals(0, report.path("blocksCorrupted").asLong());
        assertTrue(report.path("writesAcknowledged").asLong() > 0, "the workload wrote");
        assertTrue(report.path("timeToDetectMillis").asDouble() >= 0, "the leg drop was seen: " + report);
        assertTrue(report.path("timeToResyncMillis").asDouble() >= 0, "the resync was seen: " + report);
        String events = report.path("events").toString();
        assertTrue(events.contains("leg 1 dropped"), events);
        assertTrue(events.contains("leg 1 in sync"), events);
        assertEquals(1.0, end.path("progress").asDouble());
        assertTrue(end.path("requests").asLong() > 0);
        assertTrue(end.path("faultDone").asText().contains("reconnected"), end.path("faultDone").asText());
        long size = dev.device.info().size();
        assertEquals(Math.min(size, 64L << 20), report.path("legBytesCompared").asLong(),
                "legs compared over the whole (small) device: " + report);
        assertEquals(0, report.path("legDifferingBytes").asLong(), end.path("reportText").asText());
        assertTrue(events.contains("2 legs byte-identical"), events);
        await("mirror whole again", WAIT, () -> dev.snapshot().state() == DeviceState.READY);

        // The same comparison on demand, each leg read through its own device.
        HttpResponse<String> compared = postTo("/weft/devices/m/compare-legs", "{\"length\":\"all\"}");
        assertEquals(200, compared.statusCode(), compared.body());
        JsonNode result = JSON.readTree(compared.body());
        assertTrue(result.path("identical").asBoolean(), compared.body());
        assertEquals(size, result.path("bytesCompared").asLong(), compared.body());
        assertEquals(2, result.path("legs").asInt(), compared.body());
        HttpResponse<String> plain = postTo("/weft/devices/p/compare-legs", "{}");
        assertEquals(409, plain.statusCode(), plain.body());
        assertTrue(plain.body().contains("is not mirrored"), plain.body());

        JsonNode list = JSON.readTree(httpGet("/weft/drills").body());
        assertTrue(list.isArray());
        assertEquals(id, list.get(list.size() - 1).path("id").asText(), "most recent last");
    }

    @Test
    void aCutOfAPlainDeviceQueuesIoUntilThePathReturns() throws Exception {
        NodeState.DeviceEntry dev = client.state().device("p");
        await("plain device ready", WAIT, () -> dev.snapshot().state() == DeviceState.READY);
        HttpResponse<String> accepted = post("{\"device\":\"p\",\"fault\":\"cut\",\"target\":\"a\","
                + "\"overwrite\":true,\"seed\":11,\"queueDepth\":4,\"workingSet\":\"2MiB\",\"before\":300,"
                + "\"during\":500,\"after\":300}");
        assertEquals(202, accepted.statusCode(), accepted.body());
        String id = JSON.readTree(accepted.body()).path("id").asText();
        JsonNode end = awaitEnd(id);
        assertEquals("done", end.path("phase").asText(), end.toString());
        JsonNode report = end.path("report");
        System.out.println(end.path("reportText").asText());
        assertTrue(report.path("intact").asBoolean(), end.path("reportText").asText());
        assertEquals(0, report.path("writesFailed").asLong(), "IO queued through the cut instead of failing");
        assertEquals(-1, report.path("legBytesCompared").asLong(), "a plain device has no legs to compare");
        assertFalse(end.path("reportText").asText().isEmpty());
        await("plain device reconnected", WAIT, () -> dev.snapshot().state() == DeviceState.READY);
    }
}
