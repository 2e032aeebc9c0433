package io.weft.core.retry;

import java.time.Duration;
import java.util.Objects;
import java.util.function.LongUnaryOperator;

/**
 * The one retry policy of Weft: wait {@code min}, then twice as long after each failure, never more than {@code max};
 * back to {@code min} after a success. With jitter each wait is drawn from {@code [d/2, d]}, so clients that lost the
 * same peer at the same moment do not retry in lock step.
 *
 * <p>A backoff is state, owned by one thread or one actor (not thread-safe). Pekko's
 * {@code SupervisorStrategy.restartWithBackoff} follows the same doubling for restarted children; this class is for
 * the loops that retry by themselves.
 */
public final class Backoff {

    private final long minNanos;
    private final long maxNanos;
    private final LongUnaryOperator jitter;
    private long nextNanos;

    private Backoff(long minNanos, long maxNanos, LongUnaryOperator jitter) {
        if (minNanos <= 0 || maxNanos < minNanos) {
            throw new IllegalArgumentException("backoff needs 0 < min <= max, got min " + minNanos + " ns, max "
                    + maxNanos + " ns");
        }
        this.minNanos = minNanos;
        this.maxNanos = maxNanos;
        this.jitter = jitter;
        this.nextNanos = minNanos;
    }

    /** Doubling from {@code min} to {@code max}, no jitter. */
    public static Backoff exponential(Duration min, Duration max) {
        return new Backoff(min.toNanos(), max.toNanos(), d -> d);
    }

    /** Doubling from {@code min} to {@code max}; each wait drawn uniformly from {@code [d/2, d]}. */
    public static Backoff exponentialWithJitter(Duration min, Duration max) {
        return new Backoff(min.toNanos(), max.toNanos(),
                d -> d / 2 + java.util.concurrent.ThreadLocalRandom.current().nextLong(d / 2 + 1));
    }

    /** As {@link #exponentialWithJitter} with a given draw ({@code d -> wait}), for tests that replay a seed. */
    public static Backoff exponentialWithJitter(Duration min, Duration max, LongUnaryOperator draw) {
        return new Backoff(min.toNanos(), max.toNanos(), Objects.requireNonNull(draw));
    }

    /** The wait before the next attempt, in nanoseconds; the one after it doubles (up to max). */
    public long nextDelayNanos() {
        long delay = nextNanos;
        nextNanos = delay > maxNanos / 2 ? maxNanos : delay * 2;
        return jitter.applyAsLong(delay);
    }

    /** The wait before the next attempt; the one after it doubles (up to max). */
    public Duration nextDelay() {
        return Duration.ofNanos(nextDelayNanos());
    }

    /** After a success: the next failure waits {@code min} again. */
    public void reset() {
        nextNanos = minNanos;
    }

    /** After a failure that will not go away soon (a permanent refusal): wait {@code max} from now on. */
    public void jumpToMax() {
        nextNanos = maxNanos;
    }

    public Duration min() {
        return Duration.ofNanos(minNanos);
    }

    public Duration max() {
        return Duration.ofNanos(maxNanos);
    }
}
