package io.weft.rdma.protocol;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.rdma.verbs.CompletionHandler;
import io.weft.rdma.verbs.CompletionQueue;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;

/**
 * The one idle strategy of the RDMA threads, against a doorbell that behaves like the software provider's completion
 * queue: a wake-up only ends a park in progress, and the owner's pending-work check runs after it announced the park.
 */
class DoorbellIdleStrategyTest {

    /** Parks are counted, never slept: a park happens when the pending-work check says there is nothing to do. */
    private static final class CountingDoorbell implements CompletionQueue {
        int parks;
        int skippedParks;

        @Override
        public int poll(CompletionHandler handler, int maxCompletions) {
            return 0;
        }

        @Override
        public void await(long timeoutNanos, BooleanSupplier pendingWork) {
            if (pendingWork.getAsBoolean()) {
                skippedParks++;
            } else {
                parks++;
            }
        }

        @Override
        public boolean flush() {
            return false;
        }

        @Override
        public void wakeup() {
            // Like the software provider: nobody is parked, so there is nothing to wake.
        }

        @Override
        public String name() {
            return "counting";
        }

        @Override
        public void close() {
        }
    }

    private static final long LONG_PARK = 1_000_000_000L;

    @Test
    void aRingBeforeTheParkEndsIt() {
        CountingDoorbell doorbell = new CountingDoorbell();
        DoorbellIdleStrategy idle = new DoorbellIdleStrategy(doorbell, () -> false, 0, 0, () -> LONG_PARK);
        // Work was handed over (a path failed, a fence was acknowledged) after the owner's last look at it and
        // before it parked: the owner must run another duty cycle, not park for up to the longest park.
        idle.ring();
        idle.idle(0);
        assertEquals(0, doorbell.parks, "the owner parked although the doorbell rang before its park: the ring "
                + "was lost (parks " + doorbell.parks + ", skipped " + doorbell.skippedParks + ")");
    }

    @Test
    void aRingIsConsumedByOnePark() {
        CountingDoorbell doorbell = new CountingDoorbell();
        DoorbellIdleStrategy idle = new DoorbellIdleStrategy(doorbell, () -> false, 0, 0, () -> LONG_PARK);
        idle.ring();
        idle.idle(0);
        idle.idle(0);
        assertEquals(1, doorbell.parks, "one ring must skip one park, not turn the owner into a spinning loop");
    }

    @Test
    void pendingWorkSkipsTheParkAndWorkResetsTheCount() {
        CountingDoorbell doorbell = new CountingDoorbell();
        boolean[] pending = {true};
        DoorbellIdleStrategy idle = new DoorbellIdleStrategy(doorbell, () -> pending[0], 2, 1, () -> LONG_PARK);
        idle.idle(0); // spin
        idle.idle(0); // spin
        idle.idle(0); // yield
        assertEquals(0, doorbell.parks + doorbell.skippedParks, "spins and yields come before any park");
        idle.idle(0);
        assertEquals(1, doorbell.skippedParks, "work handed over without traffic must skip the park");
        pending[0] = false;
        idle.idle(0);
        assertEquals(1, doorbell.parks);
        idle.idle(5); // a duty cycle that did work starts the spins again
        idle.idle(0);
        idle.idle(0);
        idle.idle(0);
        assertEquals(1, doorbell.parks, "after work the owner spins and yields again before parking");
    }

    @Test
    void aStoppedOwnerNeverParksAgain() {
        CountingDoorbell doorbell = new CountingDoorbell();
        DoorbellIdleStrategy idle = new DoorbellIdleStrategy(doorbell, () -> false, 0, 0, () -> LONG_PARK);
        idle.idle(0);
        assertEquals(1, doorbell.parks);
        idle.stop();
        assertTrue(idle.stopped());
        for (int i = 0; i < 3; i++) {
            idle.idle(0);
        }
        assertEquals(1, doorbell.parks, "a stopped owner must not park: its runner is waiting for it to end");
    }
}
