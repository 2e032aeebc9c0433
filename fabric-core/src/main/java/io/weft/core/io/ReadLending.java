package io.weft.core.io;

import java.nio.ByteBuffer;

/**
 * Optional capability of a {@link BlockDevice}: a READ answered by <b>lending</b> the device's own bytes instead of
 * copying them into the caller's buffer. The NBD server uses it for zero-copy READ replies: the reply is gathered
 * straight from the lent bytes into the socket, so a READ costs one copy (into the socket) instead of two (into a
 * request buffer, then into the socket). A device that cannot lend a particular request says so at submit time and
 * the caller takes the ordinary {@link BlockDevice#submit} path.
 *
 * <p>Ownership (the lending form of the rule in {@link BlockDevice#cancel}):
 * <ul>
 *   <li>{@link #trySubmitLend} returning false: nothing was submitted, no completion will run.</li>
 *   <li>Returning true: the completion ({@link LoanCompletion#onLent}) runs exactly once, on any thread, possibly
 *   before {@code trySubmitLend} returns. With {@link IoStatus#OK} the borrower may read
 *   {@code base[at, at + length)} from then until it calls {@link #releaseLoan} with the loan handed to it, exactly
 *   once; the device does not reuse or free that memory before (a CXL data slot stays claimed, an RDMA chunk is not
 *   recycled, a file mapping stays mapped). With an error status nothing is lent and there is nothing to release.</li>
 *   <li>{@code base} is a long-lived buffer of the device (a file mapping window, a shared-memory data area, a
 *   registered region) that many loans share: the borrower never changes its position or limit and never writes
 *   to it; it reads through its own {@link ByteBuffer#duplicate()} (kept per {@code base} identity, so the steady
 *   state allocates nothing).</li>
 *   <li>After {@link #releaseLoan} the borrower touches none of the lent bytes again. A borrower that gives up on a
 *   lending READ still in flight cancels it with {@link #cancelLend} and releases the loan if one arrives anyway.</li>
 * </ul>
 *
 * <p>What the lent bytes hold: the device's data at some moment between submit and {@link #releaseLoan}. For a
 * device lending its storage itself (a file mapping), a WRITE that lands on the same range while the loan is out
 * shows through; NBD allows that, since requests in flight together have no order (a READ is not complete before
 * its reply has been received). A device whose bytes must be a snapshot lends a private copy (its own slot).
 *
 * <p>Layers between the NBD server and the store forward these calls when they pass a request through unchanged
 * ({@link SplittingBlockDevice} does for a READ it does not split); a layer that does not implement this interface
 * simply turns lending off below it.
 */
public interface ReadLending {

    /**
     * Submits a READ of {@code [offset, offset + length)} whose data the device lends.
     *
     * @param flags      {@link IoFlags} bits, as for {@link BlockDevice#submit}
     * @param tag        opaque to the device; handed back to {@code completion}
     * @param completion called exactly once if this returns true
     * @return false if this request cannot be lent (the caller submits it the ordinary way); nothing ran then
     */
    boolean trySubmitLend(long offset, int length, int flags, long tag, LoanCompletion completion);

    /**
     * Ends a loan: the borrower is done reading its bytes. Exactly once per loan completed with OK; any thread;
     * never blocks.
     */
    void releaseLoan(long loan);

    /**
     * Asks the device to complete a lending READ early, as {@link BlockDevice#cancel} does for ordinary requests:
     * the completion still runs exactly once (ECANCELED with nothing lent, or its real status). The default cancels
     * nothing: the request completes when it completes, bounded by the device's own timeout.
     */
    default void cancelLend(long tag, LoanCompletion completion) {
    }

    /** The completion of a lending READ. Long-lived, like {@link IoCompletion}: the tag finds the context. */
    @FunctionalInterface
    interface LoanCompletion {
        /**
         * @param tag    the borrower's tag given to {@link #trySubmitLend}
         * @param status {@link IoStatus#OK} or an error from {@link IoStatus}
         * @param base   with OK: the buffer holding the data at {@code [at, at + length)}; null otherwise
         * @param at     index of the data's first byte in {@code base}
         * @param loan   with OK: the handle to give to {@link #releaseLoan}
         */
        void onLent(long tag, int status, ByteBuffer base, int at, long loan);
    }
}
