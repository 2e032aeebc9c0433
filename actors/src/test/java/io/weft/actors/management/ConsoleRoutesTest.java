package io.weft.actors.management;

import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.weft.actors.TestNodes;
import io.weft.actors.WeftRuntime;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/** The console's routes on one node: its static files, {@code /weft/cluster} and the samples ring. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ConsoleRoutesTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    private WeftRuntime node;
    private URI base;
    private String bearer;

    @BeforeAll
    void start(@TempDir Path tmp) throws Exception {
        Path exports = Files.createDirectories(tmp.resolve("exports"));
        node = WeftRuntime.start(TestNodes.config("con", List.of("storage", "client"), exports, List.of(),
                Map.of("weft.management.console.sample-interval", "100ms", "weft.management.console.samples", 50,
                        "weft.management.jmx.enabled", false)));
        base = node.httpUri().orElseThrow();
        assertTrue(node.awaitUp(Duration.ofSeconds(20)), "node joined itself");
        bearer = TestNodes.bearer(node);
        Files.write(exports.resolve("v.img"), new byte[1 << 20]);
        HttpResponse<String> mapped =
                post("/weft/devices", "{\"id\":\"v\",\"storageNode\":\"con\",\"path\":\"v.img\"}");
        assertEquals(200, mapped.statusCode(), mapped.body());
    }

    @AfterAll
    void stop() {
        node.shutdown();
    }

    private HttpResponse<String> get(String path) throws Exception {
        return http.send(HttpRequest.newBuilder(base.resolve(path)).header("Authorization", bearer).GET().build(),
                HttpResponse.BodyHandlers.ofString());
    }

    private HttpResponse<String> getWithoutCredentials(String path) throws Exception {
        return http.send(HttpRequest.newBuilder(base.resolve(path)).GET().build(),
                HttpResponse.BodyHandlers.ofString());
    }

    private HttpResponse<String> post(String path, String body) throws Exception {
        return http.send(HttpRequest.newBuilder(base.resolve(path)).header("Content-Type", "application/json")
                .header("Authorization", bearer)
                .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void theDataRoutesNeedTheTokenOrASessionAsEveryOtherWeftRoute() throws Exception {
        for (String path : List.of("/weft/cluster", "/weft/samples", "/weft/devices/v/samples")) {
            HttpResponse<String> r = getWithoutCredentials(path);
            assertEquals(401, r.statusCode(), path + ": " + r.body());
        }
        HttpResponse<String> foreignHost = http.send(HttpRequest.newBuilder(base.resolve("/"))
                .header("Origin", "http://evil.example").GET().build(), HttpResponse.BodyHandlers.ofString());
        assertEquals(403, foreignHost.statusCode(), "the page keeps the Origin rule: " + foreignHost.body());
    }

    @Test
    void thePageAndItsFilesAreServedWithAPolicyThatLoadsNothingFromElsewhere() throws Exception {
        HttpResponse<String> page = getWithoutCredentials("/");
        assertEquals(200, page.statusCode());
        assertTrue(page.headers().firstValue("Content-Type").orElse("").startsWith("text/html"),
                page.headers().toString());
        assertTrue(page.body().contains("<script src=\"/console/app.js\""), page.body());
        String csp = page.headers().firstValue("Content-Security-Policy").orElse("");
        assertTrue(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"), csp);
        HttpResponse<String> js = getWithoutCredentials("/console/app.js");
        assertEquals(200, js.statusCode());
        assertTrue(js.headers().firstValue("Content-Type").orElse("").contains("javascript"), js.headers().toString());
        assertEquals(200, get("/console/app.css").statusCode());
        assertEquals(404, get("/console/nothing.js").statusCode());
    }

    @Test
    void theClusterRouteJoinsMembershipWithWhatTheMemberSaysAboutItself() throws Exception {
        JsonNode[] members = new JsonNode[1];
        await("the member's directory answered", Duration.ofSeconds(20), () -> {
            try {
                members[0] = JSON.readTree(get("/weft/cluster").body());
                return members[0].size() == 1 && members[0].get(0).get("name").asText().equals("con");
            } catch (Exception e) {
                return false;
            }
        });
        JsonNode self = members[0].get(0);
        assertEquals("Up", self.get("status").asText());
        assertTrue(self.get("reachable").asBoolean());
        assertTrue(self.get("self").asBoolean());
        assertEquals(List.of("client", "storage"), JSON.convertValue(self.get("roles"), List.class));
        assertEquals(node.transports(), JSON.convertValue(self.get("transports"), List.class));
        assertEquals(base.toString().replaceAll("/$", ""), self.get("console").asText().replaceAll("/$", ""));
        assertEquals(node.clusterAddress().toString(), self.get("address").asText());
    }

    @Test
    void theSamplesRingAnswersPerDeviceAndFromAGivenTime() throws Exception {
        JsonNode[] answer = new JsonNode[1];
        await("samples of v", Duration.ofSeconds(20), () -> {
            try {
                answer[0] = JSON.readTree(get("/weft/devices/v/samples").body());
                return answer[0].get("samples").size() >= 3;
            } catch (Exception e) {
                return false;
            }
        });
        assertEquals(100, answer[0].get("intervalMillis").asLong());
        assertEquals(50, answer[0].get("capacity").asInt());
        JsonNode samples = answer[0].get("samples");
        JsonNode last = samples.get(samples.size() - 1);
        for (String field : List.of("atMillis", "readIops", "writeIops", "readBytesPerSecond", "writeBytesPerSecond",
                "readP50Micros", "readP99Micros", "writeP50Micros", "writeP99Micros", "inFlight", "errors", "state",
                "resyncPercent")) {
            assertTrue(last.has(field), field + " in " + last);
        }
        assertEquals("ready", last.get("state").asText());
        long newest = last.get("atMillis").asLong();
        JsonNode after = JSON.readTree(get("/weft/devices/v/samples?since=" + newest).body()).get("samples");
        for (JsonNode s : after) {
            assertTrue(s.get("atMillis").asLong() > newest, s.toString());
        }
        JsonNode all = JSON.readTree(get("/weft/samples?since=" + (newest - 1)).body());
        assertEquals("con", all.get("node").asText());
        assertTrue(all.get("devices").get("v").size() >= 1, all.toString());
        assertEquals(newest, all.get("devices").get("v").get(0).get("atMillis").asLong());
        assertEquals(404, get("/weft/devices/nope/samples").statusCode());
        assertEquals(400, get("/weft/samples?since=yesterday").statusCode());
    }
}
