package io.weft.actors.transport;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import io.weft.actors.TestNodes;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The RDMA per-peer limits are read from config, and a bad value is refused naming its key. */
class TransportSettingsTest {
    private static TransportSettings read(Map<String, Object> extra) {
        return TransportSettings.from(TestNodes.config("n", List.of("storage"), null, List.of(), extra)
                .withFallback(ConfigFactory.defaultReference()));
    }

    @Test
    void defaultsAndOverridesOfThePerPeerLimits() {
        TransportSettings d = read(Map.of());
        assertEquals(Duration.ofSeconds(5), d.rdmaHandshakeTimeout());
        assertEquals(16, d.rdmaMaxUnauthenticatedPerAddress());
        assertEquals(128, d.rdmaMaxSessionsPerClient());
        assertEquals(1L << 30, d.rdmaMaxMemoryPerClient());
        TransportSettings o = read(Map.of("weft.rdma.max-sessions-per-client", 3,
                "weft.rdma.max-memory-per-client", "64MiB"));
        assertEquals(3, o.rdmaMaxSessionsPerClient());
        assertEquals(64L << 20, o.rdmaMaxMemoryPerClient());
    }

    @Test
    void badLimitsAreRefusedNamingTheKey() {
        for (Map.Entry<String, Object> bad : Map.<String, Object>of("weft.rdma.handshake-timeout", "0s",
                "weft.rdma.max-unauthenticated-per-address", 0, "weft.rdma.max-sessions-per-client", 0,
                "weft.rdma.max-memory-per-client", 0).entrySet()) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> read(Map.of(bad.getKey(), bad.getValue())));
            assertTrue(e.getMessage().startsWith(bad.getKey()), e.getMessage());
        }
    }
}
