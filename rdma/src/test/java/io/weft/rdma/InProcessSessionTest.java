package io.weft.rdma;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.core.store.FileBackingStore;
import io.weft.core.store.StoreBlockDevice;
import io.weft.rdma.client.PathSpec;
import io.weft.rdma.client.RdmaClientConfig;
import io.weft.rdma.client.RdmaSession;
import io.weft.rdma.server.RdmaServer;
import io.weft.rdma.server.RdmaServerConfig;
import io.weft.rdma.verbs.soft.SoftwareProvider;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Session protocol with client and storage in one JVM (fast feedback; the two-JVM tests are the real proof). */
class InProcessSessionTest {
    @TempDir
    Path dir;

    @Test
    void writesAndReadsBackOverOnePath() throws Exception {
        try (SoftwareProvider provider = new SoftwareProvider();
             StoreBlockDevice store = new StoreBlockDevice(FileBackingStore.createSparse(dir.resolve("d"), 8 << 20));
             RdmaServer server = RdmaServer.start(provider, RdmaServerConfig.DEFAULTS, TestGrants.served("vol0", store),
                     List.of(new InetSocketAddress("127.0.0.1", 0)));
             RdmaSession session = RdmaSession.open(provider, "s1", "vol0", TestGrants.GRANT,
                     List.of(PathSpec.to(server.listenAddresses().get(0))), RdmaClientConfig.DEFAULTS)) {
            var dev = session.device();
            assertEquals(8 << 20, dev.info().size());
            for (int i = 0; i < 64; i++) {
                TestIo.write(dev, i * 4096L, TestIo.pattern(i, 1, 4096));
            }
            for (int i = 0; i < 64; i++) {
                assertArrayEquals(TestIo.pattern(i, 1, 4096), TestIo.read(dev, i * 4096L, 4096), "block " + i);
            }
            assertEquals(IoStatus.EOVERFLOW, TestIo.io(dev, IoOp.READ, 8 << 20, ByteBuffer.allocate(4096)));
            assertEquals(IoStatus.OK, TestIo.io(dev, IoOp.FLUSH, 0, null));
            ByteBuffer direct = ByteBuffer.allocateDirect(8192);
            direct.put(TestIo.pattern(99, 2, 8192)).flip();
            assertEquals(IoStatus.OK, TestIo.io(dev, IoOp.WRITE, 1 << 20, direct));
            assertArrayEquals(TestIo.pattern(99, 2, 8192), TestIo.read(dev, 1 << 20, 8192));
        }
    }
}
