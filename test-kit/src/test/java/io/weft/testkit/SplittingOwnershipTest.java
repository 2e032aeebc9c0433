package io.weft.testkit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.core.io.SplittingBlockDevice;
import io.weft.testkit.FaultInjectingBlockDevice.Fault;
import java.nio.ByteBuffer;
import org.junit.jupiter.api.Test;

/** A split request completes once, after every part, and a cancel reaches its live parts. */
class SplittingOwnershipTest {
    static final long SIZE = 1 << 20;

    final FaultInjectingBlockDevice inner = new FaultInjectingBlockDevice(
            new MemoryBlockDevice(MemoryBlockDevice.geometry(SIZE, 4096)), "inner");
    final SplittingBlockDevice splitting = new SplittingBlockDevice(inner, 1 << 16, 4, 16);
    final OwnershipChecker checker = new OwnershipChecker();

    @Test
    void aFirstErrorDoesNotCompleteTheCallerWhileAnotherPartIsLive() {
        inner.script(Fault.HOLD, Fault.FAIL);
        ByteBuffer buffer = ByteBuffer.allocate(16384);
        OwnershipChecker.Tracked read = checker.track(IoOp.READ, 0, 16384, buffer);
        splitting.submit(IoOp.READ, 0, 16384, 0, buffer, read.id, checker);

        assertFalse(read.completed(), "completed while part 0 is still held below");
        inner.releaseAll();
        checker.assertNoViolations();
        assertEquals(IoStatus.EIO, read.status());
    }

    @Test
    void aCancelOfASplitRequestReachesEveryLivePart() {
        inner.defaultFault(Fault.HOLD);
        ByteBuffer buffer = ByteBuffer.allocate(16384);
        OwnershipChecker.Tracked read = checker.track(IoOp.READ, 0, 16384, buffer);
        splitting.submit(IoOp.READ, 0, 16384, 0, buffer, read.id, checker);
        assertEquals(4, inner.held().size());

        splitting.cancel(read.id, checker);
        assertEquals(IoStatus.ECANCELED, read.status(), "the cancel reached no part");
        inner.releaseAll();
        checker.assertNoViolations();
        assertEquals(0, splitting.partsInFlight());
    }

    @Test
    void aCancelOfARequestPassedStraightThroughIsForwarded() {
        inner.defaultFault(Fault.HOLD);
        ByteBuffer buffer = ByteBuffer.allocate(4096);
        OwnershipChecker.Tracked read = checker.track(IoOp.READ, 0, 4096, buffer);
        splitting.submit(IoOp.READ, 0, 4096, 0, buffer, read.id, checker);

        splitting.cancel(read.id, checker);
        assertEquals(IoStatus.ECANCELED, read.status(), "the cancel was not forwarded");
        inner.releaseAll();
        checker.assertNoViolations();
    }
}
