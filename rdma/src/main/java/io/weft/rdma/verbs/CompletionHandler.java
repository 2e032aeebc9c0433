package io.weft.rdma.verbs;

/**
 * Receives completions from {@link CompletionQueue#poll}. Every value is a primitive copied out of the provider's
 * own completion structures (DiSNI reuses its {@code IbvWC} objects), so handlers may keep them.
 */
public interface CompletionHandler {

    /** A SEND from the peer landed in the receive buffer posted as {@code wrId}. */
    void onReceive(VerbsConnection connection, long wrId, int byteLength);

    /**
     * A peer's RDMA write-with-immediate finished: its {@code byteLength} bytes are in place and it consumed the
     * receive posted as {@code wrId}.
     */
    void onWriteWithImmediate(VerbsConnection connection, long wrId, int immediate, int byteLength);

    /**
     * The connection failed (peer gone, protection error, malformed traffic) or was closed; delivered once, after
     * which the connection delivers nothing more and accepts no posts.
     *
     * @param status {@link WcStatus} code
     */
    void onError(VerbsConnection connection, int status, String reason);
}
