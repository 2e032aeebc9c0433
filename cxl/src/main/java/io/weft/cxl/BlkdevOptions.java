package io.weft.cxl;

/**
 * How a client opens a blkdev.
 *
 * @param queues          channels to use (at most the backend's channel count; 0 = all of them)
 * @param useInvoker      no completion thread: the caller drives completions with {@link CxlBlockDevice#invoker()}
 *                        (lowest latency when the submitting thread can also poll)
 * @param submitterWaitNs negative: completions are delivered by the completion agent (or the invoker) only. Zero or
 *                        more: the submitting thread also delivers, right after publishing, every completion that is
 *                        ready (it never waits there: an NBD reader with a pipeline of requests must keep reading),
 *                        and {@link CxlBlockDevice#awaitCompletions} — called by a thread that has nothing left to
 *                        submit, such as an NBD reader about to block on its socket — waits up to this long for a
 *                        completion (polling for {@code submitterSpinNs}, then asleep on the channel's client
 *                        doorbell, which the handler rings). At queue depth 1 the completion and the NBD reply then
 *                        stay on the submitting thread: no wake-up of a completion thread.
 * @param submitterSpinNs how long of {@code submitterWaitNs} the submitter polls before it sleeps on the doorbell
 */
public record BlkdevOptions(int queues, boolean useInvoker, long submitterWaitNs, long submitterSpinNs) {
    /**
     * What the node's cxl transport uses (see {@link #submitterAssisted()}): the submitter polls 5 µs (a round
     * trip when the handler has a core is 1–3 µs), then sleeps on the client doorbell up to 1 ms in all.
     */
    public static final long DEFAULT_SUBMITTER_WAIT_NS = 1_000_000;
    public static final long DEFAULT_SUBMITTER_SPIN_NS = 5_000;

    public BlkdevOptions {
        if (queues < 0) {
            throw new IllegalArgumentException("queues must be >= 0: " + queues);
        }
    }

    /** Completions only on the completion agent (or the invoker), as before submitter assistance existed. */
    public BlkdevOptions(int queues, boolean useInvoker) {
        this(queues, useInvoker, -1, 0);
    }

    public static BlkdevOptions defaults() {
        return new BlkdevOptions(0, false);
    }

    /** All queues, a completion agent, and the submitting thread delivering what it can (waiting up to 1 ms). */
    public static BlkdevOptions submitterAssisted() {
        return new BlkdevOptions(0, false, DEFAULT_SUBMITTER_WAIT_NS, DEFAULT_SUBMITTER_SPIN_NS);
    }

    public boolean submitterAssists() {
        return submitterWaitNs >= 0;
    }
}
