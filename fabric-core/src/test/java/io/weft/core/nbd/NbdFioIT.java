package io.weft.core.nbd;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.testing.RequiredTool;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * fio's nbd engine (libnbd) with crc32c verification: several jobs, each its own connection and region, over TCP
 * and the Unix socket at the same time, against both an inline device and one completing on another thread.
 */
@Timeout(180)
class NbdFioIT {
    private static final long SIZE = 128L << 20;
    private static final int JOBS = 4;
    private static final long REGION = 16L << 20;

    private static List<String> fio(String fio, String name, String uri, String rw, String bs, int depth) {
        return new ArrayList<>(List.of(fio, "--name=" + name, "--ioengine=nbd", "--uri=" + uri, "--rw=" + rw,
                "--bs=" + bs, "--iodepth=" + depth, "--numjobs=" + JOBS, "--size=" + REGION,
                "--offset_increment=" + REGION, "--verify=crc32c", "--verify_fatal=1", "--do_verify=1",
                "--verify_state_save=0", // no state files in the working directory
                "--group_reporting=0"));
    }

    private static void assertClean(ExternalTool.Result r) {
        r.assertOk();
        assertFalse(r.output().contains("verify:"), r.output());
        Matcher m = Pattern.compile("err= *(\\d+)").matcher(r.output());
        int jobs = 0;
        while (m.find()) {
            assertEquals("0", m.group(1), r.output());
            jobs++;
        }
        assertEquals(JOBS, jobs, r.output());
    }

    @Test
    void randomWritesVerifiedOverTcpAndUnixAtOnce() throws Exception {
        String fio = RequiredTool.require("fio", "fio").toString();
        try (NbdFixture fx = new NbdFixture(SIZE)) {
            runBoth(fio, fx, fx.device);
        }
    }

    @Test
    void randomWritesVerifiedWithCompletionsOnAnotherThread() throws Exception {
        String fio = RequiredTool.require("fio", "fio").toString();
        try (NbdFixture fx = new NbdFixture(SIZE)) {
            ReorderingDevice async = fx.closeLater(new ReorderingDevice(fx.storeDevice, 1));
            fx.server.addExport(new NbdExport("async", "", async));
            runBoth(fio, fx, async);
            assertTrue(async.submittedCount() > 0);
        }
    }

    private static void runBoth(String fio, NbdFixture fx, Object device) throws Exception {
        String export = device == fx.device ? "vol0" : "async";
        // Unix-socket jobs use the first half of the export, TCP jobs the second half.
        List<String> unix = fio(fio, "unix", fx.unixUri(export), "randwrite", "4k", 16);
        List<String> tcp = fio(fio, "tcp", fx.tcpUri(export), "randrw", "4k-64k", 8);
        tcp.add("--offset=" + (JOBS * REGION));
        ExternalTool.Result[] results = new ExternalTool.Result[2];
        Thread t = new Thread(() -> {
            try {
                results[1] = ExternalTool.run(Duration.ofSeconds(120), tcp);
            } catch (Exception e) {
                throw new RuntimeException(e);
            }
        });
        t.start();
        results[0] = ExternalTool.run(Duration.ofSeconds(120), unix);
        t.join();
        assertClean(results[0]);
        assertClean(results[1]);
    }
}
