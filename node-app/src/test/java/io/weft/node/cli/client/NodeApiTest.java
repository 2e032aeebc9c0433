package io.weft.node.cli.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.management.ManagementTokenFiles;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** How NodeApi turns a node's answers into messages. */
class NodeApiTest {
    @Test
    void aPlainTextServerErrorIsQuotedWithAHint() throws Exception {
        try (FakeNode node = new FakeNode()) {
            node.on("POST /weft/drills", 503, "The server was not able to produce a timely response to your request.\n"
                    + "Please try again in a short while!");
            NodeApi api = new NodeApi(node.address(), null, Duration.ofSeconds(10));
            CliException e = assertThrows(CliException.class, () -> api.post("/weft/drills", NodeApi.object()));
            assertEquals(CliException.FAILED, e.exitCode());
            assertTrue(e.getMessage().contains("answered POST /weft/drills with HTTP 503: The server was not able to "
                    + "produce a timely response to your request. (the node is starting, stopping or too busy"),
                    e.getMessage());
        }
    }

    @Test
    void anErrorFieldIsTheMessageAndAnHttpUrlIsANodeAddress() throws Exception {
        try (FakeNode node = new FakeNode()) {
            node.on("GET /weft/drills/drill-9", 404, "{\"error\":\"no drill drill-9 on node c\"}");
            NodeApi api = new NodeApi("http://" + node.address() + "/", null, Duration.ofSeconds(10));
            assertEquals(node.address(), api.node());
            CliException e = assertThrows(CliException.class, () -> api.get("/weft/drills/drill-9"));
            assertTrue(e.getMessage().startsWith("no drill drill-9 on node c"), e.getMessage());
        }
    }

    @TempDir
    Path runtimeDir;

    /**
     * A node that joined adopts the cluster's token (its oldest member's) a moment after start: it writes the runtime
     * file first, then switches. A CLI that read the file just before sends the old token and gets 401 although the
     * file already holds the right one: it must read the file again and retry, not fail (session 5: `weft map` right
     * after a client node joined was refused).
     */
    @Test
    void aTokenReplacedInTheRuntimeFileWhileTheRequestWasUnderwayIsReadAgainAndTheRequestRetriedOnce()
            throws Exception {
        try (FakeNode node = new FakeNode()) {
            Path file = runtimeFileOf(node);
            Files.writeString(file, "node-own-token\n");
            node.on("GET /weft/node", 401, "{\"error\":\"wrong token\"}").on("GET /weft/node", 200, "{\"name\":\"c\"}");
            adoptTokenWhileEachRequestIsUnderway(node, file);
            NodeApi api = new NodeApi(node.address(), null, Duration.ofSeconds(10), runtimeDir);
            assertEquals("c", api.get("/weft/node").path("name").asText());
            assertEquals(List.of("Bearer node-own-token", "Bearer the-clusters-token"),
                    node.requests("GET", "/weft/node").stream().map(FakeNode.Request::authorization).toList());
        }
    }

    /**
     * The same window one step earlier: the CLI found no runtime file (the joining node had no token yet) and sent
     * none; the node adopted the cluster's token before the request arrived and refused it with 401. The file now
     * holds the token: read it and retry, not fail with "the token found in ... is not the node's" — a message that
     * blamed a token the CLI never sent (session 7: the weft-rdma benchmark pair's `weft map` right after the client
     * node printed "ready").
     */
    @Test
    void aTokenThatAppearedInTheRuntimeFileWhileATokenlessRequestWasUnderwayIsReadAndTheRequestRetriedOnce()
            throws Exception {
        try (FakeNode node = new FakeNode()) {
            Path file = runtimeFileOf(node);
            node.on("GET /weft/node", 401, "{\"error\":\"no token\"}").on("GET /weft/node", 200, "{\"name\":\"c\"}");
            adoptTokenWhileEachRequestIsUnderway(node, file);
            NodeApi api = new NodeApi(node.address(), null, Duration.ofSeconds(10), runtimeDir);
            assertEquals("c", api.get("/weft/node").path("name").asText());
            assertEquals(java.util.Arrays.asList(null, "Bearer the-clusters-token"), // the first without the header
                    node.requests("GET", "/weft/node").stream().map(FakeNode.Request::authorization).toList());
        }
    }

    /** Refused without a token and still none to be found: say that none was sent, once, no retry. */
    @Test
    void aTokenlessRefusalWithNoRuntimeFileSaysNoTokenWasFound() throws Exception {
        try (FakeNode node = new FakeNode()) {
            node.on("GET /weft/node", 401, "{\"error\":\"no token\"}");
            NodeApi api = new NodeApi(node.address(), null, Duration.ofSeconds(10), runtimeDir);
            CliException e = assertThrows(CliException.class, () -> api.get("/weft/node"));
            assertTrue(e.getMessage().contains("no token for " + node.address() + " in " + runtimeDir),
                    e.getMessage());
            assertEquals(1, node.requests("GET", "/weft/node").size());
        }
    }

    private Path runtimeFileOf(FakeNode node) {
        int port = Integer.parseInt(node.address().substring(node.address().lastIndexOf(':') + 1));
        return runtimeDir.resolve(ManagementTokenFiles.runtimeFileName("127.0.0.1", port));
    }

    /** The node adopts the cluster's token (writes its runtime file) while each request is underway. */
    private static void adoptTokenWhileEachRequestIsUnderway(FakeNode node, Path file) {
        node.beforeEachAnswer(r -> {
            try {
                Files.writeString(file, "the-clusters-token\n");
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
    }

    @Test
    void aWrongTokenThatTheRuntimeFileStillHoldsIsRefusedAtOnce() throws Exception {
        try (FakeNode node = new FakeNode()) {
            int port = Integer.parseInt(node.address().substring(node.address().lastIndexOf(':') + 1));
            Files.writeString(runtimeDir.resolve(ManagementTokenFiles.runtimeFileName("127.0.0.1", port)),
                    "stale-token\n");
            node.on("GET /weft/node", 401, "{\"error\":\"wrong token\"}");
            NodeApi api = new NodeApi(node.address(), null, Duration.ofSeconds(10), runtimeDir);
            CliException e = assertThrows(CliException.class, () -> api.get("/weft/node"));
            assertTrue(e.getMessage().contains("is not the node's"), e.getMessage());
            assertEquals(1, node.requests("GET", "/weft/node").size(), "no retry when the file did not change");
        }
    }
}
