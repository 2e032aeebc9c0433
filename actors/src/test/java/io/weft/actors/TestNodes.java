package io.weft.actors;

import static io.weft.testkit.Await.await;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.weft.core.io.BlockDevice;
import io.weft.core.io.IoOp;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;

/** Helpers for tests that start real nodes in this JVM (ephemeral ports, short timeouts). */
public final class TestNodes {
    private TestNodes() {
    }

    public static Config config(String name, List<String> roles, Path exportRoot, List<String> seeds,
                                Map<String, Object> extra) {
        Map<String, Object> m = new HashMap<>();
        m.put("weft.node.name", name);
        m.put("weft.node.roles", roles);
        m.put("weft.cluster.port", 0);
        m.put("weft.cluster.seed-nodes", seeds);
        m.put("weft.storage.export-roots", exportRoot == null ? List.of() : List.of(exportRoot.toString()));
        m.put("weft.storage.mapping-lease", "2s");
        m.put("weft.client.io-timeout", "1s");
        m.put("weft.client.map-timeout", "10s");
        m.put("weft.management.http.port", 0);
        m.put("weft.management.jmx.enabled", false);
        // No runtime token file in the user's directory from unit tests (HostileManagementTest sets one).
        m.put("weft.management.http.runtime-dir", "off");
        m.putAll(extra);
        return ConfigFactory.parseMap(m);
    }

    /**
     * {@code Bearer <token>} of a node's management token, once it has one (a joining node receives the cluster's
     * from its oldest member shortly after it is Up).
     */
    public static String bearer(WeftRuntime node) {
        await("node has its management token", Duration.ofSeconds(30),
                () -> node.managementToken().current().isPresent());
        return "Bearer " + node.managementToken().current().orElseThrow();
    }

    public static <T> T get(CompletionStage<T> stage) {
        try {
            return stage.toCompletableFuture().get(30, TimeUnit.SECONDS);
        } catch (Exception e) {
            throw new AssertionError("no answer: " + e, e);
        }
    }

    /** Submits one request and returns a future of its status. */
    public static CompletableFuture<Integer> submit(BlockDevice device, IoOp op, long offset, int length,
                                                    ByteBuffer buffer) {
        CompletableFuture<Integer> f = new CompletableFuture<>();
        device.submit(op, offset, length, 0, buffer, 0, (tag, status) -> f.complete(status));
        return f;
    }

    public static int io(BlockDevice device, IoOp op, long offset, int length, ByteBuffer buffer) {
        try {
            return submit(device, op, offset, length, buffer).get(30, TimeUnit.SECONDS);
        } catch (Exception e) {
            throw new AssertionError("IO did not complete: " + e, e);
        }
    }
}
