package io.weft.core.nbd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.testing.RequiredTool;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** qemu-io and qemu-img (qemu's NBD client) against the server, over TCP and the Unix socket. */
@Timeout(180)
class NbdQemuIT {
    private static final long SIZE = 64L << 20;
    private static final Duration TOOL_TIMEOUT = Duration.ofSeconds(90);
    private NbdFixture fx;
    private String qemuIo;
    private String qemuImg;

    @BeforeEach
    void setUp() throws Exception {
        qemuIo = RequiredTool.require("qemu-io", "qemu-utils").toString();
        qemuImg = RequiredTool.require("qemu-img", "qemu-utils").toString();
        fx = new NbdFixture(SIZE);
    }

    @AfterEach
    void tearDown() throws Exception {
        fx.close();
    }

    @Test
    void patternsAtManyOffsetsAndSizesReadBackVerifiedOverTcp() throws Exception {
        writeAndVerifyPatterns(fx.tcpUri("vol0"), 1);
    }

    @Test
    void patternsAtManyOffsetsAndSizesReadBackVerifiedOverUnixSocket() throws Exception {
        writeAndVerifyPatterns(fx.unixUri("vol0"), 2);
    }

    /**
     * Writes non-overlapping regions with distinct byte patterns, then reads each back with pattern verification
     * in a second qemu-io process (a new connection), and checks a gap between regions still reads as zeros.
     */
    private void writeAndVerifyPatterns(String uri, int seed) throws Exception {
        Random random = new Random(seed);
        int[] sizes = {512, 1024, 4096, 8192, 65536, 131072 + 512, 1 << 20, (3 << 20) + 4096};
        List<String> writes = new ArrayList<>(List.of(qemuIo, "-f", "raw"));
        List<String> reads = new ArrayList<>(List.of(qemuIo, "-f", "raw"));
        long offset = 512L * random.nextInt(64);
        List<long[]> gaps = new ArrayList<>();
        for (int round = 0; round < 3; round++) {
            for (int size : sizes) {
                int pattern = 1 + random.nextInt(254);
                writes.add("-c");
                writes.add("write -P " + pattern + " " + offset + " " + size);
                reads.add("-c");
                reads.add("read -P " + pattern + " " + offset + " " + size);
                long gap = 512L * (1 + random.nextInt(16));
                gaps.add(new long[] {offset + size, gap});
                offset += size + gap;
            }
        }
        writes.add("-c");
        writes.add("flush");
        writes.add(uri);
        for (long[] gap : gaps.subList(0, 6)) {
            reads.add("-c");
            reads.add("read -P 0 " + gap[0] + " " + gap[1]);
        }
        reads.add(uri);
        assertTrue(offset < SIZE);
        ExternalTool.Result w = ExternalTool.run(TOOL_TIMEOUT, writes).assertOk();
        assertFalse(w.output().contains("failed"), w.output());
        ExternalTool.Result r = ExternalTool.run(TOOL_TIMEOUT, reads).assertOk();
        assertFalse(r.output().contains("Pattern verification failed"), r.output());
        assertEquals(sizes.length * 3 + 6, count(r.output(), "read "), r.output());

        // The same data is in the backing file, at the same offsets.
        byte[] first = fx.fileBytes(gaps.get(0)[0] - sizes[0], sizes[0]);
        byte expected = first[0];
        for (byte b : first) {
            assertEquals(expected, b);
        }
        assertTrue(expected != 0);

        // And a wrong pattern is detected (the check above can fail).
        ExternalTool.Result wrong = ExternalTool.run(TOOL_TIMEOUT, qemuIo, "-f", "raw", "-c",
                "read -P " + ((expected + 1) & 0xff) + " " + (gaps.get(0)[0] - sizes[0]) + " 512", uri);
        assertTrue(wrong.exitCode() != 0 || wrong.output().contains("Pattern verification failed"),
                wrong.output());
    }

    private static int count(String text, String needle) {
        int n = 0;
        for (int i = text.indexOf(needle); i >= 0; i = text.indexOf(needle, i + 1)) {
            if (i == 0 || text.charAt(i - 1) == '\n') {
                n++;
            }
        }
        return n;
    }

    @Test
    void qemuImgConvertInAndOutIsByteExact() throws Exception {
        Path src = fx.dir.resolve("src.img");
        Path back = fx.dir.resolve("back.img");
        byte[] content = new byte[(int) SIZE];
        Random random = new Random(11);
        // Data with zero runs in between, so both data and zero paths of the copy are exercised.
        for (int off = 0; off < content.length; off += 1 << 20) {
            int len = (1 + random.nextInt(15)) * 65536;
            byte[] chunk = new byte[len];
            random.nextBytes(chunk);
            System.arraycopy(chunk, 0, content, off, Math.min(len, content.length - off));
        }
        Files.write(src, content);

        ExternalTool.run(TOOL_TIMEOUT, qemuImg, "convert", "-n", "-f", "raw", "-O", "raw", src.toString(),
                fx.unixUri("vol0")).assertOk();
        ExternalTool.run(TOOL_TIMEOUT, qemuImg, "convert", "-f", "raw", "-O", "raw", fx.tcpUri("vol0"),
                back.toString()).assertOk();

        assertArrayEquals(content, Files.readAllBytes(back), "image copied out equals the one copied in");
        assertArrayEquals(content, fx.fileBytes(0, (int) SIZE), "backing file holds the image");
        ExternalTool.run(TOOL_TIMEOUT, qemuImg, "compare", "-f", "raw", "-F", "raw", src.toString(),
                fx.tcpUri("vol0")).assertOk();
    }
}
