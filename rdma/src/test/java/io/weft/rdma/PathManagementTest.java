package io.weft.rdma;

import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.store.FileBackingStore;
import io.weft.core.store.StoreBlockDevice;
import io.weft.rdma.client.PathPolicy;
import io.weft.rdma.client.PathSpec;
import io.weft.rdma.client.PathState;
import io.weft.rdma.client.PathStatus;
import io.weft.rdma.client.RdmaClientConfig;
import io.weft.rdma.client.RdmaSession;
import io.weft.rdma.server.RdmaServer;
import io.weft.rdma.server.RdmaServerConfig;
import io.weft.rdma.verbs.soft.SoftwareProvider;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Paths added, removed, disconnected and reconnected at run time while verified IO keeps flowing. */
class PathManagementTest {
    private static final Duration WAIT = Duration.ofSeconds(15);

    @TempDir
    Path dir;

    private static PathStatus path(RdmaSession s, int id) {
        return s.paths().stream().filter(p -> p.id() == id).findFirst().orElseThrow();
    }

    @Test
    void pathsChangeAtRunTimeWithoutLosingIo() throws Exception {
        try (SoftwareProvider provider = new SoftwareProvider();
             StoreBlockDevice store = new StoreBlockDevice(FileBackingStore.createSparse(dir.resolve("d"), 16 << 20));
             RdmaServer server = RdmaServer.start(provider, RdmaServerConfig.DEFAULTS, TestGrants.served("vol0", store),
                     List.of(new InetSocketAddress("127.0.0.1", 0), new InetSocketAddress("127.0.0.2", 0)));
             RdmaSession session = RdmaSession.open(provider, "paths", "vol0", TestGrants.GRANT,
                     List.of(PathSpec.to(server.listenAddresses().get(0)),
                             PathSpec.to(server.listenAddresses().get(1))),
                     RdmaClientConfig.DEFAULTS.withPolicy(PathPolicy.MIN_INFLIGHT).withQueuesPerPath(2))) {
            int first = session.paths().get(0).id();
            int second = session.paths().get(1).id();
            await("both connected", WAIT, () -> session.paths().stream()
                    .allMatch(p -> p.state() == PathState.CONNECTED));
            VerifyingLoad load = new VerifyingLoad(session.device(), 16, 512);
            load.start();
            await("IO on both paths", WAIT, () -> path(session, first).completed() > 100
                    && path(session, second).completed() > 100);

            session.disconnectPath(first);
            // Answers already on the wire may still complete on it; once nothing is in flight there, nothing can.
            await("first path disconnected and drained", WAIT,
                    () -> path(session, first).state() == PathState.DISCONNECTED
                            && path(session, first).inflight() == 0);
            long frozen = path(session, first).completed();
            long onSecond = path(session, second).completed();
            await("IO continues on the second path", WAIT,
                    () -> path(session, second).completed() > onSecond + 500);
            assertEquals(frozen, path(session, first).completed(), "a disconnected path must carry nothing");

            session.reconnectPath(first);
            await("first path back and used", WAIT, () -> path(session, first).state() == PathState.CONNECTED
                    && path(session, first).completed() > frozen + 100);

            session.removePath(second);
            await("second path gone", WAIT, () -> session.paths().size() == 1);
            int third = session.addPath(PathSpec.to(server.listenAddresses().get(1)));
            await("added path carries IO", WAIT, () -> path(session, third).state() == PathState.CONNECTED
                    && path(session, third).completed() > 100);

            load.stop();
            load.verifyAll();
            assertTrue(load.failures().isEmpty(), () -> "failures: " + load.failures());
            assertEquals(0, session.stats().malformedResponses());
        }
    }
}
