package io.weft.core.nbd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.testing.RequiredTool;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** libnbd's tools (nbdinfo, nbdcopy) against the server. */
@Timeout(180)
class NbdLibnbdIT {
    private static final long SIZE = 32L << 20;
    private static final Duration TOOL_TIMEOUT = Duration.ofSeconds(90);

    private static String nbdinfo() {
        return RequiredTool.require("nbdinfo", "libnbd-bin").toString();
    }

    /** Value of {@code "key": value} in nbdinfo's JSON (first occurrence). */
    private static String jsonValue(String json, String key) {
        Matcher m = Pattern.compile("\"" + Pattern.quote(key) + "\"\\s*:\\s*(\"[^\"]*\"|[^,\\s}]+)").matcher(json);
        assertTrue(m.find(), "no " + key + " in:\n" + json);
        return m.group(1);
    }

    @Test
    void nbdinfoReportsSizeFlagsAndBlockSizes() throws Exception {
        String nbdinfo = nbdinfo();
        try (NbdFixture fx = new NbdFixture(SIZE)) {
            fx.server.addExport(new NbdExport("ro", "read-only view", new ReadOnlyView(fx.device)));
            for (String uri : List.of(fx.tcpUri("vol0"), fx.unixUri("vol0"))) {
                String json = ExternalTool.run(TOOL_TIMEOUT, nbdinfo, "--json", uri).assertOk().output();
                assertEquals(Long.toString(SIZE), jsonValue(json, "export-size"));
                assertEquals("false", jsonValue(json, "is_read_only"));
                assertEquals("true", jsonValue(json, "can_multi_conn"), "the shared file store covers all");
                assertEquals("true", jsonValue(json, "can_flush"));
                assertEquals("true", jsonValue(json, "can_fua"));
                assertEquals("true", jsonValue(json, "can_zero"));
                assertEquals(Boolean.toString(fx.device.info().canDiscard()), jsonValue(json, "can_trim"));
                assertEquals(Boolean.toString(fx.device.info().canFastZero()), jsonValue(json, "can_fast_zero"));
                assertEquals("512", jsonValue(json, "block_size_minimum"));
                assertEquals("4096", jsonValue(json, "block_size_preferred"));
                assertEquals(Integer.toString(NbdServerOptions.DEFAULT_MAX_PAYLOAD),
                        jsonValue(json, "block_size_maximum"));
                assertEquals("\"test volume\"", jsonValue(json, "description"));
                assertTrue(json.contains("base:allocation"), json);
            }
            String ro = ExternalTool.run(TOOL_TIMEOUT, nbdinfo, "--json", fx.tcpUri("ro")).assertOk().output();
            assertEquals("true", jsonValue(ro, "is_read_only"));
            assertEquals("false", jsonValue(ro, "can_zero"));
            assertEquals("false", jsonValue(ro, "can_trim"));
            assertEquals("false", jsonValue(ro, "can_flush"));

            String list = ExternalTool.run(TOOL_TIMEOUT, nbdinfo, "--list", "--json",
                    "nbd+unix:///?socket=" + fx.unixSocket).assertOk().output();
            assertTrue(list.contains("\"export-name\": \"vol0\"") && list.contains("\"export-name\": \"ro\""),
                    list);
            ExternalTool.Result missing = ExternalTool.run(TOOL_TIMEOUT, nbdinfo, fx.tcpUri("nope"));
            assertTrue(missing.exitCode() != 0, missing.output());
        }
    }

    /** One line of {@code nbdinfo --map --json}. */
    private record Extent(long offset, long length, int type) {
    }

    private static List<Extent> map(String nbdinfo, String uri) throws Exception {
        String json = ExternalTool.run(TOOL_TIMEOUT, nbdinfo, "--map", "--json", uri).assertOk().output();
        Matcher m = Pattern.compile("\"offset\":\\s*(\\d+),\\s*\"length\":\\s*(\\d+),\\s*\"type\":\\s*(\\d+)")
                .matcher(json);
        List<Extent> extents = new ArrayList<>();
        while (m.find()) {
            extents.add(new Extent(Long.parseLong(m.group(1)), Long.parseLong(m.group(2)),
                    Integer.parseInt(m.group(3))));
        }
        assertTrue(!extents.isEmpty(), json);
        return extents;
    }

    @Test
    void mapShowsAHoleWhereTheDeviceReportsOneAfterTrim() throws Exception {
        String nbdinfo = nbdinfo();
        String qemuIo = RequiredTool.require("qemu-io", "qemu-utils").toString();
        try (NbdFixture fx = new NbdFixture(SIZE, NbdServerOptions.defaults(), HoleReportingDevice::new)) {
            String uri = fx.unixUri("vol0");
            ExternalTool.run(TOOL_TIMEOUT, qemuIo, "-f", "raw", "-c", "write -P 7 0 4M", uri).assertOk();
            List<Extent> before = map(nbdinfo, uri);
            assertEquals(List.of(new Extent(0, SIZE, 0)), before);

            ExternalTool.run(TOOL_TIMEOUT, qemuIo, "-f", "raw", "-c", "discard 1M 512k", uri).assertOk();
            List<Extent> after = map(nbdinfo, uri);
            assertEquals(List.of(new Extent(0, 1 << 20, 0), new Extent(1 << 20, 512 << 10, 3),
                    new Extent((1 << 20) + (512 << 10), SIZE - (1 << 20) - (512 << 10), 0)), after);
            // The trimmed range reads as zeros, its neighbours kept their data.
            ExternalTool.run(TOOL_TIMEOUT, qemuIo, "-f", "raw", "-c", "read -P 0 1M 512k", "-c",
                    "read -P 7 0 1M", "-c", "read -P 7 1536k 2560k", uri).assertOk();
        }
    }

    /** Adjacent extents with the same type joined, so maps from different sources compare. */
    private static List<Extent> joined(List<Extent> extents) {
        List<Extent> out = new ArrayList<>();
        for (Extent e : extents) {
            Extent last = out.isEmpty() ? null : out.get(out.size() - 1);
            if (last != null && last.type() == e.type() && last.offset() + last.length() == e.offset()) {
                out.set(out.size() - 1, new Extent(last.offset(), last.length() + e.length(), e.type()));
            } else {
                out.add(e);
            }
        }
        return out;
    }

    @Test
    void mapOfTheFileStoreMatchesWhatTheStoreReports() throws Exception {
        String nbdinfo = nbdinfo();
        String qemuIo = RequiredTool.require("qemu-io", "qemu-utils").toString();
        try (NbdFixture fx = new NbdFixture(SIZE)) {
            String uri = fx.tcpUri("vol0");
            ExternalTool.run(TOOL_TIMEOUT, qemuIo, "-f", "raw", "-c", "write -P 9 0 4M", uri).assertOk();
            boolean canTrim = fx.device.info().canDiscard();
            if (canTrim) {
                ExternalTool.run(TOOL_TIMEOUT, qemuIo, "-f", "raw", "-c", "discard 1M 1M", uri).assertOk();
            }
            List<Extent> fromStore = new ArrayList<>();
            long[] at = {0};
            fx.device.describeExtents(0, SIZE, (length, flags) -> {
                fromStore.add(new Extent(at[0], length, flags & 3));
                at[0] += length;
                return true;
            });
            List<Extent> fromServer = joined(map(nbdinfo, uri));
            assertEquals(joined(fromStore), fromServer);
            if (canTrim) {
                // A store that punches holes must show one where the TRIM went.
                assertTrue(fromServer.stream().anyMatch(e -> (e.type() & 1) != 0
                        && e.offset() <= (1 << 20) && e.offset() + e.length() >= (2 << 20)), fromServer::toString);
            }
        }
    }

    @Test
    void nbdcopyRoundTripIsByteExact() throws Exception {
        String nbdcopy = RequiredTool.require("nbdcopy", "libnbd-bin").toString();
        try (NbdFixture fx = new NbdFixture(SIZE)) {
            Path src = fx.dir.resolve("src.img");
            Path back = fx.dir.resolve("back.img");
            byte[] content = new byte[(int) SIZE];
            new Random(5).nextBytes(content);
            // A zero region in the middle.
            java.util.Arrays.fill(content, 8 << 20, 12 << 20, (byte) 0);
            Files.write(src, content);
            Files.write(back, new byte[0]);

            ExternalTool.run(TOOL_TIMEOUT, nbdcopy, src.toString(), fx.unixUri("vol0")).assertOk();
            ExternalTool.run(TOOL_TIMEOUT, nbdcopy, "--flush", fx.tcpUri("vol0"), back.toString()).assertOk();
            assertArrayEquals(content, Files.readAllBytes(back));
            assertArrayEquals(content, fx.fileBytes(0, (int) SIZE));
        }
    }
}
