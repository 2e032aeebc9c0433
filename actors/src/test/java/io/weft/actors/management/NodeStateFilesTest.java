package io.weft.actors.management;

import static io.weft.actors.TestNodes.get;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.actors.AccessMode;
import io.weft.actors.MapSpec;
import io.weft.actors.Reply;
import io.weft.actors.TestNodes;
import io.weft.actors.WeftRuntime;
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

/**
 * The data directory is an export root of its own node (node-app always adds it), and it also holds the node's own
 * state: the device record, the management token, each mirror's leg file and write-intent bitmap. None of these may
 * be mapped, created, resized or listed as a volume: a client writing into a bitmap through the fabric would make a
 * resync skip regions, one reading the token would hold the management API.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class NodeStateFilesTest {
    private static final List<String> STATE_FILES = List.of("mappings.json", "management.token", "m0.wib", "m0.legs",
            "mappings.json.tmp", "m0.legs.tmp", ".management.token123.tmp");

    private Path data;
    private WeftRuntime node;

    @BeforeAll
    void start(@TempDir Path dir) throws Exception {
        data = Files.createDirectories(dir.resolve("data"));
        node = WeftRuntime.start(TestNodes.config("solo", List.of("storage", "client"), data, List.of(),
                Map.of("weft.data-dir", data.toString())));
        assertTrue(node.awaitUp(Duration.ofSeconds(20)), "node joined itself");
        for (String name : STATE_FILES) {
            if (!Files.exists(data.resolve(name))) {
                Files.write(data.resolve(name), new byte[4096]);
            }
        }
        Files.write(data.resolve("vol.img"), new byte[4096]);
    }

    @AfterAll
    void stop() {
        node.shutdown();
    }

    @Test
    void theNodesOwnStateFilesAreNeitherMappedNorResizedNorListed() throws Exception {
        for (String name : STATE_FILES) {
            byte[] before = Files.readAllBytes(data.resolve(name));
            Reply mapped = get(node.map(new MapSpec("x-" + name.replace('.', '-'), "solo", name, AccessMode.RW,
                    null)));
            assertFalse(mapped.ok(), "mapped the node's own state file " + name);
            assertTrue(mapped.message().contains("node state"), mapped.message());
            Reply absolute = get(node.map(new MapSpec("y-" + name.replace('.', '-'), "solo",
                    data.resolve(name).toString(), AccessMode.RO, null)));
            assertFalse(absolute.ok(), "mapped the node's own state file by its absolute path " + name);
            Reply resized = get(node.resize("solo", name, 1 << 20));
            assertFalse(resized.ok(), "resized the node's own state file " + name);
            assertArrayEquals(before, Files.readAllBytes(data.resolve(name)), name + " changed");
        }
        List<String> listed = WeftHttpApi.volumes(node).stream().map(v -> Path.of(v.path()).getFileName().toString())
                .toList();
        assertTrue(listed.contains("vol.img"), "volumes: " + listed);
        for (String name : STATE_FILES) {
            assertFalse(listed.contains(name), name + " listed as a volume: " + listed);
        }
        Reply ok = get(node.map(new MapSpec("v", "solo", "vol.img", AccessMode.RO, null)));
        assertTrue(ok.ok(), ok.message());
        assertTrue(get(node.unmap("v", true)).ok());
    }

    @Test
    void aVolumeIsNotCreatedUnderANameTheNodeKeepsItsStateIn() {
        for (String name : List.of("d1.wib", "d1.legs", "d1.legs.tmp")) {
            Reply created = get(node.createVolume("solo", name, 4096));
            assertFalse(created.ok(), "created a volume named like node state: " + name);
            assertTrue(created.message().contains("node state"), created.message());
            assertFalse(Files.exists(data.resolve(name)), name);
        }
        // The same names are fine below the data directory's top level (not where the node keeps state).
        Reply nested = get(node.createVolume("solo", "vols/d1.wib", 4096));
        assertTrue(nested.ok(), nested.message());
    }
}
