package io.weft.testkit;

import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class AwaitTest {
    @Test
    void returnsOnceTheConditionHoldsPollingOnTheCallingThread() {
        Thread caller = Thread.currentThread();
        AtomicInteger polls = new AtomicInteger();
        await("the third poll", Duration.ofSeconds(30), () -> {
            assertSame(caller, Thread.currentThread(), "polled on another thread");
            return polls.incrementAndGet() >= 3;
        });
        assertEquals(3, polls.get());
    }

    @Test
    void aTimeoutNamesWhatWasAwaitedAndWhatWasSeen() {
        AssertionError e = assertThrows(AssertionError.class,
                () -> await("a condition that never holds", Duration.ofMillis(20), () -> false, () -> "3 of 4 done"));
        assertTrue(e.getMessage().contains("waiting for: a condition that never holds"), e.getMessage());
        assertTrue(e.getMessage().endsWith("; seen: 3 of 4 done"), e.getMessage());
    }

    @Test
    void anExceptionInTheConditionFailsTheWaitAtOnce() {
        IllegalStateException thrown = new IllegalStateException("broken probe");
        Exception e = assertThrows(Exception.class, () -> await("a probe that throws", Duration.ofSeconds(30), () -> {
            throw thrown;
        }));
        assertTrue(e == thrown || e.getCause() == thrown, "not the condition's exception: " + e);
    }
}
