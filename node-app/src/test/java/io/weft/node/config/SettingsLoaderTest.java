package io.weft.node.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
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
        assertEquals(32 << 20, s.maxIoSize());
        assertEquals(Duration.ofSeconds(10), s.statsInterval());
        assertEquals(1, s.volumes().size());
        VolumeSettings vol0 = s.volumes().get(0);
        assertEquals("vol0", vol0.name());
        assertEquals(CWD.resolve("data/vol0.img"), vol0.path());
        assertEquals(OptionalLong.of(1L << 30), vol0.size());
        assertFalse(vol0.readOnly());
        assertFalse(vol0.directIo());
        assertEquals(0, vol0.ioThreads());
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
        assertTrue(s.volumes().get(1).directIo());
        assertEquals(2, s.volumes().get(1).ioThreads());
        assertEquals(Path.of("/var/lib/weft/scratch.img"), s.volumes().get(1).path());
    }

    @Test
    void layersApplyFileThenDashDThenCommandLine() throws IOException {
        Path file = writeConfig("weft { data-dir = /var/weft, nbd.listen = \"0.0.0.0:10000\", "
                + "http.listen = off, store.io-threads = 3 }");
        NodeSettings fileOnly = parse(Optional.of(file), Map.of(), Map.of());
        assertEquals(Path.of("/var/weft"), fileOnly.dataDir());
        assertEquals(Optional.of(new HostPort("0.0.0.0", 10000)), fileOnly.nbdListen());
        assertEquals(Optional.empty(), fileOnly.httpListen());
        assertEquals(3, fileOnly.volumes().get(0).ioThreads());
        assertEquals(Path.of("/var/weft/vol0.img"), fileOnly.volumes().get(0).path(),
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
        Path file = writeConfig("weft.store.io-threads = 3");
        System.setProperty("weft.store.io-threads", "5");
        ConfigFactory.invalidateCaches();
        try {
            assertEquals(5, parse(Optional.of(file), Map.of(), Map.of()).volumes().get(0).ioThreads());
            assertEquals(7, parse(Optional.of(file), Map.of("weft.store.io-threads", "7"), Map.of())
                    .volumes().get(0).ioThreads());
        } finally {
            System.clearProperty("weft.store.io-threads");
            ConfigFactory.invalidateCaches();
        }
    }

    @Test
    void anUnknownKeyFromAJvmSystemPropertyIsRefusedToo() {
        System.setProperty("weft.nbd.colour", "blue");
        ConfigFactory.invalidateCaches();
        try {
            InvalidSettingException e = assertThrows(InvalidSettingException.class, () -> parseD(Map.of()));
            assertEquals("weft.nbd.colour", e.key());
        } finally {
            System.clearProperty("weft.nbd.colour");
            ConfigFactory.invalidateCaches();
        }
    }

    @Test
    void offDisablesListenersAndIpv6HostsParse() {
        NodeSettings s = parseD(Map.of("weft.nbd.unix-socket", "off", "weft.nbd.listen", "[::1]:0",
                "weft.http.listen", "off"));
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
        "weft.http.listen | localhost:http | weft.http.listen: expected HOST:PORT",
        "weft.data-dir | '' | weft.data-dir: must not be empty",
        "weft.nbd.unix-socket | '' | weft.nbd.unix-socket: must not be empty",
        "weft.nbd.max-io-size | lots | weft.nbd.max-io-size: expected a size such as 1g, 512m or 4096, got \"lots\"",
        "weft.nbd.max-io-size | 1k | weft.nbd.max-io-size: must be between 4096 and 33554432 bytes, got 1024",
        "weft.nbd.max-io-size | 3m | weft.nbd.max-io-size: must be a power of two",
        "weft.store.direct-io | maybe | weft.store.direct-io: expected true or false, got \"maybe\"",
        "weft.store.io-threads | -1 | weft.store.io-threads: must be between 0 and 64, got -1",
        "weft.store.io-threads | two | weft.store.io-threads: expected a whole number, got \"two\"",
        "weft.store.io-queue-depth | 0 | weft.store.io-queue-depth: must be between 1 and 65536, got 0",
        "weft.stats.interval | 5ms | weft.stats.interval: must be at least 100ms, got 5ms",
        "weft.stats.interval | soon | weft.stats.interval: expected a duration such as 10s or 500ms",
        "weft.stats.in-flight-slots | 0 | weft.stats.in-flight-slots: must be between 1 and 1048576, got 0",
        "weft.stats.log | loud | weft.stats.log: expected true or false",
        "weft.nbd.lisen | 1 | weft.nbd.lisen: unknown setting (known under weft.nbd: listen, max-io-size, unix-socket)",
        "weft.colour | blue | weft.colour: unknown setting (known under weft: data-dir, http, nbd, stats, store, volumes)",
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
        "{ name = a, path = a.img, size = 1000 } | weft.volumes[0].size: must be a positive multiple of 4k (4096 bytes), got 1000",
        "{ name = a, path = a.img, size = big } | weft.volumes[0].size: expected a size such as 1g",
        "{ name = a, path = a.img, size = 0 } | weft.volumes[0].size: must be between 1",
        "{ name = a, path = a.img, sise = 1g } | weft.volumes[0].sise: unknown setting (known: description, direct-io",
        "{ name = a, path = a.img, read-only = perhaps } | weft.volumes[0].read-only: expected true or false",
        "{ name = a, path = a.img, io-threads = 99 } | weft.volumes[0].io-threads: must be between 0 and 64",
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
        NodeSettings s = parseFile("weft { store { direct-io = true, io-threads = 2 }, volumes = ["
                + "{ name = fast, path = /dev/shm/fast.img, size = 64m, direct-io = false, io-threads = 0 },"
                + "{ name = gold, path = gold.img, read-only = true, description = \"golden image\" } ] }");
        VolumeSettings fast = s.volumes().get(0);
        assertEquals(Path.of("/dev/shm/fast.img"), fast.path());
        assertEquals(OptionalLong.of(64L << 20), fast.size());
        assertFalse(fast.directIo());
        assertEquals(0, fast.ioThreads());
        VolumeSettings gold = s.volumes().get(1);
        assertTrue(gold.readOnly());
        assertTrue(gold.directIo());
        assertEquals(2, gold.ioThreads());
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
}
