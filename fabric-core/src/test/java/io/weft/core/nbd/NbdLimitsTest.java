package io.weft.core.nbd;

import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.BlockDevice;
import io.weft.core.store.StoreBlockDevice;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Function;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Connections that stop sending, stop reading or stay idle, and connections whose buffers together would exceed the
 * server-wide budget (weft.nbd.read-stall-timeout, write-stall-timeout, idle-timeout, buffer-budget). Every wait is a
 * condition polled with a deadline far above the configured timeouts; nothing sleeps to synchronise.
 */
@Timeout(120)
class NbdLimitsTest {
    private static final long SIZE = 16L << 20;
    private static final Duration SHORT = Duration.ofMillis(300);
    private static final Duration DEADLINE = Duration.ofSeconds(30);

    private static Function<StoreBlockDevice, BlockDevice> device(boolean async) {
        return async ? d -> new ReorderingDevice(d, 1) : d -> d;
    }

    @ParameterizedTest(name = "async device = {0}")
    @ValueSource(booleans = {false, true})
    void aRequestThatStopsArrivingIsClosedAfterTheReadStallTimeout(boolean async) throws Exception {
        NbdServerOptions options = NbdServerOptions.defaults().withReadStallTimeout(SHORT);
        try (NbdFixture fx = new NbdFixture(SIZE, options, device(async))) {
            RawNbdClient halfPayload = fx.closeLater(RawNbdClient.connect(fx.tcp));
            halfPayload.go("vol0", false, false);
            ByteBuffer header = ByteBuffer.allocate(28);
            NbdRequestHeader.encode(header, 0, 0, NbdProtocol.CMD_WRITE, 7, 0, 64 << 10);
            halfPayload.write(header.position(0).limit(28));
            byte[] half = new byte[32 << 10];
            Arrays.fill(half, (byte) 0x5a);
            halfPayload.writeRaw(half);

            RawNbdClient halfHeader = fx.closeLater(RawNbdClient.connect(fx.unixAddress()));
            halfHeader.go("vol0", false, false);
            halfHeader.write(header.position(0).limit(14));

            assertEquals(2, fx.server.connectionCount());
            await("fx.server.connectionCount() == 0", DEADLINE, () -> fx.server.connectionCount() == 0,
                    () -> fx.server.connectionCount()
                    + " connection(s) still open long after their requests stopped arriving (read-stall timeout "
                    + SHORT + ")");
            assertTrue(halfPayload.closedByServer(), "the half-sent WRITE's connection is closed");
            assertTrue(halfHeader.closedByServer(), "the half-sent header's connection is closed");
            assertArrayEquals(new byte[64 << 10], fx.fileBytes(0, 64 << 10), "nothing of the partial WRITE landed");
            await("fx.server.bufferedBytes() == 0", DEADLINE, () -> fx.server.bufferedBytes() == 0,
                    () -> "request buffers not returned to the budget: "
                    + fx.server.bufferedBytes() + " bytes");
        }
    }

    @ParameterizedTest(name = "async device = {0}")
    @ValueSource(booleans = {false, true})
    void aClientThatNeverReadsRepliesIsClosedAfterTheWriteStallTimeout(boolean async) throws Exception {
        NbdServerOptions options = NbdServerOptions.defaults().withWriteStallTimeout(SHORT)
                .withSocketBufferSize(64 << 10);
        try (NbdFixture fx = new NbdFixture(SIZE, options, device(async))) {
            RawNbdClient deaf = fx.closeLater(RawNbdClient.connect(fx.tcp));
            deaf.channel.setOption(StandardSocketOptions.SO_RCVBUF, 64 << 10);
            deaf.go("vol0", false, false);
            // 64 MiB of replies: far more than both socket buffers hold, so the server's writes block for good.
            for (int i = 0; i < 64; i++) {
                deaf.sendRequest(0, NbdProtocol.CMD_READ, i, (i % 16) << 20, 1 << 20, null);
            }
            await("fx.server.connectionCount() == 0", DEADLINE, () -> fx.server.connectionCount() == 0,
                    () -> "a client that reads no replies still holds its "
                    + "connection long after the write-stall timeout (" + SHORT + ")");
            await("fx.server.bufferedBytes() == 0", DEADLINE, () -> fx.server.bufferedBytes() == 0,
                    () -> "request buffers not returned to the budget: "
                    + fx.server.bufferedBytes() + " bytes");
        }
    }

    @Test
    void idleConnectionsStayOpenWhenTheIdleTimeoutIsZero() throws Exception {
        NbdServerOptions options = NbdServerOptions.defaults().withReadStallTimeout(SHORT)
                .withWriteStallTimeout(SHORT);
        assertEquals(Duration.ZERO, options.idleTimeout(), "idle connections are kept by default");
        try (NbdFixture fx = new NbdFixture(SIZE, options, d -> d)) {
            RawNbdClient idle = fx.closeLater(RawNbdClient.connect(fx.tcp));
            idle.go("vol0", false, false);
            assertArrayEquals(new byte[512], idle.read(0, 512, 1));
            // Idle from here on. A second connection stalls mid-request after it: once the server has closed it for
            // that (so the stall clock has run past its timeout), the idle one, idle for longer, must still be open.
            RawNbdClient stalled = fx.closeLater(RawNbdClient.connect(fx.tcp));
            stalled.go("vol0", false, false);
            stalled.writeRaw(new byte[] {0x25, 0x60, (byte) 0x95, 0x13});
            await("fx.server.connectionCount() == 1", DEADLINE, () -> fx.server.connectionCount() == 1,
                    () -> fx.server.connectionCount()
                    + " connections open: the stalled one was never closed (read-stall timeout " + SHORT + ")");
            assertTrue(stalled.closedByServer());
            assertArrayEquals(new byte[512], idle.read(4096, 512, 2), "the idle connection still serves");
        }
    }

    @Test
    void anIdleTimeoutClosesIdleConnections() throws Exception {
        NbdServerOptions options = NbdServerOptions.defaults().withIdleTimeout(SHORT);
        try (NbdFixture fx = new NbdFixture(SIZE, options, d -> d)) {
            RawNbdClient idle = fx.closeLater(RawNbdClient.connect(fx.unixAddress()));
            idle.go("vol0", false, false);
            assertArrayEquals(new byte[512], idle.read(0, 512, 1));
            await("fx.server.connectionCount() == 0", DEADLINE, () -> fx.server.connectionCount() == 0,
                    () -> "an idle connection outlived the idle timeout ("
                    + SHORT + ")");
            assertTrue(idle.closedByServer());
        }
    }

    /**
     * Eight connections each send the header of a 1 MiB WRITE and a little of its payload against a 4 MiB budget:
     * four get their buffers, four wait. Then every payload is completed: all eight writes land, and the buffers
     * never took more than the budget.
     */
    @Test
    void manySlowHugeWritesNeverTakeMoreThanTheBudget() throws Exception {
        int payload = 1 << 20;
        long budget = 4L * payload;
        int clients = 8;
        NbdServerOptions options = NbdServerOptions.defaults().withMaxPayload(payload).withBufferBudget(budget);
        try (NbdFixture fx = new NbdFixture(SIZE, options, d -> new ReorderingDevice(d, 1))) {
            List<RawNbdClient> all = new ArrayList<>();
            List<byte[]> data = new ArrayList<>();
            for (int i = 0; i < clients; i++) {
                RawNbdClient c = fx.closeLater(RawNbdClient.connect(i % 2 == 0 ? fx.tcp : fx.unixAddress()));
                c.go("vol0", false, false);
                byte[] d = new byte[payload];
                Arrays.fill(d, (byte) (i + 1));
                data.add(d);
                ByteBuffer header = ByteBuffer.allocate(28 + 4096);
                NbdRequestHeader.encode(header, 0, 0, NbdProtocol.CMD_WRITE, i, (long) i * payload, payload);
                header.position(28).put(d, 0, 4096).flip();
                c.write(header);
                all.add(c);
            }
            await("fx.server.bufferedBytes() == budget && fx.server.bufferWaiters() == clients - 4", DEADLINE,
                    () -> fx.server.bufferedBytes() == budget && fx.server.bufferWaiters() == clients - 4,
                    () -> "expected the budget (" + budget + " bytes) taken by 4 connections and 4 waiting, but "
                            + fx.server.bufferedBytes() + " bytes are buffered and " + fx.server.bufferWaiters()
                            + " wait");
            for (int i = 0; i < clients; i++) {
                all.get(i).write(ByteBuffer.wrap(data.get(i), 4096, payload - 4096));
            }
            for (int i = 0; i < clients; i++) {
                RawNbdClient.Reply r = all.get(i).readReply(0);
                assertEquals(0, r.error(), "write " + i);
                assertEquals(i, r.handle());
            }
            for (int i = 0; i < clients; i++) {
                assertArrayEquals(data.get(i), fx.fileBytes((long) i * payload, payload), "data of write " + i);
            }
            assertTrue(fx.server.peakBufferedBytes() <= budget, "request buffers peaked at "
                    + fx.server.peakBufferedBytes() + " bytes, over the budget of " + budget);
        }
    }

    /**
     * A connection closed for a stall while the device still holds one of its READs: the READ's buffer stays the
     * device's, so its share of the budget comes back only when the device completes it, not at the close.
     */
    @Test
    void aStalledConnectionsBufferStaysCountedUntilTheDeviceCompletesIt() throws Exception {
        int payload = 1 << 20;
        NbdServerOptions options = NbdServerOptions.defaults().withReadStallTimeout(SHORT);
        GatedDevice[] gate = new GatedDevice[1];
        try (NbdFixture fx = new NbdFixture(SIZE, options, d -> gate[0] = new GatedDevice(d))) {
            RawNbdClient c = fx.closeLater(RawNbdClient.connect(fx.tcp));
            c.go("vol0", false, false);
            c.sendRequest(0, NbdProtocol.CMD_READ, 1, 0, payload, null);
            c.writeRaw(new byte[] {0x25, 0x60}); // half of the next header's magic, then nothing
            await("fx.server.connectionCount() == 0", DEADLINE, () -> fx.server.connectionCount() == 0,
                    () -> "the stalled connection was never closed");
            assertEquals(payload, fx.server.bufferedBytes(), "the held READ's buffer is still the device's");
            gate[0].open();
            await("fx.server.bufferedBytes() == 0", DEADLINE, () -> fx.server.bufferedBytes() == 0,
                    () -> "the READ completed but its buffer was not given back: "
                    + fx.server.bufferedBytes() + " bytes");
        }
    }

    /**
     * A request that cannot get buffer memory within the read-stall timeout fails with ENOMEM; the connection lives.
     */
    @Test
    void aRequestThatWaitsTooLongForTheBudgetFailsWithEnomem() throws Exception {
        int payload = 1 << 20;
        NbdServerOptions options = NbdServerOptions.defaults().withMaxPayload(payload).withBufferBudget(2L * payload)
                .withReadStallTimeout(SHORT);
        GatedDevice[] gate = new GatedDevice[1];
        try (NbdFixture fx = new NbdFixture(SIZE, options, d -> gate[0] = new GatedDevice(d))) {
            // Two READs held by the device hold the whole budget.
            RawNbdClient holder = fx.closeLater(RawNbdClient.connect(fx.tcp));
            holder.go("vol0", false, false);
            holder.sendRequest(0, NbdProtocol.CMD_READ, 1, 0, payload, null);
            holder.sendRequest(0, NbdProtocol.CMD_READ, 2, payload, payload, null);
            await("fx.server.bufferedBytes() == 2L * payload", DEADLINE,
                    () -> fx.server.bufferedBytes() == 2L * payload, () -> "the held READs did not take the budget: "
                    + fx.server.bufferedBytes());
            RawNbdClient starved = fx.closeLater(RawNbdClient.connect(fx.unixAddress()));
            starved.go("vol0", false, false);
            starved.sendRequest(0, NbdProtocol.CMD_READ, 3, 0, payload, null);
            assertEquals(NbdProtocol.ENOMEM, starved.readReply(payload).error(),
                    "a READ that found no buffer budget within the read-stall timeout");
            gate[0].open();
            assertEquals(0, holder.readReply(payload).error());
            assertEquals(0, holder.readReply(payload).error());
            assertArrayEquals(new byte[payload], starved.read(0, payload, 4), "the starved connection still serves");
        }
    }
}
