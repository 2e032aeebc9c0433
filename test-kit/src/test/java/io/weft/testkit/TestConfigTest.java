package io.weft.testkit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.Config;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

class TestConfigTest {
    @Test
    void aPathIsTheValueItIsEvenWithQuotesAndBackslashes() {
        Path odd = Path.of("/tmp/we\"ird\\dir ${x}");
        Config c = TestConfig.of("weft.tls.certificates", odd).build();
        assertEquals(odd.toString(), c.getString("weft.tls.certificates"));
    }

    @Test
    void dottedKeysAreNestedPathsAndValuesKeepTheirTypes() {
        Config c = TestConfig.of("weft.nbd.tls", "on")
                .with("weft.nbd.max-request-size", "1MiB")
                .with("weft.nbd.handshake-timeout", "2s")
                .with("weft.node.roles", List.of("storage"))
                .with("weft.cluster.port", 0)
                .build();
        assertTrue(c.getBoolean("weft.nbd.tls"));
        assertEquals(1L << 20, c.getBytes("weft.nbd.max-request-size"));
        assertEquals(Duration.ofSeconds(2), c.getDuration("weft.nbd.handshake-timeout"));
        assertEquals(List.of("storage"), c.getStringList("weft.node.roles"));
        assertEquals(0, c.getInt("weft.cluster.port"));
    }

    @Test
    void aLaterSettingOfTheSamePathReplacesTheEarlier() {
        assertEquals("off", TestConfig.of("weft.rdma.tls", "on").with("weft.rdma.tls", "off").build()
                .getString("weft.rdma.tls"));
    }
}
