package io.weft.actors.drill.harness;

import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;

/** The progress hook other threads read while a drill runs: its phase, its request count, and cancel. */
class DrillProgressTest extends FileStoreTestBase {
    static final long SIZE = 4L << 20;

    DrillProgressTest() {
        super("single", SIZE);
    }

    private static DrillOptions options(long before, long during, long after) {
        return new DrillOptions(5, 4, 4096, 16384, 30, SIZE, before, during, after, 1000);
    }

    @Test
    void phasesAdvanceInOrderAndTheRequestCountMatchesTheReport() throws Exception {
        List<Drill.Phase> seen = new ArrayList<>();
        AtomicReference<Drill> self = new AtomicReference<>();
        DrillFault fault = DrillFault.of("observe", () -> seen.add(self.get().phase()),
                () -> seen.add(self.get().phase()));
        Drill drill = new Drill(store, null, fault, options(30, 30, 30));
        self.set(drill);
        assertSame(Drill.Phase.STARTING, drill.phase());
        assertEquals(0, drill.completedRequests());
        DrillReport report = drill.run();
        assertEquals(List.of(Drill.Phase.DURING, Drill.Phase.RECOVERING), seen);
        assertSame(Drill.Phase.DONE, drill.phase());
        assertEquals(report.requests(), drill.completedRequests());
        assertTrue(report.intact(), report.toText());
    }

    @Test
    void aFaultThatThrowsLeavesTheDrillFailed() {
        Drill drill = new Drill(store, null, DrillFault.of("broken", () -> {
            throw new IllegalStateException("cannot inject");
        }, () -> { }), options(10, 10, 10));
        IllegalStateException e = assertThrows(IllegalStateException.class, drill::run);
        assertEquals("cannot inject", e.getMessage());
        assertSame(Drill.Phase.FAILED, drill.phase());
    }

    @Test
    void cancelEndsTheRemainingPhasesAndStillRecovers() throws Exception {
        boolean[] recovered = new boolean[1];
        // Ten minutes before the fault: only cancel() can get this drill to its end within the test.
        Drill drill = new Drill(store, null, DrillFault.of("noop", () -> { }, () -> recovered[0] = true),
                options(600_000, 600_000, 600_000));
        AtomicReference<Object> outcome = new AtomicReference<>();
        Thread runner = new Thread(() -> {
            try {
                outcome.set(drill.run());
            } catch (Exception e) {
                outcome.set(e);
            }
        });
        runner.start();
        await("workload running", Duration.ofSeconds(20),
                () -> drill.phase() == Drill.Phase.BEFORE && drill.completedRequests() > 0);
        long midway = drill.completedRequests();
        await("request count advances", Duration.ofSeconds(20), () -> drill.completedRequests() > midway);
        drill.cancel();
        runner.join(60_000);
        assertFalse(runner.isAlive(), "the drill ended after cancel");
        assertTrue(outcome.get() instanceof DrillReport, String.valueOf(outcome.get()));
        assertTrue(recovered[0], "recover ran");
        assertTrue(((DrillReport) outcome.get()).intact(), ((DrillReport) outcome.get()).toText());
    }
}
