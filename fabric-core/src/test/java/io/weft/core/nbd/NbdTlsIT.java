package io.weft.core.nbd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.testing.RequiredTool;
import io.weft.core.tls.TlsLayout;
import io.weft.core.tls.CertificateAuthority;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/** Real clients over NBD_OPT_STARTTLS: libnbd (nbdinfo, nbdcopy) and qemu, with the PEM layout they read. */
@Timeout(180)
class NbdTlsIT {
    private static final long SIZE = 32L << 20;
    private static final Duration TOOL_TIMEOUT = Duration.ofSeconds(90);

    @TempDir
    Path certs;

    private static String tool(String name, String pkg) {
        return RequiredTool.require(name, pkg).toString();
    }

    private static String nbds(NbdFixture fx, Path dir) {
        return "nbds://127.0.0.1:" + fx.tcp.getPort() + "/vol0?tls-certificates=" + dir;
    }

    /** qemu's TLS object and image options (qemu-img and qemu-io take the same). */
    private static List<String> qemuTls(NbdFixture fx, Path dir) {
        return List.of("--object", "tls-creds-x509,id=tls0,dir=" + dir + ",endpoint=client", "--image-opts",
                "driver=nbd,host=127.0.0.1,port=" + fx.tcp.getPort() + ",export=vol0,tls-creds=tls0");
    }

    @Test
    void libnbdAndQemuReadAndWriteOverTls() throws Exception {
        String nbdinfo = tool("nbdinfo", "libnbd-bin");
        String nbdcopy = tool("nbdcopy", "libnbd-bin");
        String qemuImg = tool("qemu-img", "qemu-utils");
        CertificateAuthority.create("weft-test").writeNodeLayout(certs, "node", List.of());
        try (NbdFixture fx = new NbdFixture(SIZE, NbdServerOptions.defaults(), d -> d,
                NbdTls.fromDirectory(NbdTls.Mode.REQUIRE, certs, false))) {
            String info = ExternalTool.run(TOOL_TIMEOUT, nbdinfo, nbds(fx, certs)).assertOk().output();
            assertTrue(info.contains("with TLS") && info.contains("export-size: " + SIZE), info);
            String unix = ExternalTool.run(TOOL_TIMEOUT, nbdinfo,
                    "nbds+unix:///vol0?socket=" + fx.unixSocket + "&tls-certificates=" + certs).assertOk().output();
            assertTrue(unix.contains("with TLS"), unix);

            // Written over TLS, read back plain from the backing store, and back over TLS.
            long seed = Long.getLong("weft.test.seed", System.nanoTime());
            System.out.println("seed " + seed + " (replay with -Dweft.test.seed=" + seed + ")");
            byte[] content = new byte[(int) SIZE];
            new Random(seed).nextBytes(content);
            Path src = fx.dir.resolve("src.bin");
            Path back = fx.dir.resolve("back.bin");
            Files.write(src, content);
            ExternalTool.run(TOOL_TIMEOUT, nbdcopy, src.toString(), nbds(fx, certs)).assertOk();
            assertArrayEquals(content, fx.fileBytes(0, (int) SIZE), "the backing store holds what came over TLS");
            ExternalTool.run(TOOL_TIMEOUT, nbdcopy, nbds(fx, certs), back.toString()).assertOk();
            assertArrayEquals(content, Files.readAllBytes(back), "read back over TLS");

            List<String> info2 = new java.util.ArrayList<>(List.of(qemuImg, "info"));
            info2.addAll(qemuTls(fx, certs));
            String q = ExternalTool.run(TOOL_TIMEOUT, info2).assertOk().output();
            assertTrue(q.contains("(" + SIZE + " bytes)"), q);
            // qemu-img compare cannot take --image-opts for one side only: copy the image out and compare here.
            List<String> convert = new java.util.ArrayList<>(List.of(qemuImg, "convert", "-O", "raw"));
            convert.addAll(qemuTls(fx, certs));
            Path qemuBack = fx.dir.resolve("qemu-back.bin");
            convert.add(qemuBack.toString());
            ExternalTool.run(TOOL_TIMEOUT, convert).assertOk();
            assertArrayEquals(content, Files.readAllBytes(qemuBack), "qemu read the same image over TLS");
        }
    }

    @Test
    void verifyPeerRefusesAClientWithoutACertificate() throws Exception {
        String nbdinfo = tool("nbdinfo", "libnbd-bin");
        CertificateAuthority.create("weft-test").writeNodeLayout(certs, "node", List.of());
        Path caOnly = Files.createDirectories(certs.resolve("ca-only"));
        Files.copy(certs.resolve(TlsLayout.CA_CERT), caOnly.resolve(TlsLayout.CA_CERT));
        try (NbdFixture fx = new NbdFixture(SIZE, NbdServerOptions.defaults(), d -> d,
                NbdTls.fromDirectory(NbdTls.Mode.REQUIRE, certs, true))) {
            ExternalTool.Result anonymous = ExternalTool.run(TOOL_TIMEOUT, nbdinfo, nbds(fx, caOnly));
            assertTrue(anonymous.exitCode() != 0, anonymous.output());
            String ok = ExternalTool.run(TOOL_TIMEOUT, nbdinfo, nbds(fx, certs)).assertOk().output();
            assertTrue(ok.contains("with TLS"), ok);
        }
    }
}
