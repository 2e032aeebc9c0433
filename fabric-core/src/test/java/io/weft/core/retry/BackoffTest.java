package io.weft.core.retry;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class BackoffTest {

    @Test
    void doublesFromMinUpToMaxAndStaysThere() {
        Backoff backoff = Backoff.exponential(Duration.ofMillis(100), Duration.ofMillis(1000));
        List<Long> waits = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            waits.add(backoff.nextDelay().toMillis());
        }
        assertEquals(List.of(100L, 200L, 400L, 800L, 1000L, 1000L), waits);
    }

    @Test
    void resetStartsAgainAtMinAndJumpToMaxWaitsTheLongest() {
        Backoff backoff = Backoff.exponential(Duration.ofMillis(10), Duration.ofSeconds(5));
        backoff.nextDelay();
        backoff.nextDelay();
        backoff.reset();
        assertEquals(10, backoff.nextDelay().toMillis());
        backoff.jumpToMax();
        assertEquals(5000, backoff.nextDelay().toMillis());
    }

    @Test
    void jitterDrawsEachWaitBetweenHalfAndTheFullDelay() {
        Backoff backoff = Backoff.exponentialWithJitter(Duration.ofMillis(100), Duration.ofMillis(400));
        long[] nominal = {100, 200, 400, 400};
        for (long n : nominal) {
            long wait = backoff.nextDelay().toMillis();
            assertTrue(wait >= n / 2 && wait <= n, "wait " + wait + " ms outside [" + n / 2 + ", " + n + "]");
        }
    }

    @Test
    void aMaxAboveHalfOfLongMaxDoesNotOverflow() {
        Backoff backoff = Backoff.exponential(Duration.ofNanos(1), Duration.ofNanos(Long.MAX_VALUE));
        long last = 0;
        for (int i = 0; i < 70; i++) {
            long wait = backoff.nextDelayNanos();
            assertTrue(wait >= last, "wait went down from " + last + " to " + wait);
            last = wait;
        }
        assertEquals(Long.MAX_VALUE, last);
    }

    @Test
    void refusesMinAboveMax() {
        assertThrows(IllegalArgumentException.class,
                () -> Backoff.exponential(Duration.ofSeconds(2), Duration.ofSeconds(1)));
    }
}
