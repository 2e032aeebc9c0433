package io.weft.core.nbd;

import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Pipelined requests, completions from other threads in any order, several connections, draining on close. */
@Timeout(120)
class NbdPipeliningTest {
    private static final long SIZE = 16L << 20;

    @Test
    void pipelinedRequestsCompletedInReverseOrderOnAnotherThread() throws Exception {
        int n = 32;
        ReorderingDevice[] holder = new ReorderingDevice[1];
        try (NbdFixture fx = new NbdFixture(SIZE, NbdServerOptions.defaults(), d -> {
            holder[0] = new ReorderingDevice(d, 32);
            return holder[0];
        })) {
            ReorderingDevice device = holder[0];
            Random random = new Random(7);
            byte[][] data = new byte[n][];
            try (RawNbdClient c = RawNbdClient.connect(fx.unixAddress())) {
                c.go("vol0", true, false);
                // 32 writes in one burst; the device answers them newest first.
                ByteBuffer burst = ByteBuffer.allocate(n * (28 + 4096));
                for (int i = 0; i < n; i++) {
                    data[i] = new byte[4096];
                    random.nextBytes(data[i]);
                    NbdRequestHeader.encode(burst, burst.position(), 0, NbdProtocol.CMD_WRITE, 1000 + i,
                            i * 8192L, 4096);
                    burst.position(burst.position() + 28).put(data[i]);
                }
                c.write(burst.flip());
                List<Long> handles = new ArrayList<>();
                for (int i = 0; i < n; i++) {
                    RawNbdClient.Reply r = c.readReply(0);
                    assertEquals(0, r.error());
                    handles.add(r.handle());
                }
                List<Long> expected = new ArrayList<>();
                for (int i = n - 1; i >= 0; i--) {
                    expected.add(1000L + i);
                }
                assertEquals(expected, handles, "replies follow completion order, not request order");

                // 32 pipelined reads, again completed in reverse: every reply carries its own request's data.
                ByteBuffer reads = ByteBuffer.allocate(n * 28);
                for (int i = 0; i < n; i++) {
                    NbdRequestHeader.encode(reads, i * 28, 0, NbdProtocol.CMD_READ, 2000 + i, i * 8192L, 4096);
                }
                c.write(reads);
                Map<Long, byte[]> got = new HashMap<>();
                long first = -1;
                for (int i = 0; i < n; i++) {
                    RawNbdClient.Reply r = c.readReply(0);
                    assertEquals(0, r.error());
                    assertEquals(NbdProtocol.REPLY_TYPE_OFFSET_DATA, r.type());
                    ByteBuffer p = ByteBuffer.wrap(r.payload());
                    int index = (int) (r.handle() - 2000);
                    assertEquals(index * 8192L, p.getLong());
                    byte[] d = new byte[4096];
                    p.get(d);
                    got.put(r.handle(), d);
                    if (i == 0) {
                        first = r.handle();
                    }
                }
                assertEquals(2000L + n - 1, first);
                for (int i = 0; i < n; i++) {
                    assertArrayEquals(data[i], got.get(2000L + i), "read " + i);
                }
            }
            assertEquals(2 * n, device.submittedCount());
        }
    }

    @Test
    void manyConnectionsOnManyExportsInParallel() throws Exception {
        try (NbdFixture fx = new NbdFixture(SIZE)) {
            ReorderingDevice async = fx.closeLater(new ReorderingDevice(fx.storeDevice, 1));
            fx.server.addExport(new NbdExport("async", "", async));
            fx.server.addExport(new NbdExport("again", "", fx.device));
            String[] exports = {"vol0", "async", "again"};
            int clients = 9;
            ExecutorService pool = Executors.newFixedThreadPool(clients);
            try {
                List<Future<?>> futures = new ArrayList<>();
                for (int k = 0; k < clients; k++) {
                    int id = k;
                    futures.add(pool.submit(() -> {
                        Random random = new Random(id);
                        // Each client owns a 1 MiB region; the exports share the same store.
                        long base = (long) id << 20;
                        try (RawNbdClient c = id % 2 == 0 ? RawNbdClient.connect(fx.tcp)
                                : RawNbdClient.connect(fx.unixAddress())) {
                            c.go(exports[id % exports.length], id % 3 == 0, false);
                            for (int round = 0; round < 50; round++) {
                                int len = 512 * (1 + random.nextInt(64));
                                long off = base + 512L * random.nextInt((1 << 20) / 512 - 64);
                                byte[] d = new byte[len];
                                random.nextBytes(d);
                                c.write(off, d, round);
                                if (id % 3 == 0) {
                                    c.sendRequest(0, NbdProtocol.CMD_READ, round, off, len, null);
                                    RawNbdClient.Reply r = c.readReply(0);
                                    byte[] got = new byte[len];
                                    ByteBuffer.wrap(r.payload(), 8, len).get(got);
                                    assertArrayEquals(d, got);
                                } else {
                                    assertArrayEquals(d, c.read(off, len, round));
                                }
                            }
                            c.disconnect();
                            assertTrue(c.closedByServer());
                        }
                        return null;
                    }));
                }
                for (Future<?> f : futures) {
                    f.get();
                }
            } finally {
                pool.shutdownNow();
            }
        }
    }

    @Test
    void closeLetsInFlightRequestsFinishAndReply() throws Exception {
        GatedDevice[] holder = new GatedDevice[1];
        NbdFixture fx = new NbdFixture(SIZE, NbdServerOptions.defaults(), d -> {
            holder[0] = new GatedDevice(d);
            return holder[0];
        });
        try {
            GatedDevice device = holder[0];
            int n = 8;
            try (RawNbdClient c = RawNbdClient.connect(fx.tcp)) {
                c.go("vol0", false, false);
                byte[] data = new byte[4096];
                new Random(3).nextBytes(data);
                ByteBuffer burst = ByteBuffer.allocate(n * (28 + 4096));
                for (int i = 0; i < n; i++) {
                    NbdRequestHeader.encode(burst, burst.position(), 0, NbdProtocol.CMD_WRITE, i, i * 4096L, 4096);
                    burst.position(burst.position() + 28).put(data);
                }
                c.write(burst.flip());
                await("all writes reach the device", Duration.ofSeconds(30), () -> device.submittedCount() == n);

                CompletableFuture<Void> closing = CompletableFuture.runAsync(fx.server::close);
                // The listener goes away first: new connections are refused while old requests are pending.
                await("listener closed", Duration.ofSeconds(30), () -> !canConnect(fx));
                assertFalse(closing.isDone(), "close() waits for the held requests");

                device.open();
                for (int i = 0; i < n; i++) {
                    RawNbdClient.Reply r = c.readReply(0);
                    assertEquals(0, r.error());
                }
                assertTrue(c.closedByServer(), "the connection closes once everything is answered");
                closing.get();
                for (int i = 0; i < n; i++) {
                    assertArrayEquals(data, fx.fileBytes(i * 4096L, 4096), "write " + i + " was done");
                }
            }
        } finally {
            fx.close();
        }
    }

    @Test
    void disconnectAnswersEverythingInFlightFirst() throws Exception {
        ReorderingDevice[] holder = new ReorderingDevice[1];
        try (NbdFixture fx = new NbdFixture(SIZE, NbdServerOptions.defaults(), d -> {
            holder[0] = new ReorderingDevice(d, 4);
            return holder[0];
        })) {
            try (RawNbdClient c = RawNbdClient.connect(fx.tcp)) {
                c.go("vol0", false, false);
                ByteBuffer b = ByteBuffer.allocate(4 * 28 + 28);
                for (int i = 0; i < 4; i++) {
                    NbdRequestHeader.encode(b, i * 28, 0, NbdProtocol.CMD_READ, i, i * 4096L, 4096);
                }
                NbdRequestHeader.encode(b, 4 * 28, 0, NbdProtocol.CMD_DISC, 99, 0, 0);
                c.write(b);
                for (int i = 0; i < 4; i++) {
                    RawNbdClient.Reply r = c.readReply(4096);
                    assertEquals(0, r.error());
                    assertEquals(3 - i, r.handle());
                }
                assertTrue(c.closedByServer());
            }
        }
    }

    @Test
    void removeExportClosesItsConnectionsOnly() throws Exception {
        try (NbdFixture fx = new NbdFixture(SIZE)) {
            fx.server.addExport(new NbdExport("other", "", fx.device));
            try (RawNbdClient keep = RawNbdClient.connect(fx.tcp); RawNbdClient gone = RawNbdClient.connect(fx.tcp)) {
                keep.go("vol0", false, false);
                gone.go("other", false, false);
                fx.server.removeExport("other");
                assertTrue(gone.closedByServer());
                assertArrayEquals(new byte[512], keep.read(0, 512, 1));
            }
            try (RawNbdClient c = RawNbdClient.connect(fx.tcp).start()) {
                c.sendOption(NbdProtocol.OPT_GO, RawNbdClient.infoRequest("other"));
                RawNbdClient.expect(c.readOptionReply(), NbdProtocol.REP_ERR_UNKNOWN);
            }
        }
    }

    @Test
    void connectionsBeyondTheLimitAreClosedAndOthersGoOn() throws Exception {
        try (NbdFixture fx = new NbdFixture(SIZE, NbdServerOptions.defaults().withMaxConnections(2), d -> d)) {
            RawNbdClient a = RawNbdClient.connect(fx.tcp);
            RawNbdClient b = RawNbdClient.connect(fx.unixAddress());
            a.go("vol0", false, false);
            b.go("vol0", false, false);
            try (RawNbdClient refused = RawNbdClient.connect(fx.tcp)) {
                assertTrue(refused.closedByServer(), "a third connection is closed at once");
            }
            assertArrayEquals(new byte[512], a.read(0, 512, 1));
            a.disconnect();
            assertTrue(a.closedByServer());
            a.close();
            await("the slot of the closed connection is free", Duration.ofSeconds(30),
                    () -> fx.server.connectionCount() == 1);
            try (RawNbdClient c = RawNbdClient.connect(fx.tcp)) {
                c.go("vol0", false, false);
                assertArrayEquals(new byte[512], c.read(512, 512, 2));
            }
            b.close();
        }
    }

    @Test
    void closeLeavesNoServerThreadsBehind() throws Exception {
        NbdFixture fx = new NbdFixture(SIZE);
        ReorderingDevice async = new ReorderingDevice(fx.storeDevice, 1);
        fx.server.addExport(new NbdExport("async", "", async));
        List<RawNbdClient> clients = new ArrayList<>();
        try {
            for (int i = 0; i < 4; i++) {
                RawNbdClient c = RawNbdClient.connect(i % 2 == 0 ? fx.tcp : fx.unixAddress());
                clients.add(c);
                c.go(i < 2 ? "vol0" : "async", false, false);
                assertArrayEquals(new byte[4096], c.read(0, 4096, i));
            }
            // One connection stays in the handshake.
            RawNbdClient waiting = RawNbdClient.connect(fx.tcp);
            clients.add(waiting);
            waiting.readGreeting();
            assertTrue(serverThreads() > 0);
        } finally {
            fx.close();
            async.close();
        }
        await("every acceptor, reader and writer thread ended", Duration.ofSeconds(30), () -> serverThreads() == 0);
        for (RawNbdClient c : clients) {
            assertTrue(c.closedByServer());
            c.close();
        }
    }

    private static long serverThreads() {
        return Thread.getAllStackTraces().keySet().stream()
                .filter(t -> t.isAlive() && t.getName().startsWith("weft-nbd-")).count();
    }

    private static boolean canConnect(NbdFixture fx) {
        try (RawNbdClient c = RawNbdClient.connect(fx.tcp)) {
            return true;
        } catch (java.io.IOException e) {
            return false;
        }
    }
}
