package io.weft.core.nbd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.testing.RequiredTool;
import io.weft.core.tls.CertificateAuthority;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.time.Duration;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Real plaintext clients against {@code weft.nbd.tls = require}: refused, and nothing changes on disk. */
@Timeout(180)
class HostileNbdPlaintextIT {
    private static final long SIZE = 8L << 20;
    private static final Duration TOOL_TIMEOUT = Duration.ofSeconds(60);

    @TempDir
    Path certs;

    @Test
    void plaintextClientsAreRefusedUnderRequire() throws Exception {
        String nbdinfo = RequiredTool.require("nbdinfo", "libnbd-bin").toString();
        String nbdcopy = RequiredTool.require("nbdcopy", "libnbd-bin").toString();
        String qemuImg = RequiredTool.require("qemu-img", "qemu-utils").toString();
        CertificateAuthority.create("weft-test").writeNodeLayout(certs, "node", List.of());
        try (NbdFixture fx = new NbdFixture(SIZE, NbdServerOptions.defaults(), d -> d,
                NbdTls.fromDirectory(NbdTls.Mode.REQUIRE, certs, false))) {
            byte[] before = fx.fileBytes(0, (int) SIZE);
            for (String uri : new String[] {fx.tcpUri("vol0"), fx.unixUri("vol0")}) {
                ExternalTool.Result info = ExternalTool.run(TOOL_TIMEOUT, nbdinfo, uri);
                assertTrue(info.exitCode() != 0, "nbdinfo " + uri + " must be refused:\n" + info.output());
                ExternalTool.Result list = ExternalTool.run(TOOL_TIMEOUT, nbdinfo, "--list", uri);
                assertTrue(list.exitCode() != 0, "nbdinfo --list " + uri + " must be refused:\n" + list.output());
            }
            byte[] junk = new byte[1 << 20];
            new Random(5).nextBytes(junk);
            Path src = fx.dir.resolve("junk.bin");
            Files.write(src, junk);
            ExternalTool.Result copy = ExternalTool.run(TOOL_TIMEOUT, nbdcopy, src.toString(), fx.tcpUri("vol0"));
            assertTrue(copy.exitCode() != 0, "plaintext nbdcopy must be refused:\n" + copy.output());
            ExternalTool.Result qemu = ExternalTool.run(TOOL_TIMEOUT, qemuImg, "convert", "-n", "-f", "raw", "-O",
                    "raw", src.toString(), fx.tcpUri("vol0"));
            assertTrue(qemu.exitCode() != 0, "plaintext qemu-img must be refused:\n" + qemu.output());
            assertArrayEquals(before, fx.fileBytes(0, (int) SIZE), "nothing reached the backing store");
        }
    }
}
