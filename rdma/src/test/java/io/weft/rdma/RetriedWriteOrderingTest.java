package io.weft.rdma;

import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.core.store.StoreBlockDevice;
import io.weft.rdma.client.PathPolicy;
import io.weft.rdma.client.PathState;
import io.weft.rdma.client.PathStatus;
import io.weft.rdma.client.RdmaClientConfig;
import io.weft.rdma.client.RdmaSession;
import io.weft.rdma.faults.WireFaultConnection;
import io.weft.rdma.faults.WireFaultProvider;
import io.weft.rdma.faults.WireFaultRig;
import io.weft.rdma.protocol.ConnectData;
import io.weft.rdma.server.RdmaServer;
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
 * Window 2 of issue #11 on the RDMA transport: a WRITE held on the wire of a path the client declared failed
 * (heartbeat timeout) must not execute after its retry on another path, nor after a newer write to the same blocks,
 * when the held frames finally reach the storage side (whose own timeout has not fired, so it still listens on that
 * path).
 */
class RetriedWriteOrderingTest {
    private static final Duration WAIT = Duration.ofSeconds(20);

    @TempDir
    Path dir;

    private static PathStatus path(RdmaSession s, int id) {
        return s.paths().stream().filter(p -> p.id() == id).findFirst().orElseThrow();
    }

    private static CompletableFuture<Integer> submit(RdmaSession s, IoOp op, long offset, byte[] data) {
        CompletableFuture<Integer> done = new CompletableFuture<>();
        s.device().submit(op, offset, data.length, 0, ByteBuffer.wrap(data), 0, (t, st) -> done.complete(st));
        return done;
    }

    /** One queue per path, round robin; heartbeats every 50 ms and a path silent for 400 ms is declared failed. */
    private static final RdmaClientConfig CONFIG = new RdmaClientConfig(8, 128 * 1024, 1, PathPolicy.ROUND_ROBIN,
            Duration.ofMillis(50), Duration.ofMillis(400), Duration.ofSeconds(1), Duration.ofMillis(20),
            Duration.ofMillis(200), Duration.ofSeconds(30));

    @Test
    void writeHeldOnAFailedPathNeverLandsAfterItsRetryOrANewerWrite() throws Exception {
        // The storage side's own heartbeat timeout stays far away: it still serves a path whose frames are held.
        try (WireFaultRig rig = WireFaultRig.open(dir.resolve("d"), 1 << 20, 2, "ordering", CONFIG)) {
            WireFaultProvider clientProvider = rig.clientProvider;
            StoreBlockDevice store = rig.store;
            RdmaServer server = rig.server;
            RdmaSession session = rig.session;
            InetSocketAddress routeA = server.listenAddresses().get(0);
            int a = session.paths().get(0).id();
            int b = session.paths().get(1).id();
            await("both paths connected", WAIT,
                    () -> session.paths().stream().allMatch(p -> p.state() == PathState.CONNECTED));
            // Only A is up when W1 leaves, so W1 goes out on A.
            session.disconnectPath(b);
            await("path B down", WAIT, () -> path(session, b).state() == PathState.DISCONNECTED);

            clientProvider.partition(routeA); // A's frames (requests, heartbeats, closes) stay on the wire
            byte[] w1 = TestIo.pattern(0, 1, 4096);
            byte[] w2 = TestIo.pattern(0, 2, 4096);
            CompletableFuture<Integer> first = submit(session, IoOp.WRITE, 0, w1);
            await("W1 held on path A's wire", WAIT, () -> clientProvider.connectionsTo(routeA).stream()
                    .anyMatch(c -> c.heldOutbound() > 0 && isIo(c)));

            session.reconnectPath(b);
            assertEquals(IoStatus.OK, first.get(WAIT.toSeconds(), TimeUnit.SECONDS), "W1 retried on path B");
            assertTrue(path(session, a).state() != PathState.CONNECTED, "path A was declared failed");
            assertEquals(IoStatus.OK, submit(session, IoOp.WRITE, 0, w2).get(WAIT.toSeconds(), TimeUnit.SECONDS),
                    "W2 (newer, same block)");
            assertArrayEquals(w2, TestIo.read(store, 0, 4096), "store holds W2 before the held frames arrive");

            // Path A's IO frames reach the storage side now, followed by the client's close (EOF) of that connection.
            for (WireFaultConnection c : clientProvider.connectionsTo(routeA)) {
                if (isIo(c)) {
                    c.releaseOutbound();
                }
            }
            // Frames before the EOF are executed before it: once the storage side dropped A's IO connection, the
            // held W1 has run there or been refused.
            await("storage side has only path B's IO connection", WAIT,
                    () -> server.sessions().get(0).ioConnections() == 1);
            assertArrayEquals(w2, TestIo.read(store, 0, 4096),
                    "the store holds W1's data: the delayed original WRITE executed after its retry and after W2");
            assertArrayEquals(w2, TestIo.read(session.device(), 0, 4096));
            clientProvider.heal(routeA);
        }
    }

    @Test
    void reopenedPathFencesItsOldConnectionsBeforeTheRetry() throws Exception {
        // The storage side's own heartbeat timeout stays far away: it still serves a path whose frames are held.
        try (WireFaultRig rig = WireFaultRig.open(dir.resolve("d"), 1 << 20, 1, "reopen", CONFIG)) {
            WireFaultProvider clientProvider = rig.clientProvider;
            StoreBlockDevice store = rig.store;
            RdmaServer server = rig.server;
            RdmaSession session = rig.session;
            InetSocketAddress route = server.listenAddresses().get(0);
            int a = session.paths().get(0).id();
            clientProvider.partition(route);
            byte[] w1 = TestIo.pattern(0, 1, 4096);
            byte[] w2 = TestIo.pattern(0, 2, 4096);
            CompletableFuture<Integer> first = submit(session, IoOp.WRITE, 0, w1);
            await("W1 held on the wire", WAIT, () -> clientProvider.connectionsTo(route).stream()
                    .anyMatch(c -> c.heldOutbound() > 0 && isIo(c)));
            await("path declared failed", WAIT, () -> path(session, a).state() != PathState.CONNECTED);
            List<WireFaultConnection> old = clientProvider.connectionsTo(route);
            clientProvider.heal(route); // the same path re-OPENs the session on new connections
            assertEquals(IoStatus.OK, first.get(WAIT.toSeconds(), TimeUnit.SECONDS), "W1 retried after re-OPEN");
            assertEquals(IoStatus.OK, submit(session, IoOp.WRITE, 0, w2).get(WAIT.toSeconds(), TimeUnit.SECONDS));
            for (WireFaultConnection c : old) {
                c.releaseOutbound(); // the old IO frames (and the old admin's heartbeats and close) arrive now
            }
            await("old connections gone on the storage side", WAIT,
                    () -> server.sessions().get(0).ioConnections() == 1 && server.sessions().get(0).paths() == 1);
            assertArrayEquals(w2, TestIo.read(store, 0, 4096), "a held WRITE executed after its retry and W2");
            assertEquals(0, session.stats().fencesPending(), () -> "DEBUG " + session.stats() + " server "
                    + server.sessions());
        }
    }

    private static boolean isIo(WireFaultConnection c) {
        ConnectData.Request r = ConnectData.parseRequest(c.connectPrivateData());
        return r != null && r.kind() == ConnectData.KIND_IO;
    }
}
