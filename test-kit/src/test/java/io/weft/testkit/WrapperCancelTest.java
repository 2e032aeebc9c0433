package io.weft.testkit;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.core.stats.IoStats;
import io.weft.core.stats.StatsBlockDevice;
import io.weft.testkit.FaultInjectingBlockDevice.Fault;
import java.nio.ByteBuffer;
import org.junit.jupiter.api.Test;

/** Wrapper devices forward a cancel to the device they passed the request to, translating tag and completion. */
class WrapperCancelTest {
    final FaultInjectingBlockDevice below = new FaultInjectingBlockDevice(
            new MemoryBlockDevice(MemoryBlockDevice.geometry(1 << 20, 1 << 16)), "below").defaultFault(Fault.HOLD);
    final OwnershipChecker checker = new OwnershipChecker();

    @Test
    void statsForwardsACancelOfATrackedAndOfAnUntrackedRequest() {
        StatsBlockDevice stats = new StatsBlockDevice(below, new IoStats("t"), 1);
        ByteBuffer tracked = ByteBuffer.allocate(4096);
        ByteBuffer untracked = ByteBuffer.allocate(4096);
        OwnershipChecker.Tracked a = checker.track(IoOp.READ, 0, 4096, tracked);
        OwnershipChecker.Tracked b = checker.track(IoOp.READ, 0, 4096, untracked);
        stats.submit(IoOp.READ, 0, 4096, 0, tracked, a.id, checker);
        stats.submit(IoOp.READ, 0, 4096, 0, untracked, b.id, checker); // no slot left: passed through untracked

        stats.cancel(a.id, checker);
        stats.cancel(b.id, checker);
        below.releaseAll();

        checker.assertNoViolations();
        assertEquals(IoStatus.ECANCELED, a.status(), "the cancel of a tracked request was not forwarded");
        assertEquals(IoStatus.ECANCELED, b.status(), "the cancel of an untracked request was not forwarded");
    }

    @Test
    void aStatsSlotReusedAfterItsRequestCompletedIsNotCancelledByTheOldCaller() {
        StatsBlockDevice stats = new StatsBlockDevice(below, new IoStats("t"), 1);
        below.defaultFault(Fault.PASS);
        ByteBuffer first = ByteBuffer.allocate(4096);
        OwnershipChecker.Tracked a = checker.track(IoOp.READ, 0, 4096, first);
        stats.submit(IoOp.READ, 0, 4096, 0, first, a.id, checker);
        below.defaultFault(Fault.HOLD);
        ByteBuffer second = ByteBuffer.allocate(4096);
        OwnershipChecker.Tracked b = checker.track(IoOp.READ, 0, 4096, second);
        stats.submit(IoOp.READ, 0, 4096, 0, second, b.id, checker);

        stats.cancel(a.id, checker); // completed already: no effect, even though b took its slot
        below.releaseAll();

        checker.assertNoViolations();
        assertEquals(IoStatus.OK, b.status());
    }
}
