package io.weft.actors.drill.harness;

import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.core.mirror.MirrorFixture;
import io.weft.core.nbd.NbdExport;
import io.weft.core.nbd.NbdServer;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The drill's NBD driver device: it reads and writes through a real {@link NbdServer}, holds requests while the
 * server is gone and sends them once it is back, and a whole drill through it across a server restart (what the
 * client-kill drill does to a client node's export) keeps every acknowledged write.
 */
class NbdDriveDeviceTest extends FileStoreTestBase {
    static final long SIZE = 8L << 20;

    NbdDriveDeviceTest() {
        super("export.img", SIZE);
    }

    private NbdServer serve() {
        NbdServer server = new NbdServer();
        server.addExport(new NbdExport("d", "drill export", store));
        return server;
    }

    @Test
    void readsWritesAndHoldsRequestsWhileTheServerIsAway() throws Exception {
        NbdServer server = serve();
        InetSocketAddress at = server.bindTcp("127.0.0.1", 0);
        try (NbdDriveDevice d = new NbdDriveDevice("d", 4)) {
            d.connect(at);
            assertEquals(SIZE, d.info().size());
            byte[] data = MirrorFixture.pattern(65536, 3);
            assertEquals(IoStatus.OK, MirrorFixture.write(d, 4096, data));
            assertEquals(IoStatus.OK, MirrorFixture.io(d, IoOp.FLUSH, 0, 0, 0, null));
            assertTrue(java.util.Arrays.equals(data, MirrorFixture.read(d, 4096, 65536)));
            assertTrue(java.util.Arrays.equals(data, MirrorFixture.read(store, 4096, 65536)), "on the export");

            server.close();
            await("connection seen closed", Duration.ofSeconds(10), () -> !d.connected());
            // Submitted with no connection: held, not failed.
            CompletableFuture<Integer> held = new CompletableFuture<>();
            ByteBuffer buf = ByteBuffer.allocateDirect(4096);
            buf.put(MirrorFixture.pattern(4096, 8)).flip();
            d.submit(IoOp.WRITE, 0, 4096, 0, buf, 1, (tag, st) -> held.complete(st));
            assertFalse(held.isDone(), "held while there is no server");

            NbdServer again = serve();
            try {
                d.connect(again.bindTcp("127.0.0.1", 0));
                assertEquals(IoStatus.OK, held.get(10, TimeUnit.SECONDS));
                assertTrue(java.util.Arrays.equals(MirrorFixture.pattern(4096, 8), MirrorFixture.read(store, 0, 4096)));
            } finally {
                again.close();
            }
        } finally {
            server.close();
        }
    }

    @Test
    void aDrillThroughTheExportSurvivesAServerRestartWithEveryAcknowledgedWriteIntact() throws Exception {
        NbdServer[] server = {serve()};
        InetSocketAddress at = server[0].bindTcp("127.0.0.1", 0);
        DrillOptions options = new DrillOptions(21, 8, 4096, 65536, 30, SIZE, 100, 200, 100, 10_000);
        try (NbdDriveDevice d = new NbdDriveDevice("d", options.queueDepth())) {
            d.connect(at);
            DrillFault restart = DrillFault.of("server-restart", () -> server[0].close(), () -> {
                server[0] = serve();
                d.connect(server[0].bindTcp("127.0.0.1", 0));
            });
            DrillReport report = new Drill(d, null, restart, options).run();
            assertTrue(report.intact(), report.toText());
            assertEquals(SIZE / 4096, report.blocksVerified(), report.toText());
            assertTrue(report.writesAcknowledged() > 0, report.toText());
            assertEquals(-1, report.legBytesCompared(), "no legs: " + report.toText());
        } finally {
            server[0].close();
        }
    }
}
