package io.weft.node.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.cxl.CxlHost;
import io.weft.cxl.CxlOptions;
import io.weft.cxl.CxlRegion;
import io.weft.cxl.layout.RegionGeometry;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.UUID;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

class CxlCommandTest {
    private static final Pattern REGION_ID = Pattern.compile("region ([0-9a-f]+)");

    private final Path region = Path.of("/dev/shm", "weft-cxl-cli-test-" + UUID.randomUUID());
    private StringWriter out = new StringWriter();
    private StringWriter err = new StringWriter();

    @AfterEach
    void removeRegion() throws IOException {
        Files.deleteIfExists(region);
    }

    private int run(String... args) {
        out = new StringWriter();
        err = new StringWriter();
        CommandLine cli = WeftMain.commandLine();
        cli.setOut(new PrintWriter(out, true));
        cli.setErr(new PrintWriter(err, true));
        return cli.execute(args);
    }

    private static String regionId(String text) {
        Matcher m = REGION_ID.matcher(text);
        assertTrue(m.find(), "a region id in: " + text);
        return m.group(1);
    }

    @Test
    void formatCreatesARegionThatInfoShowsAndNodesCanAttach() throws IOException {
        assertEquals(0, run("cxl", "format", region.toString(), "--channels", "4", "--ring-depth", "32",
                "--slot-size", "64KiB", "--hosts", "4"), err.toString());
        String formatted = regionId(out.toString());

        try (CxlRegion attached = CxlRegion.attach(region)) {
            assertEquals(new RegionGeometry(4, 16, 64, 4, 32, 64 << 10), attached.geometry());
            assertEquals(formatted, Long.toHexString(attached.formatId()));
        }

        assertEquals(0, run("cxl", "info", region.toString(), "--watch", "0"), err.toString());
        String info = out.toString();
        assertEquals(formatted, regionId(info));
        assertTrue(info.contains("channels 4 of 32 entries x 65536 bytes"), info);
        assertTrue(info.contains("hosts (0):"), info);
        assertTrue(info.contains("fenced channels (0):"), info);
    }

    @Test
    void infoShowsARegisteredHostAliveAndAFormatOverItIsRefused() throws IOException {
        assertEquals(0, run("cxl", "format", region.toString(), "--channels", "2"), err.toString());
        try (CxlRegion attached = CxlRegion.attach(region);
             CxlHost host = CxlHost.register(attached, 42, "node-under-test", CxlOptions.defaults())) {
            assertEquals(0, run("cxl", "info", region.toString(), "--watch", "1000"), err.toString());
            String info = out.toString();
            assertTrue(info.contains("hosts (1):"), info);
            assertTrue(info.lines().anyMatch(l -> l.contains("node-under-test") && l.endsWith("alive")), info);

            assertEquals(WeftMain.EXIT_FAILURE, run("cxl", "format", region.toString(), "--channels", "2"));
            assertTrue(err.toString().contains("1 host(s)"), err.toString());
            assertTrue(host.status().hosts().size() == 1, "the host is still registered");
        }
    }

    @Test
    void aSecondFormatIsRefusedWithoutForceAndReplacesTheRegionWithIt() throws IOException {
        assertEquals(0, run("cxl", "format", region.toString(), "--channels", "2"), err.toString());
        String first = regionId(out.toString());

        assertEquals(WeftMain.EXIT_FAILURE, run("cxl", "format", region.toString(), "--channels", "2"));
        assertTrue(err.toString().contains("already holds region " + first), err.toString());
        assertTrue(err.toString().contains("--force"), err.toString());
        try (CxlRegion attached = CxlRegion.attach(region)) {
            assertEquals(first, Long.toHexString(attached.formatId()), "the refused format left the region alone");
        }

        assertEquals(0, run("cxl", "format", region.toString(), "--channels", "2", "--force"), err.toString());
        String second = regionId(out.toString());
        assertNotEquals(first, second);
        try (CxlRegion attached = CxlRegion.attach(region)) {
            assertEquals(second, Long.toHexString(attached.formatId()));
        }
    }

    @Test
    void aFileThatIsNotARegionIsNotOverwrittenWithoutForce() throws IOException {
        Files.writeString(region, "somebody's data");
        assertEquals(WeftMain.EXIT_FAILURE, run("cxl", "format", region.toString(), "--channels", "1"));
        assertTrue(err.toString().contains("is not a Weft region"), err.toString());
        assertEquals("somebody's data", Files.readString(region));
    }

    @Test
    void sizePicksAsManyChannelsAsFit() throws IOException {
        assertEquals(0, run("cxl", "format", region.toString(), "--size", "64MiB"), err.toString());
        try (CxlRegion attached = CxlRegion.attach(region)) {
            RegionGeometry g = attached.geometry();
            assertTrue(g.regionSize() <= 64L << 20, "fits: " + g);
            RegionGeometry oneMore = new RegionGeometry(g.maxHosts(), g.maxBackends(), g.maxBlkdevs(),
                    g.segmentCount() + 1, g.ringDepth(), g.slotSize());
            assertTrue(oneMore.regionSize() > 64L << 20, "as many as fit: " + g);
        }
    }

    @Test
    void infoOnSomethingThatIsNotARegionFailsNamingTheProblem() throws IOException {
        Files.writeString(region, "not a region");
        assertEquals(WeftMain.EXIT_FAILURE, run("cxl", "info", region.toString(), "--watch", "0"));
        assertTrue(err.toString().startsWith("weft cxl info: "), err.toString());
        assertTrue(err.toString().contains(region.toString()), err.toString());
    }

    @Test
    void aBadGeometryIsAUsageError() {
        assertEquals(WeftMain.EXIT_USAGE, run("cxl", "format", region.toString(), "--ring-depth", "100"));
        assertTrue(err.toString().contains("power of two"), err.toString());
        assertTrue(Files.notExists(region));
    }
}
