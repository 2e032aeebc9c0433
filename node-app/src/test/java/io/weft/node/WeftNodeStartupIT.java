package io.weft.node;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.process.ChildJvm;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** `weft node` as a real process refusing bad settings: exit code 2, the key named, no stack trace. */
class WeftNodeStartupIT {
    @TempDir
    Path cwd;

    private void assertRefused(ChildJvm node, String expectedLine) throws InterruptedException {
        assertEquals(2, node.awaitExit(Duration.ofSeconds(60)), node.output());
        String out = node.output();
        assertTrue(out.contains(expectedLine), out);
        assertFalse(out.contains("\tat ") || out.contains("Exception"), "no stack trace:\n" + out);
        assertFalse(Files.exists(cwd.resolve("data")), "nothing created before the settings are valid");
    }

    @Test
    void anInvalidOptionValueIsNamed() throws Exception {
        try (ChildJvm node = WeftJvm.start(cwd, List.of(), "node", "--nbd-listen", "x")) {
            assertRefused(node, "weft node: weft.nbd.listen: expected HOST:PORT (or \"off\"), got \"x\"");
        }
    }

    @Test
    void anInvalidJvmSystemPropertyIsNamed() throws Exception {
        try (ChildJvm node = WeftJvm.start(cwd, List.of("-Dweft.management.http.port=many"), "node")) {
            assertRefused(node, "weft node: weft.management.http.port: expected a whole number, got \"many\"");
        }
    }

    @Test
    void anInvalidControlPlaneSettingIsNamed() throws Exception {
        try (ChildJvm node = WeftJvm.start(cwd, List.of(), "node", "--roles", "storage,bogus",
                "--cluster-port", "0", "--nbd-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0")) {
            assertRefused(node, "weft node: weft.node.roles: unknown role 'bogus' (use storage, client)");
        }
    }

    @Test
    void anInvalidKeyInTheConfigFileIsNamed() throws Exception {
        Path conf = cwd.resolve("bad.conf");
        Files.writeString(conf, "weft.volumes = [ { name = vol0, path = vol0.img, size = 1000 } ]\n");
        try (ChildJvm node = WeftJvm.start(cwd, List.of(), "node", "--config", conf.toString())) {
            assertRefused(node, "weft node: weft.volumes[0].size: must be a positive multiple of 4k");
        }
    }
}
