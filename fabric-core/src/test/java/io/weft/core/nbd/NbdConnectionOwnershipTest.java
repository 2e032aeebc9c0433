package io.weft.core.nbd;

import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.DeviceInfo;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The ownership rule at the NBD connection: a request the connection gives up on (forced close with requests in
 * flight) is cancelled through {@link BlockDevice#cancel}, and no request buffer is reused while its request is live.
 */
@Timeout(60)
class NbdConnectionOwnershipTest {

    /** Holds every request; {@link #cancel} completes a held one with ECANCELED, as the contract asks. */
    private static final class HoldingDevice implements BlockDevice {
        private record Held(IoOp op, ByteBuffer buffer, long tag, IoCompletion completion) {
        }

        private final BlockDevice delegate;
        private final List<Held> held = new ArrayList<>();
        private final List<Long> cancelled = new ArrayList<>();
        /** Buffers of live requests: a buffer handed in again while live would be a reuse. */
        private final Map<ByteBuffer, Boolean> liveBuffers = new IdentityHashMap<>();
        private int reused;

        HoldingDevice(BlockDevice delegate) {
            this.delegate = delegate;
        }

        @Override
        public DeviceInfo info() {
            return delegate.info();
        }

        @Override
        public synchronized void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                                        IoCompletion completion) {
            if (buffer != null && liveBuffers.put(buffer, Boolean.TRUE) != null) {
                reused++;
            }
            held.add(new Held(op, buffer, tag, completion));
        }

        @Override
        public void cancel(long tag, IoCompletion completion) {
            Held found = null;
            synchronized (this) {
                for (int i = 0; i < held.size(); i++) {
                    Held h = held.get(i);
                    if (h.tag() == tag && h.completion() == completion) {
                        found = held.remove(i);
                        cancelled.add(tag);
                        if (h.buffer() != null) {
                            liveBuffers.remove(h.buffer());
                        }
                        break;
                    }
                }
            }
            if (found != null) {
                found.completion().onComplete(tag, IoStatus.ECANCELED);
            }
        }

        synchronized int heldCount() {
            return held.size();
        }

        synchronized int cancelledCount() {
            return cancelled.size();
        }

        synchronized int reused() {
            return reused;
        }

        @Override
        public void close() {
        }
    }

    @Test
    void aForcedCloseCancelsEveryRequestInFlight() throws Exception {
        HoldingDevice[] holder = new HoldingDevice[1];
        NbdServerOptions options = NbdServerOptions.defaults().withCloseTimeout(Duration.ofMillis(200));
        try (NbdFixture fx = new NbdFixture(16L << 20, options, d -> {
            holder[0] = new HoldingDevice(d);
            return holder[0];
        })) {
            HoldingDevice device = holder[0];
            try (RawNbdClient c = RawNbdClient.connect(fx.unixAddress())) {
                c.go("vol0", true, false);
                int n = 8;
                for (int i = 0; i < n; i++) {
                    if (i % 2 == 0) {
                        c.sendRequest(0, NbdProtocol.CMD_WRITE, i, i * 8192L, 4096, new byte[4096]);
                    } else {
                        c.sendRequest(0, NbdProtocol.CMD_READ, i, i * 8192L, 4096, null);
                    }
                }
                await("device.heldCount() == n", Duration.ofSeconds(20), () -> device.heldCount() == n,
                        () -> "the device holds all " + n + " requests");
                // The server stops: the connection drains for closeTimeout, then gives up on what is in flight.
                fx.server.close();
                await("device.cancelledCount() == n", Duration.ofSeconds(20), () -> device.cancelledCount() == n,
                        () -> "the connection gave up on " + n
                        + " requests in flight and cancelled " + device.cancelledCount() + " of them");
                assertEquals(0, device.heldCount());
                assertEquals(0, device.reused(), "a buffer was handed in again while its request was live");
                assertTrue(c.closedByServer());
            }
        }
    }
}
