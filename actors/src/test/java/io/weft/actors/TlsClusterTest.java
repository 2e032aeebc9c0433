package io.weft.actors;

import static io.weft.actors.TestNodes.get;
import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Two nodes whose Artery runs over TLS (keystores made with the JDK's keytool) form a cluster and map a device. */
class TlsClusterTest {
    @TempDir
    Path tmp;

    private void keytool(String... args) throws Exception {
        List<String> cmd = new java.util.ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "keytool").toString());
        cmd.addAll(List.of(args));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        assertEquals(0, p.waitFor(), "keytool " + String.join(" ", args) + ": " + out);
    }

    @Test
    void nodesFormAClusterOverTls() throws Exception {
        Path keyStore = tmp.resolve("node.p12");
        Path cert = tmp.resolve("node.crt");
        Path trustStore = tmp.resolve("trust.p12");
        keytool("-genkeypair", "-alias", "weft", "-keyalg", "EC", "-groupname", "secp256r1", "-validity", "2",
                "-dname", "CN=weft-test", "-keystore", keyStore.toString(), "-storetype", "PKCS12",
                "-storepass", "changeit", "-keypass", "changeit");
        keytool("-exportcert", "-alias", "weft", "-keystore", keyStore.toString(), "-storepass", "changeit",
                "-file", cert.toString());
        keytool("-importcert", "-noprompt", "-alias", "weft", "-file", cert.toString(), "-keystore",
                trustStore.toString(), "-storetype", "PKCS12", "-storepass", "changeit");
        Map<String, Object> tls = new HashMap<>();
        tls.put("weft.cluster.tls.enabled", true);
        tls.put("weft.cluster.tls.key-store", keyStore.toString());
        tls.put("weft.cluster.tls.key-store-password", "changeit");
        tls.put("weft.cluster.tls.key-password", "changeit");
        tls.put("weft.cluster.tls.trust-store", trustStore.toString());
        tls.put("weft.cluster.tls.trust-store-password", "changeit");

        Path exports = Files.createDirectories(tmp.resolve("exports"));
        Files.write(exports.resolve("t.img"), new byte[1 << 16]);
        try (WeftRuntime storage = WeftRuntime.start(TestNodes.config("tls-st", List.of("storage"), exports,
                List.of(), tls))) {
            assertEquals("pekko", storage.clusterAddress().protocol());
            String seed = storage.clusterAddress().host().get() + ":" + storage.clusterAddress().port().get();
            try (WeftRuntime client = WeftRuntime.start(TestNodes.config("tls-cl", List.of("client"), null,
                    List.of(seed), tls))) {
                await("client joined over TLS", Duration.ofSeconds(30), () -> client.awaitUp(Duration.ZERO));
                Reply mapped = get(client.map(new MapSpec("t", "tls-st", "t.img", AccessMode.RO, null)));
                assertTrue(mapped.ok(), mapped.message());
                assertEquals("tls-tcp", client.system().settings().config().getString(
                        "pekko.remote.artery.transport"));
            }
        }
    }

    /**
     * weft.tls.certificates alone (a certs-init directory per node): Artery runs tls-tcp with mutual authentication,
     * two nodes of one CA form a cluster and map; a node whose certificate another CA issued never becomes a member,
     * while a node of the right CA that asks after it joins.
     */
    @Test
    void certificatesFromOneCaFormAMutuallyAuthenticatedClusterAndAnotherCaIsKeptOut() throws Exception {
        io.weft.core.tls.CertificateAuthority ca = io.weft.core.tls.CertificateAuthority.create("test");
        for (String node : List.of("st", "cl", "late")) {
            ca.writeNodeLayout(tmp.resolve(node), node, List.of());
        }
        io.weft.core.tls.CertificateAuthority.create("hostile").writeNodeLayout(tmp.resolve("x"), "x", List.of());

        Path exports = Files.createDirectories(tmp.resolve("exports"));
        Files.write(exports.resolve("t.img"), new byte[1 << 16]);
        try (WeftRuntime storage = WeftRuntime.start(TestNodes.config("st", List.of("storage"), exports,
                List.of(), Map.of("weft.tls.certificates", tmp.resolve("st").toString())))) {
            var ssl = storage.system().settings().config().getConfig("pekko.remote.artery");
            assertEquals("tls-tcp", ssl.getString("transport"));
            assertTrue(ssl.getBoolean("ssl.config-ssl-engine.require-mutual-authentication"));
            String seed = storage.clusterAddress().host().get() + ":" + storage.clusterAddress().port().get();
            try (WeftRuntime client = WeftRuntime.start(TestNodes.config("cl", List.of("client"), null,
                    List.of(seed), Map.of("weft.tls.certificates", tmp.resolve("cl").toString())))) {
                await("client joined over TLS", Duration.ofSeconds(30), () -> client.awaitUp(Duration.ZERO));
                Reply mapped = get(client.map(new MapSpec("t", "st", "t.img", AccessMode.RO, null)));
                assertTrue(mapped.ok(), mapped.message());

                try (WeftRuntime hostile = WeftRuntime.start(TestNodes.config("x", List.of("storage"), null,
                        List.of(seed), Map.of("weft.tls.certificates", tmp.resolve("x").toString())));
                     WeftRuntime late = WeftRuntime.start(TestNodes.config("late", List.of("client"), null,
                             List.of(seed), Map.of("weft.tls.certificates", tmp.resolve("late").toString())))) {
                    await("a node of the cluster's CA that asked later joined", Duration.ofSeconds(30),
                            () -> late.awaitUp(Duration.ZERO));
                    // The hostile node asked first and retries every seed-node-timeout; it is never let in.
                    assertTrue(!hostile.awaitUp(Duration.ofSeconds(3)), "a node of another CA joined");
                    var members = org.apache.pekko.cluster.typed.Cluster.get(storage.system()).state().getMembers();
                    for (var m : members) {
                        assertTrue(!m.address().equals(hostile.clusterAddress()), "member: " + m);
                    }
                }
            }
        }
    }
    /**
     * A node downed by the cluster comes back as a new incarnation over TLS too, on the same cluster port. (Here the
     * old system terminates by itself; when a lingering TLS connection holds it up, see HeldTerminationTest and
     * PartitionIT with -Dweft.it.tls=true.)
     */
    @Test
    void aDownedNodeOverTlsStartsANewIncarnationOnItsPort() throws Exception {
        io.weft.core.tls.CertificateAuthority ca = io.weft.core.tls.CertificateAuthority.create("test");
        for (String node : List.of("st", "cl")) {
            ca.writeNodeLayout(tmp.resolve(node), node, List.of());
        }
        Path exports = Files.createDirectories(tmp.resolve("exports"));
        Files.write(exports.resolve("t.img"), new byte[1 << 16]);
        try (WeftRuntime storage = WeftRuntime.start(TestNodes.config("st", List.of("storage"), exports,
                List.of(), Map.of("weft.tls.certificates", tmp.resolve("st").toString())))) {
            String seed = storage.clusterAddress().host().get() + ":" + storage.clusterAddress().port().get();
            try (WeftRuntime client = WeftRuntime.start(TestNodes.config("cl", List.of("client"), null,
                    List.of(seed), Map.of("weft.tls.certificates", tmp.resolve("cl").toString(),
                            "weft.node.rejoin.min-backoff", "200ms")))) {
                await("client joined over TLS", Duration.ofSeconds(30), () -> client.awaitUp(Duration.ZERO));
                Reply mapped = get(client.map(new MapSpec("t", "st", "t.img", AccessMode.RO, null)));
                assertTrue(mapped.ok(), mapped.message());
                var firstAddress = client.clusterAddress();
                org.apache.pekko.cluster.typed.Cluster.get(storage.system()).manager()
                        .tell(new org.apache.pekko.cluster.typed.Down(firstAddress));
                await("the downed client node's second incarnation", Duration.ofSeconds(60),
                        () -> client.incarnation() == 2);
                await("the second incarnation joined over TLS", Duration.ofSeconds(30),
                        () -> client.awaitUp(Duration.ZERO));
                assertEquals(firstAddress.port(), client.clusterAddress().port(), "same cluster port");
            }
        }
    }
}
