package io.weft.actors.management;

import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.weft.actors.DeviceSnapshot;
import io.weft.actors.DeviceState;
import io.weft.actors.TestNodes;
import io.weft.actors.WeftRuntime;
import java.lang.management.ManagementFactory;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import javax.management.MBeanServer;
import javax.management.ObjectName;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/** The HTTP API and the MBeans of one node, driven from a real HTTP client and the platform MBean server. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class HttpApiTest {
    private static final String TOKEN = "s3cret";
    private static final ObjectMapper JSON = new ObjectMapper();
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    private WeftRuntime node;
    private URI base;

    @BeforeAll
    void start(@TempDir Path tmp) throws Exception {
        Path exports = Files.createDirectories(tmp.resolve("exports"));
        node = WeftRuntime.start(TestNodes.config("web", List.of("storage", "client"), exports, List.of(),
                Map.of("weft.management.http.token", TOKEN, "weft.management.jmx.enabled", true,
                        "weft.management.jmx.allow-changes", true)));
        base = node.httpUri().orElseThrow();
        assertTrue(node.awaitUp(Duration.ofSeconds(20)), "node joined itself");
        assertTrue(base.getPort() > 0, base.toString());
    }

    @AfterAll
    void stop() {
        node.shutdown();
    }

    private HttpResponse<String> get(String path) throws Exception {
        return http.send(HttpRequest.newBuilder(base.resolve(path)).header("Authorization", "Bearer " + TOKEN)
                .GET().build(), HttpResponse.BodyHandlers.ofString());
    }

    private HttpResponse<String> post(String path, String body, String token) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(base.resolve(path))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body));
        if (token != null) {
            b.header("Authorization", "Bearer " + token);
        }
        return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void healthAndClusterRoutes() throws Exception {
        await("ready", Duration.ofSeconds(20), () -> {
            try {
                return get("/ready").statusCode() == 200;
            } catch (Exception e) {
                return false;
            }
        });
        assertEquals(200, get("/alive").statusCode());
        HttpResponse<String> members = get("/cluster/members");
        assertEquals(200, members.statusCode(), members.body());
        assertTrue(members.body().contains("\"up\"") || members.body().contains("Up"), members.body());
        JsonNode info = JSON.readTree(get("/weft/node").body());
        assertEquals("web", info.get("name").asText());
    }

    @Test
    void mutatingCallsNeedTheToken() throws Exception {
        String body = "{\"storageNode\":\"web\",\"path\":\"locked.img\",\"size\":\"1MiB\"}";
        assertEquals(401, post("/weft/volumes", body, null).statusCode());
        assertEquals(401, post("/weft/volumes", body, "wrong").statusCode());
        HttpResponse<String> ok = post("/weft/volumes", body, TOKEN);
        assertEquals(200, ok.statusCode(), ok.body());
        HttpResponse<String> again = post("/weft/volumes", body, TOKEN);
        assertEquals(409, again.statusCode(), again.body());
        assertTrue(again.body().contains("already exists"), again.body());
        assertEquals(400, post("/weft/volumes", "{not json", TOKEN).statusCode());
        assertEquals(400, post("/weft/devices", "{\"id\":\"x\"}", TOKEN).statusCode());
        HttpResponse<String> sameNodeTwice = post("/weft/devices", "{\"id\":\"m\",\"legs\":["
                + "{\"storage\":\"web\",\"path\":\"1.img\"},{\"storage\":\"web\",\"path\":\"2.img\"}]}", TOKEN);
        assertEquals(400, sameNodeTwice.statusCode(), sameNodeTwice.body());
        assertTrue(sameNodeTwice.body().contains("different storage nodes"), sameNodeTwice.body());
        assertEquals(400, post("/weft/devices", "{\"id\":\"m\",\"legs\":[{\"storage\":\"web\",\"path\":\"1.img\"}]}",
                TOKEN).statusCode());
    }

    @Test
    void mapInspectResizeRemapUnmapOverHttpAndJmx() throws Exception {
        assertEquals(200, post("/weft/volumes", "{\"storageNode\":\"web\",\"path\":\"h.img\",\"size\":1048576}",
                TOKEN).statusCode());
        HttpResponse<String> mapped = post("/weft/devices",
                "{\"id\":\"h0\",\"storageNode\":\"web\",\"path\":\"h.img\",\"mode\":\"rw\"}", TOKEN);
        assertEquals(200, mapped.statusCode(), mapped.body());
        JsonNode dev = JSON.readTree(get("/weft/devices/h0").body());
        assertEquals("ready", dev.get("state").asText());
        assertEquals(1048576, dev.get("size").asLong());
        assertEquals(404, get("/weft/devices/nope").statusCode());
        JsonNode list = JSON.readTree(get("/weft/devices").body());
        assertTrue(list.isArray() && list.size() >= 1);
        JsonNode sessions = JSON.readTree(get("/weft/sessions").body());
        assertEquals("web", sessions.get(0).get("storageNode").asText());
        JsonNode backends = JSON.readTree(get("/weft/backends").body());
        assertTrue(backends.toString().contains("h0"), backends.toString());
        HttpResponse<String> metrics = get("/metrics");
        assertEquals(200, metrics.statusCode());
        assertTrue(metrics.body().contains("weft_device_state{node=\"web\",device=\"h0\",storage_node=\"web\","
                + "state=\"ready\"} 1"), metrics.body());
        assertTrue(metrics.body().contains("weft_backend_mappings{"), metrics.body());

        HttpResponse<String> resized = post("/weft/backends/resize",
                "{\"storageNode\":\"web\",\"path\":\"h.img\",\"size\":\"2MiB\"}", TOKEN);
        assertEquals(200, resized.statusCode(), resized.body());
        await("size over HTTP", Duration.ofSeconds(10), () -> {
            try {
                return JSON.readTree(get("/weft/devices/h0").body()).get("size").asLong() == 2 << 20;
            } catch (Exception e) {
                return false;
            }
        });

        // JMX: same figures, same operations.
        MBeanServer mbs = ManagementFactory.getPlatformMBeanServer();
        ObjectName device = new ObjectName("io.weft:type=Device,node=\"web\",name=\"h0\"");
        await("device MBean registered", Duration.ofSeconds(10), () -> mbs.isRegistered(device));
        assertEquals("ready", mbs.getAttribute(device, "State"));
        assertEquals(2L << 20, mbs.getAttribute(device, "Size"));
        assertEquals(0, mbs.getAttribute(device, "LegCount"), "a single-leg device");
        assertEquals(false, mbs.getAttribute(device, "Degraded"));
        assertTrue(dev.get("mirror").isNull(), dev.toString());
        Object remap = mbs.invoke(device, "remap", new Object[0], new String[0]);
        assertTrue(String.valueOf(remap).startsWith("ok"), String.valueOf(remap));
        await("reconnected after JMX remap", Duration.ofSeconds(10),
                () -> {
                    DeviceSnapshot now = node.state().device("h0").snapshot();
                    return now.reconnects() >= 1 && now.state() == DeviceState.READY;
                });
        ObjectName nodeBean = new ObjectName("io.weft:type=Node,node=\"web\",name=\"web\"");
        assertTrue(List.of((String[]) mbs.getAttribute(nodeBean, "DeviceIds")).contains("h0"));

        JsonNode probe = JSON.readTree(post("/weft/devices/h0/probe", "", TOKEN).body());
        assertEquals("OK", probe.get("status").asText(), probe.toString());
        assertEquals(512, probe.get("bytes").asInt());
        assertEquals(404, post("/weft/devices/nope/probe", "", TOKEN).statusCode());
        assertTrue(String.valueOf(mbs.invoke(device, "probe", new Object[0], new String[0])).startsWith("OK"));

        HttpResponse<String> remapped = post("/weft/devices/h0/remap", "", TOKEN);
        assertEquals(200, remapped.statusCode(), remapped.body());
        HttpResponse<String> unmapped = post("/weft/devices/h0/unmap", "{\"force\":false}", TOKEN);
        assertEquals(200, unmapped.statusCode(), unmapped.body());
        assertEquals(404, post("/weft/devices/h0/unmap", "{}", TOKEN).statusCode());
        await("device MBean gone", Duration.ofSeconds(10), () -> !mbs.isRegistered(device));
        assertFalse(get("/weft/devices").body().contains("\"h0\""));
    }
}
