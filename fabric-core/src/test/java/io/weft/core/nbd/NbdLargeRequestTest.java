package io.weft.core.nbd;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.DeviceInfo;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * TRIM and WRITE_ZEROES carry a 32-bit length: up to 4 GiB - 1, more than a {@link BlockDevice} request's
 * {@code int}. The connection cuts them into parts and answers once, after the last part, with the first error.
 */
@Timeout(120)
class NbdLargeRequestTest {
    private static final long GIB = 1L << 30;
    private static final long SIZE = 3 * GIB; // sparse: nothing of it is written but a few blocks
    /** NBD error values (Linux errno numbers). */
    private static final int EIO = 5;
    private static final int EINVAL = 22;
    private static final int ENOSPC = 28;

    @Test
    void trimAndWriteZeroesOf2_5GiBSucceedAndCoverTheirRange() throws Exception {
        GeometryDevice[] holder = new GeometryDevice[1];
        try (NbdFixture fx = new NbdFixture(SIZE, NbdServerOptions.defaults(), d -> {
            holder[0] = new GeometryDevice(d, 4096, 32 << 20);
            return holder[0];
        })) {
            GeometryDevice device = holder[0];
            byte[] pattern = new byte[4096];
            new Random(11).nextBytes(pattern);
            long probe = 2 * GIB + 8192; // inside both ranges below
            long trimLength = 5 * GIB / 2;
            try (RawNbdClient c = RawNbdClient.connect(fx.unixAddress())) {
                c.go("vol0", false, false);
                c.write(probe, pattern, 1);

                assertEquals(0, c.command(NbdProtocol.CMD_TRIM, 0, 0, trimLength, 2), "TRIM of 2.5 GiB");
                assertCovered(device.seen(IoOp.DISCARD), 0, trimLength);

                c.write(probe, pattern, 3);
                assertEquals(0, c.command(NbdProtocol.CMD_WRITE_ZEROES, 0, GIB / 2, trimLength, 4),
                        "WRITE_ZEROES of 2.5 GiB");
                assertCovered(device.seen(IoOp.WRITE_ZEROES), GIB / 2, trimLength);
                assertArrayEquals(new byte[4096], c.read(probe, 4096, 5), "the zeroed range reads as zeros");

                // The largest length the protocol can carry, and ranges past the end, are refused whole.
                long max = 0xFFFF_F000L;
                assertEquals(EINVAL, c.command(NbdProtocol.CMD_TRIM, 0, GIB, max, 6),
                        "TRIM past the end");
                assertEquals(ENOSPC, c.command(NbdProtocol.CMD_WRITE_ZEROES, 0, GIB, max, 7),
                        "WRITE_ZEROES past the end");
                assertEquals(EINVAL, c.command(NbdProtocol.CMD_TRIM, 0, Long.MAX_VALUE - 4095, 8192, 8),
                        "offset + length overflowing a long");
                assertEquals(0, c.command(NbdProtocol.CMD_CACHE, 0, 0, trimLength, 9), "CACHE of 2.5 GiB");
            }
        }
    }

    /** Parts at or past {@code holdFrom} are held until {@link #completeHeld}; the others complete inline. */
    private static final class PartHoldingDevice implements BlockDevice {
        private final BlockDevice delegate;
        private final long holdFrom;
        private final long failAt;
        private final List<Runnable> held = new ArrayList<>();

        PartHoldingDevice(BlockDevice delegate, long holdFrom, long failAt) {
            this.delegate = delegate;
            this.holdFrom = holdFrom;
            this.failAt = failAt;
        }

        @Override
        public DeviceInfo info() {
            return delegate.info();
        }

        @Override
        public void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                           IoCompletion completion) {
            if (op == IoOp.DISCARD && offset >= holdFrom) {
                synchronized (held) {
                    held.add(() -> completion.onComplete(tag, IoStatus.OK));
                }
                return;
            }
            if (op == IoOp.DISCARD && offset == failAt) {
                completion.onComplete(tag, IoStatus.EIO);
                return;
            }
            delegate.submit(op, offset, length, flags, buffer, tag, completion);
        }

        int heldCount() {
            synchronized (held) {
                return held.size();
            }
        }

        void completeHeld() {
            List<Runnable> now;
            synchronized (held) {
                now = new ArrayList<>(held);
                held.clear();
            }
            now.forEach(Runnable::run);
        }

        @Override
        public void close() {
        }
    }

    @Test
    void aSplitRequestIsAnsweredOnceAfterItsLastPartWithTheFirstError() throws Exception {
        PartHoldingDevice[] holder = new PartHoldingDevice[1];
        try (NbdFixture fx = new NbdFixture(SIZE, NbdServerOptions.defaults(), d -> {
            holder[0] = new PartHoldingDevice(d, 2 * GIB, GIB);
            return holder[0];
        })) {
            PartHoldingDevice device = holder[0];
            try (RawNbdClient c = RawNbdClient.connect(fx.unixAddress())) {
                c.go("vol0", false, false);
                // Parts [0, 1G) OK and [1G, 2G) EIO complete inline on the reader; [2G, 2.5G) is held.
                c.sendRequest(0, NbdProtocol.CMD_TRIM, 1, 0, (int) (5 * GIB / 2), null);
                // A request answered by the server itself: replies leave the reader in completion order, so an
                // early answer to the TRIM would come first.
                c.sendRequest(0, NbdProtocol.CMD_CACHE, 2, 0, 4096, null);
                RawNbdClient.Reply first = c.readReply(0);
                assertEquals(2, first.handle(), "the TRIM was answered while one of its parts was still live");
                assertEquals(1, device.heldCount());
                device.completeHeld();
                RawNbdClient.Reply trim = c.readReply(0);
                assertEquals(1, trim.handle());
                assertEquals(EIO, trim.error(), "the failed part's error, not the later part's OK");
            }
        }
    }

    private static void assertCovered(List<GeometryDevice.Seen> parts, long offset, long length) {
        List<GeometryDevice.Seen> sorted = new ArrayList<>(parts);
        sorted.sort((a, b) -> Long.compare(a.offset(), b.offset()));
        long at = offset;
        for (GeometryDevice.Seen p : sorted) {
            assertEquals(at, p.offset(), "parts are contiguous: " + sorted);
            at += p.length();
        }
        assertEquals(offset + length, at, "parts cover the request exactly: " + sorted);
    }
}
