package io.weft.testkit;

import java.time.Duration;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;
import org.awaitility.Awaitility;
import org.awaitility.core.ConditionTimeoutException;
import org.awaitility.pollinterval.IterativePollInterval;

/**
 * The one poll-until helper of the tests: waits, by Awaitility, until a condition holds or a timeout passes, and then
 * fails with an {@link AssertionError} naming what was awaited and, if asked, what was seen at the timeout.
 *
 * <p>The condition is polled on the calling thread (some conditions drive or read single-threaded test state),
 * first at once, then at an interval doubling from 1 ms to 50 ms: a condition that holds soon is seen soon, one
 * that takes seconds is not polled thousands of times. A waiting test never sleeps a fixed time to synchronise.
 * Exceptions other threads leave uncaught are not Awaitility's business here (fault tests throw them on purpose).
 *
 * <p>Lives in fabric-core's test-jar (package {@code io.weft.testkit}) because fabric-core's own tests need it and
 * cannot depend on the {@code test-kit} module, which depends on fabric-core; {@code test-kit} re-exports that
 * test-jar, so every other module reaches it through its {@code weft-test-kit} dependency. Used as
 * {@code import static io.weft.testkit.Await.await;}: {@code await("node is up", Duration.ofSeconds(30), () -> ...)}.
 */
public final class Await {
    private static final Duration FIRST_POLL_INTERVAL = Duration.ofMillis(1);
    private static final Duration LONGEST_POLL_INTERVAL = Duration.ofMillis(50);

    private Await() {
    }

    /** Polls {@code condition} until it holds; fails after {@code timeout} with {@code what}. */
    public static void await(String what, Duration timeout, BooleanSupplier condition) {
        await(what, timeout, condition, () -> "");
    }

    /**
     * As {@link #await(String, Duration, BooleanSupplier)}; a timeout also reports {@code seenOnTimeout} (state
     * worth reading when the condition never held: counters, paths, the other side's log), unless it is empty.
     */
    public static void await(String what, Duration timeout, BooleanSupplier condition,
                             Supplier<String> seenOnTimeout) {
        try {
            Awaitility.await(what)
                .atMost(timeout)
                .pollInSameThread()
                .dontCatchUncaughtExceptions()
                .pollDelay(Duration.ZERO)
                .pollInterval(new IterativePollInterval(
                    previous -> min(previous.multipliedBy(2), LONGEST_POLL_INTERVAL), FIRST_POLL_INTERVAL))
                .until(condition::getAsBoolean);
        } catch (ConditionTimeoutException timedOut) {
            String seen = seenOnTimeout.get();
            throw new AssertionError("timed out after " + timeout.toMillis() + " ms waiting for: " + what
                + (seen == null || seen.isEmpty() ? "" : "; seen: " + seen), timedOut);
        }
    }

    private static Duration min(Duration a, Duration b) {
        return a.compareTo(b) <= 0 ? a : b;
    }
}
