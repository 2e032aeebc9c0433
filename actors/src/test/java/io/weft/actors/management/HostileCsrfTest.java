package io.weft.actors.management;

import static io.weft.actors.TestNodes.get;
import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.actors.AccessMode;
import io.weft.actors.DeviceState;
import io.weft.actors.MapSpec;
import io.weft.actors.Reply;
import io.weft.actors.TestNodes;
import io.weft.actors.WeftRuntime;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;

/**
 * Hostile clients of the management HTTP API (issue 14 item 4) against a node configured like the default one (no
 * token given): a web page's cross-site POST, a DNS-rebinding page's foreign Host, and a plain GET of the ids. Every
 * attempt is refused and the mapped device stays mapped. Uses nothing but HTTP, so it runs against any version.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class HostileCsrfTest {
    private WeftRuntime node;
    private URI base;

    @BeforeAll
    void start(@TempDir Path tmp) throws Exception {
        Path exports = Files.createDirectories(tmp.resolve("exports"));
        node = WeftRuntime.start(TestNodes.config("victim", List.of("storage", "client"), exports, List.of(),
                Map.of()));
        base = node.httpUri().orElseThrow();
        assertTrue(node.awaitUp(Duration.ofSeconds(20)), "node joined itself");
        Reply created = get(node.createVolume("victim", "vol0.img", 1 << 20));
        assertTrue(created.ok(), created.message());
    }

    /** Each test starts with vol0 mapped (should an attempt have got through, the next test still measures). */
    @BeforeEach
    void mapVol0() {
        if (node.state().device("vol0") == null) {
            Reply mapped = get(node.map(new MapSpec("vol0", "victim", "vol0.img", AccessMode.RW, "")));
            assertTrue(mapped.ok(), mapped.message());
        }
    }

    @AfterAll
    void stop() {
        node.shutdown();
    }

    private void assertStillMapped() {
        assertNotNull(node.state().device("vol0"), "vol0 is still mapped");
        assertEquals(DeviceState.READY, node.state().device("vol0").snapshot().state());
    }

    /** What a page on http://evil.example can send without a CORS preflight: text/plain, its Origin, no token. */
    @Test
    void csrfShapedPostIsRefusedAndNothingChanges() throws Exception {
        RawHttp.Response r = RawHttp.send(base, "POST", "/weft/devices/vol0/unmap",
                Map.of("Content-Type", "text/plain", "Origin", "http://evil.example"), "{\"force\":true}");
        assertEquals(403, r.status(), "a cross-site POST must be refused: " + r.body());
        assertTrue(r.body().contains("Origin"), r.body());
        assertStillMapped();
    }

    @Test
    void postsWithoutJsonContentTypeAreRefusedEvenWithoutOrigin() throws Exception {
        // fetch(url, {method: "POST", mode: "no-cors"}) sends no Content-Type; a form sends urlencoded.
        for (String type : new String[] {null, "text/plain", "application/x-www-form-urlencoded",
                "multipart/form-data; boundary=x"}) {
            Map<String, String> headers = type == null ? Map.of() : Map.of("Content-Type", type);
            RawHttp.Response r = RawHttp.send(base, "POST", "/weft/devices/vol0/unmap", headers,
                    "{\"force\":true}");
            assertEquals(415, r.status(), type + ": " + r.body());
        }
        assertStillMapped();
    }

    @Test
    void jsonPostWithoutTheTokenIsRefused() throws Exception {
        RawHttp.Response r = RawHttp.send(base, "POST", "/weft/devices/vol0/unmap",
                Map.of("Content-Type", "application/json"), "{\"force\":true}");
        assertEquals(401, r.status(), r.body());
        assertTrue(r.header("WWW-Authenticate") != null && r.header("WWW-Authenticate").startsWith("Bearer"),
                r.headers().toString());
        RawHttp.Response wrong = RawHttp.send(base, "POST", "/weft/backends/resize",
                Map.of("Content-Type", "application/json", "Authorization", "Bearer guessed"),
                "{\"storageNode\":\"victim\",\"path\":\"vol0.img\",\"size\":512}");
        assertEquals(401, wrong.status(), wrong.body());
        assertStillMapped();
        assertEquals(1 << 20, node.state().device("vol0").device.info().size(), "not shrunk");
    }

    /** A DNS-rebinding page reaches 127.0.0.1 under its own name: the Host header says so. */
    @Test
    void foreignHostIsRefused() throws Exception {
        RawHttp.Response read = RawHttp.send(base, "GET", "/weft/devices",
                Map.of("Host", "evil.example:" + base.getPort()), null);
        assertEquals(403, read.status(), read.body());
        assertFalse(read.body().contains("vol0"), read.body());
        RawHttp.Response write = RawHttp.send(base, "POST", "/weft/devices/vol0/unmap",
                Map.of("Host", "rebind.evil.example:" + base.getPort(), "Content-Type", "application/json"), "{}");
        assertEquals(403, write.status(), write.body());
        assertTrue(write.body().contains("Host"), write.body());
        assertStillMapped();
    }

    @Test
    void routesThatRevealIdsNeedTheToken() throws Exception {
        for (String path : List.of("/weft/devices", "/weft/devices/vol0", "/weft/sessions", "/weft/backends",
                "/weft/volumes", "/weft/node", "/weft/drills", "/metrics", "/cluster/members")) {
            RawHttp.Response r = RawHttp.send(base, "GET", path, Map.of(), null);
            assertEquals(401, r.status(), path + ": " + r.body());
            assertFalse(r.body().contains("vol0"), path + " reveals the device id: " + r.body());
        }
    }

    @Test
    void readyAndAliveStayOpen() throws Exception {
        await("ready", Duration.ofSeconds(20), () -> {
            try {
                return RawHttp.send(base, "GET", "/ready", Map.of(), null).status() == 200;
            } catch (Exception e) {
                return false;
            }
        });
        assertEquals(200, RawHttp.send(base, "GET", "/alive", Map.of(), null).status());
    }
}
