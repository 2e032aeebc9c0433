package io.weft.rdma;

import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.rdma.client.RdmaClientConfig;
import io.weft.rdma.client.RdmaSession;
import io.weft.rdma.faults.HeldAnswerServer;
import io.weft.rdma.server.RdmaServer;
import io.weft.testkit.CompletionHoldingBlockDevice;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Window 1 of issue #11 on the RDMA transport: a request given up (cancelled, expired) while the storage side's answer
 * is still on its way. The caller's buffer is poisoned the moment its completion runs; the late answer must never be
 * copied into it, and the permit (= the chunk the late answer lands in) must not serve another request before the late
 * answer has been dropped.
 */
class LateAnswerTest {
    private static final Duration WAIT = Duration.ofSeconds(15);
    private static final byte POISON = 0x5A;

    @TempDir
    Path dir;

    /** Completion that poisons the caller's buffer as soon as it runs (the caller reuses it at once). */
    private static final class PoisoningCompletion implements IoCompletion {
        final ByteBuffer buffer;
        final CompletableFuture<Integer> status = new CompletableFuture<>();

        PoisoningCompletion(ByteBuffer buffer) {
            this.buffer = buffer;
        }

        @Override
        public void onComplete(long tag, int st) {
            if (st != IoStatus.OK) {
                Arrays.fill(buffer.array(), POISON);
            }
            status.complete(st);
        }
    }

    @Test
    void cancelledReadIsNeverFilledByItsLateAnswerAndItsPermitWaitsForIt() throws Exception {
        try (HeldAnswerServer rig = HeldAnswerServer.open(dir, "late", RdmaClientConfig.DEFAULTS.withQueueDepth(1))) {
            CompletionHoldingBlockDevice holding = rig.holding();
            RdmaSession session = rig.session();
            var dev = session.device();
            TestIo.write(dev, 0, TestIo.pattern(0, 1, 4096));
            TestIo.write(dev, 8192, TestIo.pattern(2, 1, 4096));

            holding.hold();
            ByteBuffer callerBuffer = ByteBuffer.allocate(4096);
            PoisoningCompletion first = new PoisoningCompletion(callerBuffer);
            dev.submit(IoOp.READ, 0, 4096, 0, callerBuffer, 7, first);
            await("the READ's answer held on the storage side", WAIT, () -> holding.heldCount() == 1);

            dev.cancel(7, first);
            int status;
            try {
                status = first.status.get(WAIT.toSeconds(), TimeUnit.SECONDS);
            } catch (java.util.concurrent.TimeoutException e) {
                throw new AssertionError("cancel did not complete the READ whose answer is held");
            }
            assertEquals(IoStatus.ECANCELED, status, "a cancelled READ completes with ECANCELED");
            assertEquals(1, session.stats().permitsInUse(),
                    "the cancelled READ's permit must stay reserved while its answer may still land in its chunk");

            holding.release(); // the late answer goes out now: RDMA write into the chunk + response immediate
            await("the late answer dropped and the permit freed", WAIT,
                    () -> session.stats().permitsInUse() == 0);
            byte[] poisoned = new byte[4096];
            Arrays.fill(poisoned, POISON);
            assertArrayEquals(poisoned, callerBuffer.array(),
                    "the late answer was copied into a buffer handed back to its caller");

            // The permit serves the next request correctly (not with the late answer's data).
            assertArrayEquals(TestIo.pattern(2, 1, 4096), TestIo.read(dev, 8192, 4096));
            assertEquals(0, session.stats().malformedResponses());
        }
    }

    @Test
    void expiredReadIsNeverFilledAndItsPermitWaitsForTheStorageSide() throws Exception {
        try (HeldAnswerServer rig = HeldAnswerServer.open(dir, "expired",
                RdmaClientConfig.DEFAULTS.withQueueDepth(1).withIoTimeout(Duration.ofMillis(300)))) {
            CompletionHoldingBlockDevice holding = rig.holding();
            RdmaSession session = rig.session();
            var dev = session.device();
            TestIo.write(dev, 0, TestIo.pattern(0, 1, 4096));
            TestIo.write(dev, 8192, TestIo.pattern(2, 1, 4096));

            holding.hold();
            ByteBuffer callerBuffer = ByteBuffer.allocate(4096);
            PoisoningCompletion first = new PoisoningCompletion(callerBuffer);
            dev.submit(IoOp.READ, 0, 4096, 0, callerBuffer, 7, first);
            assertEquals(IoStatus.ETIMEDOUT, first.status.get(WAIT.toSeconds(), TimeUnit.SECONDS));
            // The storage device still has the READ (its chunk is being filled): the permit is not free, even after
            // the path was failed and reconnected, until the storage side acknowledges the fence, which waits for it.
            await("the path reconnected after the timeout", WAIT, () -> session.paths().get(0).reconnects() >= 1
                    && session.paths().get(0).state() == io.weft.rdma.client.PathState.CONNECTED);
            assertEquals(1, session.stats().permitsInUse(),
                    "an expired READ's permit must stay reserved while the storage side may still use its chunk");
            assertEquals(1, session.stats().fencesPending(), "the fence waits for the device to finish the READ");

            assertEquals(1, holding.release());
            await("fence acknowledged, permit freed", WAIT, () -> session.stats().permitsInUse() == 0);
            byte[] poisoned = new byte[4096];
            Arrays.fill(poisoned, POISON);
            assertArrayEquals(poisoned, callerBuffer.array(), "an expired READ's buffer was written after completion");
            assertArrayEquals(TestIo.pattern(2, 1, 4096), TestIo.read(dev, 8192, 4096));
        }
    }

    @Test
    void queuedRequestIsCancelledAtOnceAndNeverSent() throws Exception {
        try (HeldAnswerServer rig = HeldAnswerServer.open(dir, "queued", RdmaClientConfig.DEFAULTS.withQueueDepth(4))) {
            RdmaServer server = rig.server();
            RdmaSession session = rig.session();
            var dev = session.device();
            // No path: the request waits in the queue.
            int id = session.paths().get(0).id();
            session.disconnectPath(id);
            await("path down", WAIT, () -> session.paths().get(0).state()
                    == io.weft.rdma.client.PathState.DISCONNECTED);
            ByteBuffer callerBuffer = ByteBuffer.allocate(4096);
            PoisoningCompletion queued = new PoisoningCompletion(callerBuffer);
            dev.submit(IoOp.WRITE, 0, 4096, 0, ByteBuffer.wrap(TestIo.pattern(0, 9, 4096)), 3, queued);
            dev.cancel(3, queued);
            int status;
            try {
                status = queued.status.get(WAIT.toSeconds(), TimeUnit.SECONDS);
            } catch (java.util.concurrent.TimeoutException e) {
                throw new AssertionError("cancel did not complete the queued WRITE");
            }
            assertEquals(IoStatus.ECANCELED, status);
            await("the queued request's permit freed", WAIT, () -> session.stats().permitsInUse() == 0);
            session.reconnectPath(id);
            byte[] zeros = new byte[4096];
            assertArrayEquals(zeros, TestIo.read(dev, 0, 4096), "a cancelled queued WRITE must never be sent");
            assertTrue(server.sessions().get(0).requests() >= 1);
        }
    }
}
