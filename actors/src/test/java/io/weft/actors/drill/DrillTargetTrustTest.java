package io.weft.actors.drill;

import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.util.Map;
import org.apache.pekko.actor.Address;
import org.junit.jupiter.api.Test;

/** Which members a drill may signal: any over mutual TLS, without TLS only those reached over loopback. */
class DrillTargetTrustTest {
    private static Config artery(String transport, boolean mutual) {
        return ConfigFactory.parseMap(Map.of("pekko.remote.artery.transport", transport,
                "pekko.remote.artery.ssl.config-ssl-engine.require-mutual-authentication", mutual));
    }

    private static Address at(String host) {
        return new Address("pekko", "weft", host, 25520);
    }

    @Test
    void withoutTlsOnlyALoopbackMemberIsTrusted() {
        assertNull(DrillAdmission.unauthenticatedTarget(artery("tcp", true), at("127.0.0.1"), "a"));
        assertNull(DrillAdmission.unauthenticatedTarget(artery("tcp", true), at("127.0.0.9"), "a"));
        String refused = DrillAdmission.unauthenticatedTarget(artery("tcp", true), at("192.0.2.7"), "a");
        assertTrue(refused != null && refused.contains("weft.tls.certificates"), refused);
    }

    @Test
    void withMutualTlsEveryMemberIsTrustedAndWithoutMutualAuthNone() {
        assertNull(DrillAdmission.unauthenticatedTarget(artery("tls-tcp", true), at("192.0.2.7"), "a"));
        String refused = DrillAdmission.unauthenticatedTarget(artery("tls-tcp", false), at("192.0.2.7"), "a");
        assertTrue(refused != null && refused.contains("mutual authentication"), refused);
    }
}
