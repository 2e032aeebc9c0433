package io.weft.node.cli.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The CLI's side of the management token (issue 14 item 4): it finds the token a node on this host left in the
 * per-user runtime directory for the address it talks to, sends it on every request (reads too), lets
 * {@code --token}/{@code WEFT_TOKEN} win, waits for a joining node's token, and says what to do without one.
 */
class HostileTokenPickupTest {
    @TempDir
    Path runtime;

    private void leave(FakeNode node, String host, String token) throws Exception {
        int port = Integer.parseInt(node.address().substring(node.address().lastIndexOf(':') + 1));
        Files.writeString(runtime.resolve("management-" + host + "-" + port + ".token"), token + "\n");
    }

    @Test
    void theTokenInTheRuntimeDirIsSentOnReadsAndChanges() throws Exception {
        try (FakeNode node = new FakeNode()) {
            node.on("GET /weft/devices", 200, "[]").on("POST /weft/devices/vol0/unmap", 200, "{\"ok\":true}");
            leave(node, "127.0.0.1", "picked-up");
            NodeApi api = new NodeApi(node.address(), null, Duration.ofSeconds(10), runtime);
            api.get("/weft/devices");
            api.post("/weft/devices/vol0/unmap", NodeApi.object());
            assertEquals("Bearer picked-up", node.requests("GET", "/weft/devices").get(0).authorization());
            assertEquals("Bearer picked-up", node.requests("POST", "/weft/devices/vol0/unmap").get(0).authorization());
        }
    }

    @Test
    void localhostFindsTheLoopbackNodesTokenAndAGivenTokenWins() throws Exception {
        try (FakeNode node = new FakeNode()) {
            node.on("GET /weft/node", 200, "{}");
            leave(node, "127.0.0.1", "from-file");
            String port = node.address().substring(node.address().lastIndexOf(':') + 1);
            new NodeApi("localhost:" + port, null, Duration.ofSeconds(10), runtime).get("/weft/node");
            new NodeApi(node.address(), "given", Duration.ofSeconds(10), runtime).get("/weft/node");
            var requests = node.requests("GET", "/weft/node");
            assertEquals("Bearer from-file", requests.get(0).authorization());
            assertEquals("Bearer given", requests.get(1).authorization());
        }
    }

    @Test
    void withoutATokenTheMessageSaysWhereItLookedAndWhatToDo() throws Exception {
        try (FakeNode node = new FakeNode()) {
            node.on("GET /weft/devices", 401, "{\"ok\":false,\"message\":\"this route needs a token\"}");
            NodeApi api = new NodeApi(node.address(), null, Duration.ofSeconds(10), runtime);
            CliException e = assertThrows(CliException.class, () -> api.get("/weft/devices"));
            assertEquals(null, node.requests("GET", "/weft/devices").get(0).authorization());
            assertTrue(e.getMessage().contains("no token for " + node.address() + " in " + runtime)
                    && e.getMessage().contains("--token") && e.getMessage().contains("management.token"),
                    e.getMessage());
        }
    }

    @Test
    void aJoiningNodeWithoutTheTokenYetIsWaitedFor() throws Exception {
        try (FakeNode node = new FakeNode()) {
            node.on("GET /weft/node", 503, "{\"ok\":false,\"message\":\"this node has no management token yet: "
                    + "it receives the cluster's from the oldest member\"}");
            node.on("GET /weft/node", 200, "{\"name\":\"b\"}");
            NodeApi api = new NodeApi(node.address(), null, Duration.ofSeconds(10), runtime);
            assertEquals("b", api.get("/weft/node").path("name").asText());
            assertEquals(2, node.requests("GET", "/weft/node").size());
        }
    }
}
