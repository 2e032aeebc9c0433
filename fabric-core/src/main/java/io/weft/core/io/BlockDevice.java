package io.weft.core.io;

import java.nio.ByteBuffer;

/**
 * An asynchronous block device: the one abstraction the NBD server exports, transports carry and stores implement.
 *
 * <p>Contract:
 * <ul>
 *   <li>{@link #submit} never blocks the caller for long (it may do the IO inline when the store is memory-fast, as a
 *   page-cache file is) and never throws for a bad request: the request completes with an error status instead.</li>
 *   <li>The completion runs exactly once, on any thread, possibly before {@code submit} returns.</li>
 *   <li>For READ and WRITE the payload is {@code buffer[buffer.position(), buffer.position() + length)}. The device
 *   may move the buffer's position and limit; the caller owns the buffer again once the completion has run.
 *   FLUSH, DISCARD and WRITE_ZEROES take a {@code null} buffer.</li>
 *   <li>No allocation is needed per request: completions are long-lived objects keyed by {@code tag}.</li>
 * </ul>
 */
public interface BlockDevice extends AutoCloseable {

    /** Current geometry and capabilities; may change after a resize. */
    DeviceInfo info();

    /**
     * Submits one request.
     *
     * @param op         what to do
     * @param offset     byte offset on the device
     * @param length     byte count (0 for FLUSH)
     * @param flags      {@link IoFlags} bits
     * @param buffer     payload for READ/WRITE, else {@code null}
     * @param tag        opaque to the device; handed back to {@code completion}
     * @param completion called once with the status
     */
    void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag, IoCompletion completion);

    /**
     * Describes allocation in {@code [offset, offset + length)} as consecutive extents (for NBD base:allocation).
     * The default reports one allocated data extent; stores that know about holes override it. Control path only.
     *
     * @return the number of bytes described (at least one extent unless {@code length == 0})
     */
    default long describeExtents(long offset, long length, ExtentConsumer consumer) {
        consumer.accept(length, 0);
        return length;
    }

    /**
     * The caller is about to block (an NBD reader with no buffered request) while requests it submitted are in
     * flight. A device whose completions can be taken on the calling thread (a shared-memory ring) delivers the ready
     * ones here and waits up to {@code maxWaitNanos} for one, so a lone request's reply needs no wake-up of another
     * thread; it returns as soon as something was delivered. Must not be called from a completion callback.
     * The default does nothing: completions arrive on the device's own threads.
     */
    default void awaitCompletions(long maxWaitNanos) {
    }

    /**
     * Asks the device to complete a request early: the one submitted with this {@code tag} and {@code completion}.
     *
     * <p>The ownership rule: once a request's completion has run, no layer reads or writes its buffer again. So a
     * layer that gives up on a request (io-timeout, leg timeout, force unmap, failover) never completes its caller
     * itself while the request is still live below it: it cancels it here and completes its caller from the
     * completion. The device completes the cancelled request exactly once, as always: with
     * {@link IoStatus#ECANCELED} as soon as nothing below it will touch the buffer any more (a late answer is then
     * dropped, never copied), or with its real status if it finished first. It does not wait for the storage: a
     * cancelled WRITE may still be executed there.
     *
     * <p>Any thread; returns at once (the completion may run on this thread before it returns, or soon after on the
     * device's own). An unknown or already completed request: no effect. The default forwards nothing and cancels
     * nothing: the request completes when it completes, which every device bounds by its own timeout.
     */
    default void cancel(long tag, IoCompletion completion) {
    }

    /** Releases the device. In-flight requests complete (with {@link IoStatus#ESHUTDOWN} if they cannot finish). */
    @Override
    void close();

    /** Receives one extent: its length and {@link #EXTENT_HOLE}/{@link #EXTENT_ZERO} bits. */
    @FunctionalInterface
    interface ExtentConsumer {
        /** @return false to stop early */
        boolean accept(long length, int flags);
    }

    /** The extent is not allocated on the store. */
    int EXTENT_HOLE = 1;
    /** The extent reads as zeros. */
    int EXTENT_ZERO = 2;
}
