package io.weft.rdma;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A request submitted while its client queue is idle is posted by the submitting thread (no hand-off to the queue
 * agent, which then wakes only for the answer); the data path stays correct.
 */
class InlineSubmitTest {
    private static final int REQUESTS = 20;

    @TempDir
    Path dir;

    private static boolean isIo(WireFaultConnection c) {
        ConnectData.Request r = ConnectData.parseRequest(c.connectPrivateData());
        return r != null && r.kind() == ConnectData.KIND_IO;
    }

    @Test
    void aRequestToAnIdleQueueIsPostedByTheSubmittingThread() throws Exception {
        try (SoftwareProvider serverProvider = new SoftwareProvider();
             WireFaultProvider clientProvider = new WireFaultProvider(new SoftwareProvider());
             StoreBlockDevice store = new StoreBlockDevice(FileBackingStore.createSparse(dir.resolve("d"), 1 << 20));
             RdmaServer server = RdmaServer.start(serverProvider, RdmaServerConfig.DEFAULTS,
                     TestGrants.served("vol0", store), List.of(new InetSocketAddress("127.0.0.1", 0)));
             RdmaSession session = RdmaSession.open(clientProvider, "inline", "vol0", TestGrants.GRANT,
                     List.of(PathSpec.to(server.listenAddresses().get(0))), RdmaClientConfig.DEFAULTS)) {
            WireFaultConnection io = clientProvider.connections().stream().filter(InlineSubmitTest::isIo)
                    .findFirst().orElseThrow();
            // One at a time: between two requests the agent has nothing to do, so the queue is usually free when the
            // next one comes (a request that finds the agent still in a duty cycle is handed to it, as before).
            int postedHere = 0;
            for (int i = 0; i < REQUESTS; i++) {
                TestIo.write(session.device(), (long) i * 4096, TestIo.pattern(i, 1, 4096));
                if (io.lastWriteWithImmediateThread() == Thread.currentThread()) {
                    postedHere++;
                }
            }
            int inline = postedHere;
            assertTrue(inline > 0, () -> "none of " + REQUESTS + " requests was posted by the submitting thread; "
                    + "the last one by " + io.lastWriteWithImmediateThread());
            for (int i = 0; i < REQUESTS; i++) {
                assertArrayEquals(TestIo.pattern(i, 1, 4096), TestIo.read(store, (long) i * 4096, 4096),
                        "block " + i);
                assertArrayEquals(TestIo.pattern(i, 1, 4096), TestIo.read(session.device(), (long) i * 4096, 4096),
                        "block " + i + " read back over RDMA");
            }
        }
    }
}
