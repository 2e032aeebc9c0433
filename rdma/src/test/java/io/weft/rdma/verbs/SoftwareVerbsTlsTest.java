package io.weft.rdma.verbs;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.tls.CertificateAuthority;
import io.weft.core.tls.TlsLayout;
import io.weft.rdma.verbs.soft.SoftwareProvider;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Random;
import javax.net.ssl.SSLContext;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The software provider over TLS: every test of {@link SoftwareVerbsTest} again with mutually authenticated TLS on
 * both connections' sockets, plus bulk data across many TLS records, and the peers that must be refused: a node of
 * another CA and a plaintext peer.
 */
class SoftwareVerbsTlsTest extends SoftwareVerbsTest {
    private static Path certs;
    private static SSLContext cluster;
    private static SSLContext foreign;

    @BeforeAll
    static void certificates() throws Exception {
        certs = Files.createTempDirectory("weft-soft-tls");
        CertificateAuthority.create("cluster").writeNodeLayout(certs.resolve("a"), "a", List.of());
        CertificateAuthority.create("elsewhere").writeNodeLayout(certs.resolve("x"), "x", List.of());
        cluster = TlsLayout.open(certs.resolve("a")).sslContext();
        foreign = TlsLayout.open(certs.resolve("x")).sslContext();
    }

    @AfterAll
    static void removeCertificates() throws IOException {
        try (var paths = Files.walk(certs)) {
            paths.sorted(java.util.Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }

    @Override
    SoftwareProvider newProvider() {
        return new SoftwareProvider(cluster);
    }

    @Test
    void bulkWritesCrossManyRecordsIntact() throws Exception {
        long seed = Long.getLong("weft.test.seed", System.nanoTime());
        System.out.println("seed " + seed + " (replay with -Dweft.test.seed=" + seed + ")");
        Random random = new Random(seed);
        int size = 1 << 20;
        MemoryRegion big = serverPd.register(ByteBuffer.allocateDirect(size), Access.REMOTE_WRITE);
        MemoryRegion data = clientPd.register(ByteBuffer.allocateDirect(size), Access.LOCAL_WRITE);
        byte[] expected = new byte[size];
        random.nextBytes(expected);
        data.buffer().put(0, expected);
        int chunk = 60_000; // not a multiple of the 16 KiB record: frames straddle records
        int posted = 0;
        for (int at = 0; at < size; at += chunk) {
            int length = Math.min(chunk, size - at);
            while (!client.postWrite(data, at, length, big.address() + at, big.rkey())) {
                clientCq.poll(clientEvents, 16); // send buffer full: let it drain
                serverCq.poll(serverEvents, 16);
            }
            posted++;
        }
        assertTrue(posted > 16);
        // Frames are ordered on the stream: once the immediate arrives, every write before it has landed.
        assertTrue(client.postWriteWithImmediate(data, 0, 0, big.address(), big.rkey(), 77));
        pump(serverEvents, 1, 0);
        assertEquals(List.of("imm 100 77 0"), serverEvents.events);
        byte[] landed = new byte[size];
        big.buffer().get(0, landed);
        assertArrayEquals(expected, landed);
    }

    @Test
    void aNodeOfAnotherCaIsRefused() {
        SoftwareProvider stranger = new SoftwareProvider(foreign);
        try {
            assertThrows(IOException.class, () -> stranger.connect(listener.localAddress(), null,
                    stranger.createProtectionDomain(), stranger.createCompletionQueue("x"), OPTIONS, new byte[0],
                    Duration.ofSeconds(5), ConnectionSetup.NONE));
        } finally {
            stranger.close();
        }
    }

    @Test
    void aPlaintextPeerIsRefused() throws Exception {
        SoftwareProvider plain = new SoftwareProvider();
        VerbsConnection first = accepted.get();
        try {
            assertThrows(IOException.class, () -> plain.connect(listener.localAddress(), null,
                    plain.createProtectionDomain(), plain.createCompletionQueue("p"), OPTIONS, new byte[] {1, 2},
                    Duration.ofSeconds(5), ConnectionSetup.NONE));
        } finally {
            plain.close();
        }
        assertSame(first, accepted.get(), "the plaintext peer's request never reached the handler");
    }
}
