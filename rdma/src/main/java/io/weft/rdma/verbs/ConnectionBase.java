package io.weft.rdma.verbs;

import java.net.InetSocketAddress;
import java.nio.ByteBuffer;

/**
 * What every provider's connection keeps the same way: its addresses, the peer's private data, the owner's
 * attachment, a close asked for by any thread, and the first failure (status and reason), which the owner's
 * completion queue delivers once as {@link CompletionHandler#onError}. A provider adds the transport.
 */
public abstract class ConnectionBase implements VerbsConnection {
    private final InetSocketAddress local;
    private final InetSocketAddress remote;
    private ByteBuffer peerPrivateData = ByteBuffer.allocate(0);
    private Object attachment;
    private volatile boolean closeRequested;
    private volatile int failStatus = -1;
    private volatile String failReason;

    protected ConnectionBase(InetSocketAddress local, InetSocketAddress remote) {
        this.local = local;
        this.remote = remote;
    }

    /** Connection setup: what the peer attached (kept read-only). */
    protected final void setPeerPrivateData(ByteBuffer data) {
        this.peerPrivateData = data.asReadOnlyBuffer();
    }

    /**
     * Records the first failure; later ones are ignored. @return true when this call recorded it (the caller then
     * tears the transport down)
     */
    protected final synchronized boolean recordFailure(int status, String reason) {
        if (failStatus >= 0) {
            return false;
        }
        failReason = reason;
        failStatus = status;
        return true;
    }

    /** Any thread: marks the connection closed by its owner's side; the transport does the rest. */
    protected final void requestClose() {
        closeRequested = true;
    }

    protected final boolean closeRequested() {
        return closeRequested;
    }

    /** The connection failed (or was closed and its owner turned that into a failure). */
    public final boolean failed() {
        return failStatus >= 0;
    }

    /** The {@link WcStatus} of the first failure, or -1. */
    public final int failStatus() {
        return failStatus;
    }

    public final String failReason() {
        return failReason;
    }

    @Override
    public final ByteBuffer peerPrivateData() {
        return peerPrivateData.duplicate();
    }

    @Override
    public final InetSocketAddress localAddress() {
        return local;
    }

    @Override
    public final InetSocketAddress remoteAddress() {
        return remote;
    }

    @Override
    public final boolean isOpen() {
        return failStatus < 0 && !closeRequested;
    }

    @Override
    public final Object attachment() {
        return attachment;
    }

    @Override
    public final void attach(Object attachment) {
        this.attachment = attachment;
    }
}
