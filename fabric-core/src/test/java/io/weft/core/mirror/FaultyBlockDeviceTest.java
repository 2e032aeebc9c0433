package io.weft.core.mirror;

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
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.api.Test;

/**
 * The test leg keeps the promise the mirror relies on (its class comment): a request it has not executed is answered
 * ECANCELED by the cancel call itself, whatever its own thread is doing with it at that moment. The mirror cancels a
 * hung leg's part once and then waits for the answer; a cancel the leg loses leaves the write in flight for ever, and
 * the resync of its region waits for that write (DrillTest seed 23487258083899, drill leg2-hang: "legs not back in
 * sync" / TimeoutException in bringEveryLegBack).
 */
class FaultyBlockDeviceTest {
    static final int REQUESTS = 2_000;
    static final int ROUNDS = Integer.getInteger("weft.faulty.rounds", 40);

    /**
     * Requests accepted in PASS wait for the leg's thread; the leg then hangs (a new session), so its thread turns
     * each of them into "never executed". Meanwhile each is cancelled exactly once, as the mirror does: every cancel
     * must answer its request before it returns.
     */
    @Test
    void aCancelRacingTheLegThreadIsAnsweredAtOnce() throws Exception {
        for (int round = 0; round < ROUNDS; round++) {
            CountDownLatch gate = new CountDownLatch(1);
            GatedDevice inner = new GatedDevice(gate);
            FaultyBlockDevice leg = new FaultyBlockDevice(inner, true);
            AtomicIntegerArray answers = new AtomicIntegerArray(REQUESTS);
            IoCompletion completion = (tag, status) -> answers.set((int) tag, status == IoStatus.ECANCELED ? 1 : 2);
            try {
                // Request 0 holds the leg's thread in the inner device until the gate opens; the rest queue behind it.
                for (int i = 0; i < REQUESTS; i++) {
                    leg.submit(IoOp.FLUSH, 0, 0, 0, null, i, completion);
                }
                assertTrue(inner.entered.await(30, TimeUnit.SECONDS), "request 0 reached the device");
                leg.mode(FaultyBlockDevice.Mode.HANG);
                gate.countDown();
                // Cancel from the back: each cancel meets the leg's thread somewhere in the queue.
                for (int i = REQUESTS - 1; i >= 1; i--) {
                    leg.cancel(i, completion);
                    assertEquals(1, answers.get(i), "round " + round + ": request " + i
                            + " not answered ECANCELED by its cancel");
                }
                await("request 0 executed", Duration.ofSeconds(30), () -> answers.get(0) == 2);
            } finally {
                gate.countDown();
                leg.close();
            }
        }
    }

    /** Completes OK at once, except that the first request waits for {@code gate} (holding the leg's thread). */
    static final class GatedDevice implements BlockDevice {
        private final CountDownLatch gate;
        final CountDownLatch entered = new CountDownLatch(1);
        private boolean first = true;

        GatedDevice(CountDownLatch gate) {
            this.gate = gate;
        }

        @Override
        public DeviceInfo info() {
            return new DeviceInfo(1 << 20, 512, 4096, 1 << 20, false, true, false, false, false, false, false, true);
        }

        @Override
        public void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                           IoCompletion completion) {
            if (first) {
                first = false;
                entered.countDown();
                try {
                    gate.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            completion.onComplete(tag, IoStatus.OK);
        }

        @Override
        public void close() {
        }
    }
}
