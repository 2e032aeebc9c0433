package io.weft.cxl;

import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import java.time.Duration;
import org.junit.jupiter.api.Test;

/**
 * Closing an idle completion agent must wake it: asleep for up to a heartbeat, it used to keep the closer waiting
 * until Agrona's runner gave up after its retry timeout and interrupted it ("cxl-completions-... failed to close due
 * to timeout, retrying..." in every CI log; SharedAgentsTest took 30 s).
 */
class CompletionAgentCloseTest {

    @Test
    void closingAnAgentAsleepForAHeartbeatWakesItInsteadOfWaitingOutTheRetryTimeout() {
        Duration beat = Duration.ofSeconds(20);
        CxlOptions sleepy = new CxlOptions(beat, beat.multipliedBy(3), beat.multipliedBy(6), 200, 100,
                Duration.ofNanos(1_000), Duration.ofMillis(1), Duration.ZERO);
        CompletionAgent agent = new CompletionAgent("cxl-completions-close-test").start(sleepy);
        Thread thread = threadNamed("cxl-completions-close-test");
        await("the idle agent parked for its 20 s heartbeat", Duration.ofSeconds(10),
                () -> thread.getState() == Thread.State.TIMED_WAITING);
        agent.close();
        assertFalse(thread.isAlive(), "close returns once the agent thread has ended");
        assertEquals(0, agent.closeRetries(), "close had to wait out the runner's retry timeout and interrupt the "
                + "agent: nothing woke it");
    }

    private static Thread threadNamed(String prefix) {
        for (Thread t : Thread.getAllStackTraces().keySet()) {
            if (t.getName().startsWith(prefix)) {
                return t;
            }
        }
        throw new AssertionError("no thread named " + prefix + "*; threads: " + Thread.getAllStackTraces().keySet());
    }
}
