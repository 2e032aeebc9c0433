package io.weft.core.io;

/**
 * Called exactly once per submitted request. Implementations are long-lived objects (one per connection, queue or
 * slot) that find their context through {@code tag}, so the hot path allocates nothing.
 */
@FunctionalInterface
public interface IoCompletion {
    /**
     * @param tag    the caller's tag given to {@link BlockDevice#submit}
     * @param status {@link IoStatus#OK} or an error from {@link IoStatus}
     */
    void onComplete(long tag, int status);
}
