package io.weft.node.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class SettingsLoaderTest {
    private static final Path CWD = Path.of("/srv/weft-test");

    @TempDir
    Path tmp;

    private static NodeSettings parse(Optional<Path> file, Map<String, String> dashD, Map<String, String> cli) {
        return SettingsLoader.parse(SettingsLoader.load(file, dashD, cli), CWD);
    }

    private static NodeSettings parseD(Map<String, String> dashD) {
        return parse(Optional.empty(), dashD, Map.of());
    }

    private Path writeConfig(String hocon) throws IOException {
        Path file = tmp.resolve("node.conf");
        Files.writeString(file, hocon);
        return file;
    }

    private NodeSettings parseFile(String hocon) throws IOException {
        return parse(Optional.of(writeConfig(hocon)), Map.of(), Map.of());
    }

    @Test
    void defaultsServeVol0FromDataDirOnLoopback() {
        NodeSettings s = parse(Optional.empty(), Map.of(), Map.of());
        assertEquals(CWD.resolve("data"), s.dataDir());
        assertEquals(Optional.of(new HostPort("127.0.0.1", 10809)), s.nbdListen());
        assertEquals(Optional.of(CWD.resolve("data/nbd.sock")), s.nbdUnixSocket());
        assertEquals(Optional.of(new HostPort("127.0.0.1", 7626)), s.httpListen());
        assertEquals(1, s.volumes().size());
        VolumeSettings vol0 = s.volumes().get(0);
        assertEquals("vol0", vol0.name());
        assertEquals(CWD.resolve("data/vol0.img"), vol0.path());
        assertEquals(OptionalLong.of(1L << 30), vol0.size());
        assertFalse(vol0.readOnly());
        assertEquals("weft.volumes[0]", vol0.key());
    }

    @Test
    void theShippedSingleNodeConfigMatchesTheDefaults() {
        Path shipped = Path.of("..", "config", "single-node.conf");
        assertTrue(Files.isRegularFile(shipped), "config/single-node.conf is shipped");
        assertEquals(parse(Optional.empty(), Map.of(), Map.of()), parse(Optional.of(shipped), Map.of(), Map.of()));
    }

    @Test
    void theShippedDiskConfigIsValid() {
        NodeSettings s = parse(Optional.of(Path.of("..", "config", "disk-volumes.conf")), Map.of(), Map.of());
        assertEquals(2, s.volumes().size());
        assertTrue(s.volumes().get(0).readOnly());
        assertEquals(Path.of("/var/lib/weft/scratch.img"), s.volumes().get(1).path());
    }

    @Test
    void layersApplyFileThenDashDThenCommandLine() throws IOException {
        // insecure: an NBD listener off loopback without TLS is refused otherwise (aListenerOnANonLoopback...).
        Path file = writeConfig("weft { data-dir = /var/weft, nbd.listen = \"0.0.0.0:10000\", insecure = true, "
                + "management.http.enabled = off, volumes = [{ name = a, path = a.img, size = 1g }] }");
        NodeSettings fileOnly = parse(Optional.of(file), Map.of(), Map.of());
        assertEquals(Path.of("/var/weft"), fileOnly.dataDir());
        assertEquals(Optional.of(new HostPort("0.0.0.0", 10000)), fileOnly.nbdListen());
        assertEquals(Optional.empty(), fileOnly.httpListen());
        assertEquals("a", fileOnly.volumes().get(0).name());
        assertEquals(Path.of("/var/weft/a.img"), fileOnly.volumes().get(0).path(),
                "volume paths follow the data dir");

        NodeSettings withD = parse(Optional.of(file), Map.of("weft.nbd.listen", "127.0.0.2:10001"), Map.of());
        assertEquals(Optional.of(new HostPort("127.0.0.2", 10001)), withD.nbdListen());

        NodeSettings withCli = parse(Optional.of(file), Map.of("weft.nbd.listen", "127.0.0.2:10001"),
                Map.of("weft.nbd.listen", "127.0.0.3:10002", "weft.data-dir", "rel"));
        assertEquals(Optional.of(new HostPort("127.0.0.3", 10002)), withCli.nbdListen());
        assertEquals(CWD.resolve("rel"), withCli.dataDir());
    }

    @Test
    void jvmSystemPropertiesOverrideTheFileButNotDashD() throws IOException {
        Path file = writeConfig("weft.management.http.port = 3");
        withSystemProperty("weft.management.http.port", "5", () -> {
            assertEquals(5, parse(Optional.of(file), Map.of(), Map.of()).httpListen().orElseThrow().port());
            assertEquals(7, parse(Optional.of(file), Map.of("weft.management.http.port", "7"), Map.of())
                    .httpListen().orElseThrow().port());
        });
    }

    @Test
    void anUnknownKeyFromAJvmSystemPropertyIsRefusedToo() {
        withSystemProperty("weft.nbd.colour", "blue", () -> {
            InvalidSettingException e = assertThrows(InvalidSettingException.class, () -> parseD(Map.of()));
            assertEquals("weft.nbd.colour", e.key());
        });
    }

    /**
     * docs/rdma.md tells users to compare with {@code -Dweft.rdma.submitter-assist=false}; a node refused every such
     * switch as an unknown setting (session 8's note). Each one is accepted; a misspelt neighbour still is not.
     */
    @Test
    void theRdmaDataPlaneJvmSwitchesAreAcceptedOnANodesCommandLine() {
        for (String key : io.weft.rdma.RdmaJvmSwitches.all()) {
            // The values their classes would read (the defaults), should one of them load meanwhile.
            String value = key.endsWith("-submit") || key.endsWith("-assist") ? "true"
                    : key.endsWith("-max-wait-us") ? "1000" : "0";
            withSystemProperty(key, value, () -> assertEquals(CWD.resolve("data"), parseD(Map.of()).dataDir(), key));
        }
        // Given as a setting (-D option or file) it would be ignored: refused, saying where it belongs.
        InvalidSettingException asSetting = assertThrows(InvalidSettingException.class,
                () -> parseD(Map.of("weft.rdma.submitter-assist", "false")));
        assertEquals("weft.rdma.submitter-assist", asSetting.key());
        assertTrue(asSetting.getMessage().contains("WEFT_JAVA_OPTS"), asSetting.getMessage());
        withSystemProperty("weft.rdma.submitter-asist", "false", () -> {
            InvalidSettingException e = assertThrows(InvalidSettingException.class, () -> parseD(Map.of()));
            assertEquals("weft.rdma.submitter-asist", e.key());
        });
    }

    /** Runs {@code body} with JVM system property {@code key} set to {@code value}; Config's caches dropped around. */
    private static void withSystemProperty(String key, String value, Runnable body) {
        System.setProperty(key, value);
        ConfigFactory.invalidateCaches();
        try {
            body.run();
        } finally {
            System.clearProperty(key);
            ConfigFactory.invalidateCaches();
        }
    }

    @Test
    void offDisablesListenersAndIpv6HostsParse() {
        NodeSettings s = parseD(Map.of("weft.nbd.unix-socket", "off", "weft.nbd.listen", "[::1]:0",
                "weft.management.http.enabled", "false"));
        assertEquals(Optional.empty(), s.nbdUnixSocket());
        assertEquals(Optional.of(new HostPort("::1", 0)), s.nbdListen());
        assertEquals("[::1]:0", s.nbdListen().get().toString());
        assertEquals(Optional.empty(), s.httpListen());
    }

    @ParameterizedTest(name = "{0}={1}")
    @CsvSource(delimiter = '|', value = {
        "weft.nbd.listen | x | weft.nbd.listen: expected HOST:PORT (or \"off\"), got \"x\"",
        "weft.nbd.listen | 127.0.0.1:70000 | weft.nbd.listen: port must be 0..65535, got 70000",
        "weft.nbd.listen | 127.0.0.1: | weft.nbd.listen: expected HOST:PORT",
        "weft.nbd.listen | :10809 | weft.nbd.listen: expected HOST:PORT",
        "weft.nbd.listen | ::1:10809 | weft.nbd.listen: expected HOST:PORT",
        "weft.http.listen | 127.0.0.1:1 | weft.http.listen: replaced by weft.management.http.hostname, .port"
                + " and .enabled",
        "weft.management.http.port | http | weft.management.http.port: expected a whole number, got \"http\"",
        "weft.management.http.port | 70000 | weft.management.http.port: must be between 0 and 65535, got 70000",
        "weft.management.http.enabled | maybe | weft.management.http.enabled: expected true or false",
        "weft.cluster.port | -1 | weft.cluster.port: must be between 0 and 65535, got -1",
        "weft.data-dir | '' | weft.data-dir: must not be empty",
        "weft.nbd.unix-socket | '' | weft.nbd.unix-socket: must not be empty",
        "weft.store.io-threads | 2 | weft.store.io-threads: unknown setting",
        "weft.nbd.lisen | 1 | weft.nbd.lisen: unknown setting (known under weft.nbd: buffer-budget, handshake-timeout,"
                + " idle-timeout, listen, max-request-size, read-stall-timeout, tls, tls-certificates, tls-verify-peer,"
                + " unix-socket, write-stall-timeout)",
        "weft.nbd.read-stall-timeout | soon | weft.nbd.read-stall-timeout: expected a duration such as 30s (0 = off)",
        "weft.nbd.idle-timeout | -1s | weft.nbd.idle-timeout: must not be negative (0 = off)",
        "weft.nbd.buffer-budget | 32MiB | weft.nbd.buffer-budget: must be at least twice weft.nbd.max-request-size"
                + " (67108864 bytes): 33554432",
        "weft.nbd.max-request-size | 1000 | weft.nbd.max-request-size: must be a multiple of 4 KiB",
        "weft.colour | blue | weft.colour: unknown setting (known under weft: client, cluster, cxl, data-dir,"
                + " insecure, management,",
        "weft.tls.certificates | /nonexistent/certs | weft.tls.certificates: certificate directory /nonexistent/certs"
                + " has no readable ca-cert.pem",
    })
    void eachInvalidSettingIsNamed(String key, String value, String expectedMessage) {
        InvalidSettingException e = assertThrows(InvalidSettingException.class, () -> parseD(Map.of(key, value)));
        assertTrue(e.getMessage().startsWith(expectedMessage), "message: " + e.getMessage());
        assertEquals(key, e.key());
    }

    @Test
    void bothNbdListenersOffIsRefused() {
        InvalidSettingException e = assertThrows(InvalidSettingException.class,
                () -> parseD(Map.of("weft.nbd.listen", "off", "weft.nbd.unix-socket", "off")));
        assertEquals("weft.nbd.listen", e.key());
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
        "{ path = a.img, size = 1g } | weft.volumes[0].name: missing (required)",
        "{ name = \"a b\", path = a.img } | weft.volumes[0].name: expected letters, digits",
        "{ name = a } | weft.volumes[0].path: missing (required)",
        "{ name = a, path = a.img, size = 1000 } | weft.volumes[0].size: must be a positive multiple of 4k"
                + " (4096 bytes), got 1000",
        "{ name = a, path = a.img, size = big } | weft.volumes[0].size: expected a size such as 1g",
        "{ name = a, path = a.img, size = 0 } | weft.volumes[0].size: must be between 1",
        "{ name = a, path = a.img, sise = 1g } | weft.volumes[0].sise: unknown setting (known: description, name",
        "{ name = a, path = a.img, io-threads = 2 } | weft.volumes[0].io-threads: unknown setting",
        "{ name = a, path = a.img, read-only = perhaps } | weft.volumes[0].read-only: expected true or false",
        "{ name = a, path = a.img, description = [1] } | weft.volumes[0].description: expected a string",
        "{ name = a, path = a.img }, { name = a, path = b.img } | weft.volumes[1].name: duplicate volume name \"a\"",
        "{ name = a, path = a.img }, { name = b, path = ./a.img } | weft.volumes[1].path: another volume already uses",
        "7 | weft.volumes[0]: expected an object",
    })
    void eachInvalidVolumeSettingIsNamed(String entries, String expectedMessage) throws IOException {
        InvalidSettingException e = assertThrows(InvalidSettingException.class,
                () -> parseFile("weft.volumes = [ " + entries + " ]"));
        assertTrue(e.getMessage().startsWith(expectedMessage), "message: " + e.getMessage());
    }

    @Test
    void volumesMustBeAList() {
        InvalidSettingException e = assertThrows(InvalidSettingException.class,
                () -> parseFile("weft.volumes = { name = a }"));
        assertEquals("weft.volumes: expected a list of volumes, got object {name=a}", e.getMessage());
    }

    @Test
    void aDashDIntoTheVolumeListExplainsWhyItCannotWork() {
        InvalidSettingException e = assertThrows(InvalidSettingException.class,
                () -> parseD(Map.of("weft.volumes.0.size", "2g")));
        assertEquals("weft.volumes", e.key());
        assertTrue(e.getMessage().endsWith("(a list cannot be changed entry by entry with -D; set weft.volumes in a "
                + "--config file)"), e.getMessage());
    }

    @Test
    void volumeSettingsCarryOverridesAndDefaults() throws IOException {
        NodeSettings s = parseFile("weft { volumes = ["
                + "{ name = fast, path = /dev/shm/fast.img, size = 64m },"
                + "{ name = gold, path = gold.img, read-only = true, description = \"golden image\" } ] }");
        VolumeSettings fast = s.volumes().get(0);
        assertEquals(Path.of("/dev/shm/fast.img"), fast.path());
        assertEquals(OptionalLong.of(64L << 20), fast.size());
        VolumeSettings gold = s.volumes().get(1);
        assertTrue(gold.readOnly());
        assertEquals(OptionalLong.empty(), gold.size());
        assertEquals("golden image", gold.description());
    }

    @Test
    void aMissingOrBrokenConfigFileIsNamed() throws IOException {
        InvalidSettingException missing = assertThrows(InvalidSettingException.class,
                () -> parse(Optional.of(tmp.resolve("nope.conf")), Map.of(), Map.of()));
        assertEquals("--config", missing.key());
        assertTrue(missing.getMessage().contains("nope.conf"), missing.getMessage());
        InvalidSettingException broken = assertThrows(InvalidSettingException.class,
                () -> parseFile("weft { nbd { listen = "));
        assertEquals("--config", broken.key());
        assertTrue(broken.getMessage().contains("node.conf"), broken.getMessage());
    }

    // --- exposure: a listener on a non-loopback address needs TLS or an explicit --insecure (docs/security.md) ---

    @ParameterizedTest
    @CsvSource({
        "weft.cluster.hostname, 0.0.0.0",
        "weft.cluster.hostname, 192.0.2.10",
        "weft.management.http.hostname, 0.0.0.0",
        "weft.rdma.listen, 192.0.2.10:0"})
    void aListenerOnANonLoopbackAddressWithoutTlsRefusesToStart(String key, String value) {
        Map<String, String> d = key.equals("weft.rdma.listen")
                ? Map.of("weft.rdma.listen.0", value) : Map.of(key, value);
        InvalidSettingException e = assertThrows(InvalidSettingException.class, () -> parseD(d));
        assertEquals(key, e.key(), e.getMessage());
        assertTrue(e.getMessage().contains("--insecure"), e.getMessage());
        assertTrue(e.getMessage().contains("not a loopback address"), e.getMessage());
    }

    @Test
    void insecureLetsANodeListenOnANonLoopbackAddressWithoutTls() {
        parseD(Map.of("weft.cluster.hostname", "0.0.0.0", "weft.management.http.hostname", "0.0.0.0",
                "weft.insecure", "true"));
    }

    @ParameterizedTest
    @CsvSource({"127.0.0.1", "127.0.0.7", "localhost", "::1"})
    void loopbackNeedsNoCertificates(String host) {
        parseD(Map.of("weft.cluster.hostname", host, "weft.management.http.hostname", host));
    }

    @Test
    void tlsCertificatesFromCertsInitTurnOnClusterTlsSoANodeMayListenOffLoopback() throws IOException {
        io.weft.core.tls.CertificateAuthority ca = io.weft.core.tls.CertificateAuthority.create("t");
        ca.writeNodeLayout(tmp.resolve("a"), "a", java.util.List.of());
        NodeSettings s = parseD(Map.of("weft.tls.certificates", tmp.resolve("a").toString(),
                "weft.cluster.hostname", "0.0.0.0", "weft.rdma.listen.0", "127.0.0.1:0"));
        assertEquals(Optional.of(tmp.resolve("a")), s.tlsCertificates());
        assertEquals(Optional.empty(), parseD(Map.of()).tlsCertificates());
    }
}
