package io.weft.actors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.util.List;
import org.junit.jupiter.api.Test;

class PekkoConfigTest {
    private static Config build(String hocon) {
        return PekkoConfig.build(ConfigFactory.parseString(hocon));
    }

    @Test
    void derivesClusterSettingsFromWeftKeys() {
        Config c = build("weft.node.roles = [storage]\n"
                + "weft.cluster { hostname = \"10.0.0.5\", port = 2552, seed-nodes = [\"10.0.0.1:2552\"] }\n"
                + "weft.cluster.failure-detector.heartbeat-interval = 300ms\n"
                + "weft.cluster.seed-node-timeout = 7s\n");
        assertEquals("cluster", c.getString("pekko.actor.provider"));
        assertEquals("tcp", c.getString("pekko.remote.artery.transport"));
        assertEquals("10.0.0.5", c.getString("pekko.remote.artery.canonical.hostname"));
        assertEquals(2552, c.getInt("pekko.remote.artery.canonical.port"));
        assertEquals(List.of("storage"), c.getStringList("pekko.cluster.roles"));
        // The seeds stay Weft's: ClusterFormation joins them (Pekko would join pekko.cluster.seed-nodes by itself).
        assertEquals(List.of(), c.getStringList("pekko.cluster.seed-nodes"));
        assertEquals(List.of("10.0.0.1:2552"), c.getStringList("weft.cluster.seed-nodes"));
        assertEquals("io.weft.actors.cluster.StorageAwareDowningProvider",
                c.getString("pekko.cluster.downing-provider-class"));
        assertEquals("keep-majority", c.getString("pekko.cluster.split-brain-resolver.active-strategy"));
        assertEquals(7, c.getDuration("pekko.cluster.seed-node-timeout").toSeconds());
        assertEquals(300, c.getDuration("pekko.cluster.failure-detector.heartbeat-interval").toMillis());
        assertEquals(1000, c.getDuration("pekko.cluster.failure-detector.acceptable-heartbeat-pause").toMillis());
        assertEquals("jackson-json",
                c.getString("pekko.actor.serialization-bindings.\"io.weft.actors.WeftSerializable\""));
        assertEquals("127.0.0.1", c.getString("pekko.management.http.hostname"));
        assertEquals("io.weft.actors.DeadlineScheduler", c.getString("pekko.scheduler.implementation"));
    }

    /** Other nodes learn a member's Weft name from an internal role (io.weft.actors.cluster.ClusterDirectory). */
    @Test
    void aNamedNodeCarriesItsNameAsAClusterRole() {
        assertEquals(List.of("storage", "client", "weft-node:s1"),
                build("weft.node { name = s1, roles = [storage, client] }").getStringList("pekko.cluster.roles"));
        // Unnamed: the others name it host:port, as the node names itself.
        assertEquals(List.of("client"),
                build("weft.node.roles = [client]").getStringList("pekko.cluster.roles"));
    }

    /** Nothing registers with the Receptionist, so its replicator needs not tick often (issue 12). */
    @Test
    void theReceptionistsReplicatorIsQuiet() {
        Config c = build("");
        String ddata = "pekko.cluster.typed.receptionist.distributed-data.";
        assertEquals(30, c.getDuration(ddata + "gossip-interval").toSeconds());
        assertEquals(10, c.getDuration(ddata + "notify-subscribers-interval").toSeconds());
        assertEquals(60, c.getDuration("pekko.cluster.typed.receptionist.pruning-interval").toSeconds());
    }

    @Test
    void tlsSwitchesArteryToTlsTcpWithTheGivenStores() {
        Config c = build("weft.cluster.tls { enabled = true, key-store = /k.p12, key-store-password = a,"
                + " key-password = b, trust-store = /t.p12, trust-store-password = c }");
        assertEquals("tls-tcp", c.getString("pekko.remote.artery.transport"));
        assertEquals("/k.p12", c.getString("pekko.remote.artery.ssl.config-ssl-engine.key-store"));
        assertEquals("/t.p12", c.getString("pekko.remote.artery.ssl.config-ssl-engine.trust-store"));
        assertEquals("c", c.getString("pekko.remote.artery.ssl.config-ssl-engine.trust-store-password"));
    }

    @Test
    void weftPekkoOverridesEverythingAndUserPekkoKeysStillApplyElsewhere() {
        Config c = build("weft.pekko.cluster.split-brain-resolver.active-strategy = keep-oldest\n"
                + "pekko.loglevel = DEBUG\n"
                + "pekko.cluster.downing-provider-class = \"\"\n");
        assertEquals("keep-oldest", c.getString("pekko.cluster.split-brain-resolver.active-strategy"));
        assertEquals("DEBUG", c.getString("pekko.loglevel"));
        // Weft insists on its SBR (Pekko's with Weft's rule) unless overridden through weft.pekko.
        assertEquals("io.weft.actors.cluster.StorageAwareDowningProvider",
                c.getString("pekko.cluster.downing-provider-class"));
    }

    @Test
    void settingsRejectUnknownRoles() {
        var e = assertThrows(IllegalArgumentException.class,
                () -> WeftSettings.from(build("weft.node.roles = [storage, compute]")));
        assertTrue(e.getMessage().contains("compute"), e.getMessage());
    }
}
