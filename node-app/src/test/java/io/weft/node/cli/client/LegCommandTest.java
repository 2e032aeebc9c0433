package io.weft.node.cli.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

/** {@code weft leg add|remove|resync} against a fake node. */
class LegCommandTest extends CommandAgainstFakeNode {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void addPostsTheStorageNodeAndPath() throws Exception {
        node.on("POST /weft/devices/m0/legs", 200, "{\"message\":\"adding leg 2 c:dir/m0:x.img to m0; full sync\"}");
        assertEquals(0, weft("leg", "add", "m0", "c:dir/m0:x.img", "--node", "http://" + node.address(),
                "--token", "t0k"), err.toString());
        assertEquals("adding leg 2 c:dir/m0:x.img to m0; full sync", out.toString().trim());
        FakeNode.Request post = node.requests("POST", "/weft/devices/m0/legs").get(0);
        JsonNode body = JSON.readTree(post.body());
        assertEquals("c", body.path("storage").asText());
        assertEquals("dir/m0:x.img", body.path("path").asText(), "the node is what comes before the first ':'");
        assertEquals("Bearer t0k", post.authorization());
    }

    @Test
    void removePostsToTheLegIndex() {
        node.on("POST /weft/devices/m0/legs/1/remove", 200, "{\"message\":\"removed leg 1 of m0\"}");
        assertEquals(0, weft("leg", "remove", "m0", "1", "--node", node.address()), err.toString());
        assertEquals("removed leg 1 of m0", out.toString().trim());
        assertEquals("{}", node.requests("POST", "/weft/devices/m0/legs/1/remove").get(0).body());
    }

    @Test
    void resyncPostsFullToTheLegIndex() throws Exception {
        node.on("POST /weft/devices/m0/legs/2/resync", 200, "{\"message\":\"resyncing leg 2 (c:m0.img) of m0\"}");
        assertEquals(0, weft("leg", "resync", "m0", "2", "--full", "--node", node.address()), err.toString());
        assertEquals("resyncing leg 2 (c:m0.img) of m0", out.toString().trim());
        assertTrue(JSON.readTree(node.requests("POST", "/weft/devices/m0/legs/2/resync").get(0).body())
                .path("full").asBoolean(), "--full is sent as {\"full\":true}");
        assertEquals(0, weft("leg", "resync", "m0", "2", "--node", node.address()), err.toString());
        assertEquals(false, JSON.readTree(node.requests("POST", "/weft/devices/m0/legs/2/resync").get(1).body())
                .path("full").asBoolean(true), "without --full: {\"full\":false}");
    }

    @Test
    void aRefusalIsPrintedWithTheNodesReason() {
        node.on("POST /weft/devices/m0/legs/0/remove", 409, "{\"error\":\"leg 0 is the last in-sync leg of m0\"}");
        assertEquals(1, weft("leg", "remove", "m0", "0", "--node", node.address()));
        assertTrue(err.toString().contains("weft leg remove: leg 0 is the last in-sync leg of m0"), err.toString());
    }

    @Test
    void anUnknownDeviceNamesItsId() {
        node.on("POST /weft/devices/nope/legs", 404, "{\"error\":\"no device nope on this node\"}");
        assertEquals(1, weft("leg", "add", "nope", "c:x.img", "--node", node.address()));
        assertTrue(err.toString().contains("no device nope on this node"), err.toString());
    }

    @Test
    void malformedArgumentsAreUsageErrorsAndSendNothing() {
        assertEquals(2, weft("leg", "add", "m0", "x.img", "--node", node.address()));
        assertTrue(err.toString().contains("the leg is NODE:PATH"), err.toString());
        assertEquals(2, weft("leg", "remove", "m0", "first", "--node", node.address()));
        assertEquals(2, weft("leg", "remove", "m0", "-1", "--node", node.address()));
        assertTrue(node.requests.isEmpty(), "no request: " + node.requests);
    }
}
