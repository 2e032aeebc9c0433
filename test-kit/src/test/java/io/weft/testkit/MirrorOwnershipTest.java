package io.weft.testkit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.core.mirror.LegState;
import io.weft.core.mirror.MirrorBlockDevice;
import io.weft.core.mirror.MirrorOptions;
import io.weft.core.mirror.WriteIntentBitmap;
import io.weft.testkit.FaultInjectingBlockDevice.Fault;
import java.nio.ByteBuffer;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The mirror's leg timeout, drop and read retry never complete a caller while a leg still holds its buffer. */
class MirrorOwnershipTest {
    static final long SIZE = 1 << 20;
    static final long LEG_TIMEOUT = 50_000_000L;

    final MemoryBlockDevice[] stores = new MemoryBlockDevice[2];
    final FaultInjectingBlockDevice[] legs = new FaultInjectingBlockDevice[2];
    MirrorBlockDevice mirror;

    MirrorBlockDevice mirror() {
        for (int i = 0; i < 2; i++) {
            stores[i] = new MemoryBlockDevice(MemoryBlockDevice.geometry(SIZE, 1 << 16));
            legs[i] = new FaultInjectingBlockDevice(stores[i], "leg" + i);
        }
        mirror = new MirrorBlockDevice(List.<BlockDevice>of(legs[0], legs[1]),
                WriteIntentBitmap.inMemory(SIZE, 1 << 16),
                MirrorOptions.defaults().withLegTimeoutNanos(LEG_TIMEOUT).withWatchdog(false).withMaxInFlight(16));
        return mirror;
    }

    @AfterEach
    void close() {
        if (mirror != null) {
            mirror.close();
        }
    }

    static ByteBuffer pattern(int length, int seed) {
        ByteBuffer b = ByteBuffer.allocate(length);
        for (int i = 0; i < length; i++) {
            b.put(i, (byte) (i * 13 + seed));
        }
        return b;
    }

    /** The leg that holds a request, or -1. */
    int holdingLeg() {
        for (int i = 0; i < 2; i++) {
            if (!legs[i].held().isEmpty()) {
                return i;
            }
        }
        return -1;
    }

    @Test
    void aReadRetriedAfterTheLegTimeoutIsNotCompletedWhileTheSlowLegHoldsTheCallersBuffer() {
        mirror();
        OwnershipChecker checker = new OwnershipChecker();
        ByteBuffer data = pattern(4096, 3);
        OwnershipChecker.Tracked write = checker.track(IoOp.WRITE, 8192, 4096, data);
        mirror.submit(IoOp.WRITE, 8192, 4096, 0, data, write.id, checker);
        assertEquals(IoStatus.OK, write.status());

        legs[0].defaultFault(Fault.HOLD);
        legs[1].defaultFault(Fault.HOLD);
        ByteBuffer buffer = ByteBuffer.allocate(4096);
        OwnershipChecker.Tracked read = checker.track(IoOp.READ, 8192, 4096, buffer);
        mirror.submit(IoOp.READ, 8192, 4096, 0, buffer, read.id, checker);
        legs[0].defaultFault(Fault.PASS);
        legs[1].defaultFault(Fault.PASS);
        int slow = holdingLeg();
        assertTrue(slow >= 0, "the read is held by one leg");

        mirror.checkTimeouts(System.nanoTime() + LEG_TIMEOUT + 1);
        legs[slow].releaseAll(); // the slow leg's answer arrives after all, into the caller's buffer

        checker.assertNoViolations();
        assertEquals(IoStatus.OK, read.status());
        assertArrayEquals(pattern(4096, 3).array(), read.returned(), "the retry on the other leg read the data");
        assertEquals(LegState.FAILED, mirror.legState(slow));
        assertTrue(legs[slow].cancelsAsked() >= 1, "the slow leg's part was cancelled");
    }

    @Test
    void aDroppedLegsWritePartIsNotCountedWhileTheLegStillHoldsTheCallersBuffer() {
        mirror();
        OwnershipChecker checker = new OwnershipChecker();
        legs[1].defaultFault(Fault.HOLD);
        ByteBuffer data = pattern(4096, 9);
        OwnershipChecker.Tracked write = checker.track(IoOp.WRITE, 0, 4096, data);
        mirror.submit(IoOp.WRITE, 0, 4096, 0, data, write.id, checker);
        legs[1].defaultFault(Fault.PASS);
        assertFalse(write.completed());

        mirror.checkTimeouts(System.nanoTime() + LEG_TIMEOUT + 1);
        legs[1].releaseAll(); // the dropped leg sends the payload late: it would read the poisoned buffer

        checker.assertNoViolations();
        assertEquals(IoStatus.OK, write.status(), "leg 0 has it and stays in sync");
        assertEquals(LegState.FAILED, mirror.legState(1));
        byte[] onSlowLeg = stores[1].snapshot(0, 4096);
        for (byte b : onSlowLeg) {
            if (b == OwnershipChecker.POISON) {
                throw new AssertionError("the dropped leg read the write's buffer after the write completed: "
                        + "it stored the poison");
            }
        }
        assertTrue(mirror.bitmap().dirtyCount() > 0, "the region the dropped leg missed is marked");
    }

    @Test
    void aCancelFromTheCallerReachesTheLegsAndCompletesFromTheirAnswers() {
        mirror();
        OwnershipChecker checker = new OwnershipChecker();
        legs[0].defaultFault(Fault.HOLD);
        legs[1].defaultFault(Fault.HOLD);
        ByteBuffer buffer = ByteBuffer.allocate(4096);
        OwnershipChecker.Tracked read = checker.track(IoOp.READ, 0, 4096, buffer);
        mirror.submit(IoOp.READ, 0, 4096, 0, buffer, read.id, checker);
        assertFalse(read.completed());

        mirror.cancel(read.id, checker);
        legs[0].releaseAll();
        legs[1].releaseAll();

        checker.assertNoViolations();
        assertEquals(IoStatus.ECANCELED, read.status(), "cancelled, not retried on the other leg");
        assertEquals(LegState.IN_SYNC, mirror.legState(0), "a cancel from above is no leg failure");
        assertEquals(LegState.IN_SYNC, mirror.legState(1));
    }
}
