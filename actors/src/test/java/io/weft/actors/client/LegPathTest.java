package io.weft.actors.client;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.testkit.FaultInjectingBlockDevice;
import io.weft.testkit.FaultInjectingBlockDevice.Fault;
import io.weft.testkit.MemoryBlockDevice;
import io.weft.testkit.OwnershipChecker;
import java.nio.ByteBuffer;
import org.junit.jupiter.api.Test;

/** A mirror leg's path forwards a cancel to the session path that holds the request, even after it went away. */
class LegPathTest {
    static FaultInjectingBlockDevice session(String name) {
        return new FaultInjectingBlockDevice(new MemoryBlockDevice(MemoryBlockDevice.geometry(1 << 20, 1 << 16)),
                name).defaultFault(Fault.HOLD);
    }

    @Test
    void aCancelReachesTheRequestOnTheCurrentAndOnTheLastDisconnectedPath() {
        FaultInjectingBlockDevice first = session("first");
        LegPath leg = new LegPath("leg0", first.info(), first);
        OwnershipChecker checker = new OwnershipChecker();
        ByteBuffer a = ByteBuffer.allocate(4096);
        OwnershipChecker.Tracked onFirst = checker.track(IoOp.READ, 0, 4096, a);
        leg.submit(IoOp.READ, 0, 4096, 0, a, onFirst.id, checker);

        leg.disconnect(); // the session went away with the request still in it
        FaultInjectingBlockDevice second = session("second");
        leg.connect(second);
        ByteBuffer b = ByteBuffer.allocate(4096);
        OwnershipChecker.Tracked onSecond = checker.track(IoOp.READ, 0, 4096, b);
        leg.submit(IoOp.READ, 0, 4096, 0, b, onSecond.id, checker);

        leg.cancel(onFirst.id, checker);
        leg.cancel(onSecond.id, checker);
        first.releaseAll();
        second.releaseAll();

        checker.assertNoViolations();
        assertEquals(IoStatus.ECANCELED, onFirst.status(), "the cancel did not reach the previous session's path");
        assertEquals(IoStatus.ECANCELED, onSecond.status(), "the cancel did not reach the current path");
    }
}
