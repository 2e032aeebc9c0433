package io.weft.actors.management;

import static io.weft.actors.TestNodes.get;
import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.actors.AccessMode;
import io.weft.actors.MapSpec;
import io.weft.actors.Reply;
import io.weft.actors.TestNodes;
import io.weft.actors.WeftRuntime;
import java.lang.management.ManagementFactory;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import javax.management.MBeanServer;
import javax.management.ObjectName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The management token and what stands in for it (issue 14 item 4): token files (0600, data dir and runtime dir),
 * the cluster token (the oldest member's wins), the console's one-time sign-in link and session cookie under the
 * same Origin/Content-Type rules, and JMX operations refused unless allowed together with JMX authentication.
 */
class HostileManagementTest {
    private static final Duration WAIT = Duration.ofSeconds(30);

    @TempDir
    Path tmp;

    private Map<String, Object> withDirs(String name, Map<String, Object> extra) throws Exception {
        Map<String, Object> m = new HashMap<>(extra);
        m.put("weft.data-dir", Files.createDirectories(tmp.resolve(name + "-data")).toString());
        m.put("weft.management.http.runtime-dir", tmp.resolve("runtime").toString());
        return m;
    }

    private WeftRuntime start(String name, List<String> seeds, Map<String, Object> extra) throws Exception {
        Path exports = Files.createDirectories(tmp.resolve(name + "-exports"));
        return WeftRuntime.start(TestNodes.config(name, List.of("storage", "client"), exports, seeds,
                withDirs(name, extra)));
    }

    private static String hostPort(org.apache.pekko.actor.Address a) {
        return a.host().get() + ":" + a.port().get();
    }

    private static String mode(Path file) throws Exception {
        return PosixFilePermissions.toString(Files.getPosixFilePermissions(file));
    }

    @Test
    void theTokenIsGeneratedOnceKeptOwnerOnlyAndLeftForTheCli() throws Exception {
        WeftRuntime node = start("solo", List.of(), Map.of());
        Path dataFile = tmp.resolve("solo-data").resolve(ManagementToken.FILE_NAME);
        String token;
        Path runtimeFile;
        try {
            token = node.managementToken().current().orElseThrow();
            assertTrue(token.length() >= 22, "at least 128 bits in base64: " + token);
            assertEquals(token, Files.readString(dataFile).strip());
            assertEquals("rw-------", mode(dataFile));
            URI http = node.httpUri().orElseThrow();
            runtimeFile = tmp.resolve("runtime").resolve("management-127.0.0.1-" + http.getPort() + ".token");
            assertEquals(token, Files.readString(runtimeFile).strip());
            assertEquals("rw-------", mode(runtimeFile));
            assertEquals("rwx------", mode(runtimeFile.getParent()));
            // What the CLI does: find it by the address it talks to, also when it says localhost.
            assertEquals(token, ManagementToken.findForAddress(tmp.resolve("runtime"), "localhost", http.getPort())
                    .orElseThrow());
            RawHttp.Response ok = RawHttp.send(http, "GET", "/weft/devices",
                    Map.of("Authorization", "Bearer " + token), null);
            assertEquals(200, ok.status(), ok.body());
            RawHttp.Response viaLocalhost = RawHttp.send(http, "GET", "/weft/node",
                    Map.of("Host", "localhost:" + http.getPort(), "Authorization", "Bearer " + token), null);
            assertEquals(200, viaLocalhost.status(), "localhost is this loopback node's name: "
                    + viaLocalhost.body());
        } finally {
            node.shutdown();
        }
        assertFalse(Files.exists(runtimeFile), "the runtime file is removed at a clean stop");
        WeftRuntime again = start("solo", List.of(), Map.of());
        try {
            assertEquals(token, again.managementToken().current().orElseThrow(), "the data dir keeps the token");
        } finally {
            again.shutdown();
        }
    }

    @Test
    void anExplicitTokenWinsAndNoFileIsWritten() throws Exception {
        WeftRuntime node = start("explicit", List.of(), Map.of("weft.management.http.token", "given-token"));
        try {
            assertEquals("given-token", node.managementToken().current().orElseThrow());
            assertFalse(Files.exists(tmp.resolve("explicit-data").resolve(ManagementToken.FILE_NAME)));
            RawHttp.Response r = RawHttp.send(node.httpUri().orElseThrow(), "GET", "/weft/node",
                    Map.of("Authorization", "Bearer given-token"), null);
            assertEquals(200, r.status(), r.body());
        } finally {
            node.shutdown();
        }
    }

    /** One token per cluster: a joining member gets the oldest's, replacing a different token file it had. */
    @Test
    void aJoiningMemberAdoptsTheOldestMembersToken() throws Exception {
        Path joinerData = Files.createDirectories(tmp.resolve("joiner-data"));
        ManagementToken.writeOwnerOnly(joinerData.resolve(ManagementToken.FILE_NAME), "token-of-another-cluster");
        WeftRuntime oldest = start("oldest", List.of(), Map.of());
        WeftRuntime joiner = null;
        try {
            String clusterToken = oldest.managementToken().current().orElseThrow();
            joiner = start("joiner", List.of(hostPort(oldest.clusterAddress())), Map.of());
            WeftRuntime j = joiner;
            await("the joiner holds the cluster's token", WAIT,
                    () -> j.managementToken().current().orElse("").equals(clusterToken));
            assertEquals(clusterToken, Files.readString(joinerData.resolve(ManagementToken.FILE_NAME)).strip());
            assertEquals("rw-------", mode(joinerData.resolve(ManagementToken.FILE_NAME)));
            RawHttp.Response r = RawHttp.send(joiner.httpUri().orElseThrow(), "GET", "/weft/node",
                    Map.of("Authorization", "Bearer " + clusterToken), null);
            assertEquals(200, r.status(), r.body());
            RawHttp.Response old = RawHttp.send(joiner.httpUri().orElseThrow(), "GET", "/weft/node",
                    Map.of("Authorization", "Bearer token-of-another-cluster"), null);
            assertEquals(401, old.status(), old.body());
        } finally {
            if (joiner != null) {
                joiner.shutdown();
            }
            oldest.shutdown();
        }
    }

    @Test
    void theOneTimeSignInLinkWorksOnceAndItsCookieObeysTheSameRules() throws Exception {
        WeftRuntime node = start("console", List.of(), Map.of());
        try {
            URI http = node.httpUri().orElseThrow();
            String link = WeftHttpApi.signInLink(node);
            assertTrue(link.startsWith("http://127.0.0.1:" + http.getPort() + "/login?code="), link);
            String path = link.substring(link.indexOf("/login"));
            RawHttp.Response signedIn = RawHttp.send(http, "GET", path, Map.of(), null);
            assertEquals(303, signedIn.status(), signedIn.body());
            assertEquals("/", signedIn.header("Location"));
            String setCookie = signedIn.header("Set-Cookie");
            assertNotNull(setCookie, signedIn.headers().toString());
            assertTrue(setCookie.startsWith(SignIn.cookieName(http.getPort()) + "="), setCookie);
            for (String attribute : List.of("HttpOnly", "SameSite=Strict", "Path=/")) {
                assertTrue(setCookie.contains(attribute), attribute + " in " + setCookie);
            }
            String cookie = setCookie.substring(0, setCookie.indexOf(';'));

            RawHttp.Response again = RawHttp.send(http, "GET", path, Map.of(), null);
            assertEquals(401, again.status(), "a sign-in link works once: " + again.body());
            assertEquals(null, again.header("Set-Cookie"));

            RawHttp.Response devices = RawHttp.send(http, "GET", "/weft/devices", Map.of("Cookie", cookie), null);
            assertEquals(200, devices.status(), devices.body());
            Reply created = get(node.createVolume("console", "c.img", 1 << 20));
            assertTrue(created.ok(), created.message());
            assertTrue(get(node.map(new MapSpec("c0", "console", "c.img", AccessMode.RW, ""))).ok());
            RawHttp.Response crossSite = RawHttp.send(http, "POST", "/weft/devices/c0/unmap",
                    Map.of("Cookie", cookie, "Content-Type", "application/json", "Origin", "http://evil.example"),
                    "{}");
            assertEquals(403, crossSite.status(), crossSite.body());
            RawHttp.Response plain = RawHttp.send(http, "POST", "/weft/devices/c0/unmap",
                    Map.of("Cookie", cookie, "Content-Type", "text/plain"), "{}");
            assertEquals(415, plain.status(), plain.body());
            RawHttp.Response rebound = RawHttp.send(http, "GET", "/weft/devices",
                    Map.of("Cookie", cookie, "Host", "evil.example:" + http.getPort()), null);
            assertEquals(403, rebound.status(), rebound.body());
            assertNotNull(node.state().device("c0"), "still mapped");
            RawHttp.Response sameOrigin = RawHttp.send(http, "POST", "/weft/devices/c0/unmap",
                    Map.of("Cookie", cookie, "Content-Type", "application/json",
                            "Origin", "http://127.0.0.1:" + http.getPort()), "{}");
            assertEquals(200, sameOrigin.status(), "the console's own request: " + sameOrigin.body());

            RawHttp.Response forged = RawHttp.send(http, "GET", "/weft/devices",
                    Map.of("Cookie", SignIn.cookieName(http.getPort()) + "=made-up"), null);
            assertEquals(401, forged.status(), forged.body());
        } finally {
            node.shutdown();
        }
    }

    @Test
    void signInWithTheTokenForASignInPage() throws Exception {
        WeftRuntime node = start("page", List.of(), Map.of());
        try {
            URI http = node.httpUri().orElseThrow();
            String token = node.managementToken().current().orElseThrow();
            RawHttp.Response wrong = RawHttp.send(http, "POST", "/login",
                    Map.of("Content-Type", "application/json"), "{\"token\":\"guess\"}");
            assertEquals(401, wrong.status(), wrong.body());
            RawHttp.Response plain = RawHttp.send(http, "POST", "/login",
                    Map.of("Content-Type", "text/plain"), "{\"token\":\"" + token + "\"}");
            assertEquals(415, plain.status(), plain.body());
            RawHttp.Response ok = RawHttp.send(http, "POST", "/login",
                    Map.of("Content-Type", "application/json"), "{\"token\":\"" + token + "\"}");
            assertEquals(200, ok.status(), ok.body());
            String cookie = ok.header("Set-Cookie").substring(0, ok.header("Set-Cookie").indexOf(';'));
            assertEquals(200, RawHttp.send(http, "GET", "/metrics", Map.of("Cookie", cookie), null).status());
            RawHttp.Response out = RawHttp.send(http, "POST", "/logout",
                    Map.of("Cookie", cookie, "Content-Type", "application/json"), "{}");
            assertEquals(200, out.status(), out.body());
            assertEquals(401, RawHttp.send(http, "GET", "/metrics", Map.of("Cookie", cookie), null).status());
        } finally {
            node.shutdown();
        }
    }

    @Test
    void jmxChangesAreRefusedByDefaultAndNothingChanges() throws Exception {
        WeftRuntime node = start("jmx", List.of(), Map.of("weft.management.jmx.enabled", true));
        try {
            assertTrue(get(node.createVolume("jmx", "j.img", 1 << 20)).ok());
            assertTrue(get(node.map(new MapSpec("j0", "jmx", "j.img", AccessMode.RW, ""))).ok());
            MBeanServer mbs = ManagementFactory.getPlatformMBeanServer();
            ObjectName device = new ObjectName("io.weft:type=Device,node=\"jmx\",name=\"j0\"");
            await("device MBean registered", WAIT, () -> mbs.isRegistered(device));
            String unmap = String.valueOf(mbs.invoke(device, "unmap", new Object[] {true}, new String[] {"boolean"}));
            assertTrue(unmap.startsWith("error:") && unmap.contains("allow-changes"), unmap);
            ObjectName nodeBean = new ObjectName("io.weft:type=Node,node=\"jmx\",name=\"jmx\"");
            String resize = String.valueOf(mbs.invoke(nodeBean, "resize", new Object[] {"jmx", "j.img", 512L},
                    new String[] {"java.lang.String", "java.lang.String", "long"}));
            assertTrue(resize.startsWith("error:"), resize);
            assertNotNull(node.state().device("j0"), "still mapped");
            assertEquals(1 << 20, node.state().device("j0").device.info().size(), "not resized");
            assertEquals("ready", mbs.getAttribute(device, "State"), "attributes stay readable");
            assertTrue(String.valueOf(mbs.invoke(device, "probe", new Object[0], new String[0])).startsWith("OK"),
                    "probe changes nothing and stays allowed");
        } finally {
            node.shutdown();
        }
    }

    @Test
    void allowChangesDoesNotApplyToAnUnauthenticatedRemoteConnector() {
        Properties none = new Properties();
        assertTrue(JmxPublisher.refusal(false, none).isPresent());
        assertTrue(JmxPublisher.refusal(true, none).isEmpty(), "local attach only: allowed");
        Properties open = new Properties();
        open.setProperty("com.sun.management.jmxremote.port", "9999");
        open.setProperty("com.sun.management.jmxremote.authenticate", "false");
        assertTrue(JmxPublisher.refusal(true, open).orElseThrow().contains("authenticate=false"));
        Properties secured = new Properties();
        secured.setProperty("com.sun.management.jmxremote.port", "9999");
        assertTrue(JmxPublisher.refusal(true, secured).isEmpty(), "the JDK authenticates by default");
    }

    @Test
    void hostRules() {
        assertTrue(ManagementAuth.isLoopbackLiteral("127.0.0.1"));
        assertFalse(ManagementAuth.isLoopbackLiteral("localhost.evil.example"));
        assertEquals("evil.example", ManagementAuth.hostPart("Evil.Example:7626"));
        assertEquals("::1", ManagementAuth.hostPart("[::1]:7626"));
        assertNotEquals(ManagementToken.generate(), ManagementToken.generate());
    }
}
