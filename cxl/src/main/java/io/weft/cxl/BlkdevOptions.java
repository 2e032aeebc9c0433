package io.weft.cxl;

/**
 * How a client opens a blkdev.
 *
 * @param queues     channels to use (at most the backend's channel count; 0 = all of them)
 * @param useInvoker no completion thread: the caller drives completions with {@link CxlBlockDevice#invoker()}
 *                   (lowest latency when the submitting thread can also poll)
 */
public record BlkdevOptions(int queues, boolean useInvoker) {
    public BlkdevOptions {
        if (queues < 0) {
            throw new IllegalArgumentException("queues must be >= 0: " + queues);
        }
    }

    public static BlkdevOptions defaults() {
        return new BlkdevOptions(0, false);
    }
}
