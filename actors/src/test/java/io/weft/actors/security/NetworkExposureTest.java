package io.weft.actors.security;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.weft.actors.TestNodes;
import io.weft.actors.WeftRuntime;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class NetworkExposureTest {
    private static Config config(Map<String, Object> values) {
        return ConfigFactory.parseMap(values).withFallback(ConfigFactory.defaultReference()).resolve();
    }

    @Test
    void loopbackIsTheWhole127NetworkIpv6LoopbackAndLocalhost() {
        for (String host : List.of("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost")) {
            assertTrue(NetworkExposure.isLoopback(host), host);
        }
        for (String host : List.of("0.0.0.0", "::", "192.0.2.1", "10.0.0.1", "", "no-such-host.invalid")) {
            assertFalse(NetworkExposure.isLoopback(host), host);
        }
    }

    @Test
    void theRdmaServerBindsTheClusterHostWhenItsListIsEmpty() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> NetworkExposure.check(
                config(Map.of("weft.cluster.hostname", "192.0.2.1", "weft.cluster.tls.enabled", true))));
        assertTrue(e.getMessage().startsWith("weft.rdma.listen: 192.0.2.1 is not a loopback address"),
                e.getMessage());
        // A client-only node runs no RDMA server; its cluster transport has TLS.
        NetworkExposure.check(config(Map.of("weft.cluster.hostname", "192.0.2.1", "weft.cluster.tls.enabled", true,
                "weft.node.roles", List.of("client"))));
        // With the RDMA transport's TLS on, nothing is exposed.
        NetworkExposure.check(config(Map.of("weft.cluster.hostname", "192.0.2.1", "weft.cluster.tls.enabled", true,
                "weft.rdma.tls", "require")));
        assertEquals("10.0.0.1", NetworkExposure.host("10.0.0.1:7000"));
        assertEquals("fe80::1", NetworkExposure.host("[fe80::1]:7000"));
    }

    @Test
    void aNodeOnAWildcardAddressWithoutTlsDoesNotStart() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> WeftRuntime.start(
                TestNodes.config("exposed", List.of("client"), null, List.of(),
                        Map.of("weft.cluster.hostname", "0.0.0.0"))));
        assertTrue(e.getMessage().startsWith("weft.cluster.hostname: 0.0.0.0 is not a loopback address"),
                e.getMessage());
        assertTrue(e.getMessage().contains("--insecure"), e.getMessage());
    }

    @Test
    void anNbdListenerOffLoopbackNeedsTlsRequired() {
        // A client-only node on loopback: only its NBD listener can be exposed.
        Map<String, Object> base = Map.of("weft.node.roles", List.of("client"), "weft.nbd.listen", "0.0.0.0:10809");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> NetworkExposure.check(config(base)));
        assertTrue(e.getMessage().startsWith("weft.nbd.listen: 0.0.0.0 is not a loopback address"), e.getMessage());
        // tls = on still serves plaintext clients: not enough off loopback.
        Map<String, Object> on = new java.util.HashMap<>(base);
        on.put("weft.nbd.tls", "on");
        assertThrows(IllegalArgumentException.class, () -> NetworkExposure.check(config(on)));
        Map<String, Object> required = new java.util.HashMap<>(base);
        required.put("weft.nbd.tls", "require");
        NetworkExposure.check(config(required));
        Map<String, Object> insecure = new java.util.HashMap<>(base);
        insecure.put(NetworkExposure.INSECURE, true);
        NetworkExposure.check(config(insecure));
        NetworkExposure.check(config(Map.of("weft.node.roles", List.of("client"), "weft.nbd.listen", "127.0.0.1:0")));
        // "off" disables the TCP listener.
        NetworkExposure.check(config(Map.of("weft.node.roles", List.of("client"), "weft.nbd.listen", "off")));
    }
}
