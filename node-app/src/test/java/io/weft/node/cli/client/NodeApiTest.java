package io.weft.node.cli.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import org.junit.jupiter.api.Test;

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
}
