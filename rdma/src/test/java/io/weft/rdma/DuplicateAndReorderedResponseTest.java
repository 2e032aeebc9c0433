package io.weft.rdma;

import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.core.store.FileBackingStore;
import io.weft.core.store.StoreBlockDevice;
import io.weft.rdma.client.PathSpec;
import io.weft.rdma.client.RdmaClientConfig;
import io.weft.rdma.client.RdmaSession;
import io.weft.rdma.faults.WireFaultConnection;
import io.weft.rdma.faults.WireFaultProvider;
import io.weft.rdma.protocol.ConnectData;
import io.weft.rdma.server.RdmaServer;
import io.weft.rdma.server.RdmaServerConfig;
import io.weft.rdma.verbs.soft.SoftwareProvider;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Responses delivered twice or in swapped order on the client's IO connection (fault injection on the completions)
 * complete every request exactly once with its own data; the extra copies are counted as stale and dropped.
 */
class DuplicateAndReorderedResponseTest {
    private static final Duration WAIT = Duration.ofSeconds(15);

    @TempDir
    Path dir;

    @Test
    void duplicatedAndReorderedResponsesCorruptNothing() throws Exception {
        try (SoftwareProvider serverProvider = new SoftwareProvider();
             WireFaultProvider clientProvider = new WireFaultProvider(new SoftwareProvider());
             StoreBlockDevice store = new StoreBlockDevice(FileBackingStore.createSparse(dir.resolve("d"), 1 << 20));
             RdmaServer server = RdmaServer.start(serverProvider, RdmaServerConfig.DEFAULTS,
                     TestGrants.served("vol0", store),
                     List.of(new InetSocketAddress("127.0.0.1", 0)));
             RdmaSession session = RdmaSession.open(clientProvider, "dup", "vol0", TestGrants.GRANT,
                     List.of(PathSpec.to(server.listenAddresses().get(0))),
                     RdmaClientConfig.DEFAULTS.withQueueDepth(8))) {
            var dev = session.device();
            for (int b = 0; b < 8; b++) {
                TestIo.write(dev, b * 4096L, TestIo.pattern(b, 1, 4096));
            }
            WireFaultConnection io = clientProvider.connectionsTo(server.listenAddresses().get(0)).stream()
                    .filter(c -> ConnectData.parseRequest(c.connectPrivateData()).kind() == ConnectData.KIND_IO)
                    .findFirst().orElseThrow();

            long staleBefore = session.stats().staleResponses();
            io.duplicateNextInbound(4);
            for (int b = 0; b < 3; b++) {
                assertArrayEquals(TestIo.pattern(b, 1, 4096), TestIo.read(dev, b * 4096L, 4096), "block " + b);
            }
            TestIo.write(dev, 3 * 4096L, TestIo.pattern(3, 2, 4096));
            assertEquals(4, io.duplicatedInbound());
            // The copy is delivered right after the original, which already woke this thread: wait for it.
            await("every duplicate dropped as stale", WAIT,
                    () -> session.stats().staleResponses() == staleBefore + 4);

            io.reorderNextInboundPair();
            ByteBuffer five = ByteBuffer.allocate(4096);
            ByteBuffer six = ByteBuffer.allocate(4096);
            CompletableFuture<Integer> r5 = new CompletableFuture<>();
            CompletableFuture<Integer> r6 = new CompletableFuture<>();
            dev.submit(IoOp.READ, 5 * 4096L, 4096, 0, five, 5, (t, st) -> r5.complete(st));
            dev.submit(IoOp.READ, 6 * 4096L, 4096, 0, six, 6, (t, st) -> r6.complete(st));
            assertEquals(IoStatus.OK, r5.get(WAIT.toSeconds(), TimeUnit.SECONDS));
            assertEquals(IoStatus.OK, r6.get(WAIT.toSeconds(), TimeUnit.SECONDS));
            assertEquals(1, io.reorderedInbound(), "the two answers were swapped");
            assertArrayEquals(TestIo.pattern(5, 1, 4096), five.array());
            assertArrayEquals(TestIo.pattern(6, 1, 4096), six.array());

            for (int b = 0; b < 8; b++) {
                assertArrayEquals(TestIo.pattern(b, b == 3 ? 2 : 1, 4096), TestIo.read(store, b * 4096L, 4096),
                        "store block " + b);
            }
            assertEquals(0, session.stats().malformedResponses());
            assertTrue(session.stats().permitsInUse() == 0);
        }
    }
}
