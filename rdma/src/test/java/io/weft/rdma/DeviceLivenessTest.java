package io.weft.rdma;

import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.store.FileBackingStore;
import io.weft.core.store.StoreBlockDevice;
import io.weft.rdma.client.PathSpec;
import io.weft.rdma.client.RdmaClientConfig;
import io.weft.rdma.client.RdmaSession;
import io.weft.rdma.protocol.ControlMessage;
import io.weft.rdma.protocol.Grant;
import io.weft.rdma.server.RdmaServer;
import io.weft.rdma.server.RdmaServerConfig;
import io.weft.rdma.server.ServedDevice;
import io.weft.rdma.verbs.soft.SoftwareProvider;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What a storage node's lease check reads for an rdma mapping (issue 12): when the client holding a device open was
 * last heard on its session's admin paths. A heartbeating client's reading keeps moving; a client that opened its
 * device and then fell silent is never heard again (its path is closed at the heartbeat timeout); a device nobody
 * opened has no client.
 */
class DeviceLivenessTest {
    private static final Grant QUIET = Grant.issue("quiet", "quiet#1");
    @TempDir
    Path dir;

    @Test
    void aHeartbeatingClientIsHeardAndASilentOneIsNot() throws Exception {
        try (SoftwareProvider provider = new SoftwareProvider();
             StoreBlockDevice vol0 = new StoreBlockDevice(FileBackingStore.createSparse(dir.resolve("0"), 1 << 20));
             StoreBlockDevice vol1 = new StoreBlockDevice(FileBackingStore.createSparse(dir.resolve("1"), 1 << 20));
             RdmaServer server = RdmaServer.start(provider,
                     RdmaServerConfig.DEFAULTS.withHeartbeatTimeout(Duration.ofMillis(1000)),
                     Map.of("vol0", new ServedDevice(vol0, TestGrants.GRANT), "vol1", new ServedDevice(vol1, QUIET)),
                     List.of(new InetSocketAddress("127.0.0.1", 0)))) {
            InetSocketAddress address = server.listenAddresses().get(0);
            assertEquals(RdmaServer.NEVER_HEARD, server.deviceClientLastHeardNanos("vol0"), "nobody opened vol0");

            try (RdmaSession live = RdmaSession.open(provider, "live", "vol0", TestGrants.GRANT,
                    List.of(PathSpec.to(address)), RdmaClientConfig.DEFAULTS.withQueueDepth(8));
                 RawAdmin silent = RawAdmin.connect(address, 1)) {
                assertEquals(ControlMessage.OPEN_OK, silent.openWith(QUIET, "quiet", "vol1", 1).type());
                assertEquals(ControlMessage.DEVICE_OK, silent.openDevice(QUIET, "quiet", "vol1", 1).type());
                long lastWord = server.deviceClientLastHeardNanos("vol1");
                assertNotEquals(RdmaServer.NEVER_HEARD, lastWord, "vol1 is open in the quiet session");

                // The heartbeating client is heard again and again; the quiet one's path is closed meanwhile.
                long first = server.deviceClientLastHeardNanos("vol0");
                await("the live client heard again", RawAdmin.WAIT,
                        () -> server.deviceClientLastHeardNanos("vol0") - first > 0);
                silent.peer.awaitClose(RawAdmin.WAIT);
                long after = server.deviceClientLastHeardNanos("vol1");
                assertTrue(after == lastWord || after == RdmaServer.NEVER_HEARD,
                        "a silent client must not be heard after its last word: " + after + " vs " + lastWord);
                long heard = server.deviceClientLastHeardNanos("vol0");
                await("the live client still heard after the quiet one's path closed", RawAdmin.WAIT,
                        () -> server.deviceClientLastHeardNanos("vol0") - heard > 0);
                assertTrue(live.paths().get(0).reconnects() == 0, live.paths().get(0).lastError());
            }
        }
    }
}
