package io.weft.rdma.client;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.DeviceInfo;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.rdma.protocol.Grant;
import java.nio.ByteBuffer;
import java.util.concurrent.CompletableFuture;

/**
 * A remote device opened inside an {@link RdmaSession} (DEVICE_OPEN, proven with its own mapping grant): asynchronous,
 * no allocation per request. Every device of a session shares its paths, permits (queue depth), chunk pools and
 * agents; a request carries the device's id in its header. A WRITE's payload is copied into the request's chunk on
 * the submitting thread, which also posts the request when its queue is idle (else the queue agent does); a READ's
 * data is copied into the caller's buffer on the queue agent, which reaped the answer, just before the completion
 * runs there. Submitting more requests than the session's queue depth makes {@code submit} wait for a free
 * permit (up to the IO timeout), except on the session's own queue agent (a completion callback submitting again),
 * where a full queue completes the request with {@code ENOMEM} rather than deadlock. {@link #cancel} completes a
 * request early without ever touching its buffer afterwards.
 *
 * <p>{@link #close} closes this device only (its held requests complete with ESHUTDOWN, the storage side is told with
 * DEVICE_CLOSE) and leaves the session and its other devices alone, except for the device of the single-device
 * {@link RdmaSession#open(io.weft.rdma.verbs.VerbsProvider, String, String, Grant, java.util.List, RdmaClientConfig)},
 * which owns its session and closes it.
 */
public final class RdmaBlockDevice implements BlockDevice {
    /** Control-thread states of the device's open inside the session. */
    static final int NEEDS_OPEN = 0;
    static final int CHALLENGED = 1;
    static final int PROVING = 2;
    static final int OPEN = 3;
    static final int GONE = 4;

    private final RdmaSession session;
    final String name;
    final Grant grant;
    /** The client's number for this device's DEVICE_* requests; unique within the session, never reused. */
    final int requestId;
    final boolean ownsSession;
    /** The id the storage side gave the device in the current storage session, or -1 while it is not open there. */
    volatile int remoteId = -1;
    volatile DeviceInfo info;
    /** Closed by its user: new requests complete with ESHUTDOWN. */
    volatile boolean closed;
    /** Why the device can no longer be used (refused on re-open, no longer served), or null. */
    volatile String failure;
    final CompletableFuture<Void> opened = new CompletableFuture<>();

    // control thread only
    int state = NEEDS_OPEN;
    byte[] clientNonce;
    io.weft.rdma.protocol.AdminChannel askedOn;

    RdmaBlockDevice(RdmaSession session, String name, Grant grant, int requestId, boolean ownsSession) {
        this.session = session;
        this.name = name;
        this.grant = grant;
        this.requestId = requestId;
        this.ownsSession = ownsSession;
    }

    public RdmaSession session() {
        return session;
    }

    /** The device's name on the storage node (the mapping id). */
    public String name() {
        return name;
    }

    /** Why the device failed (no longer served, refused when re-opened after a reconnect), or null. */
    public String failure() {
        return failure;
    }

    /** True while requests can reach the device: not closed, not failed. */
    boolean usable() {
        return !closed && failure == null;
    }

    @Override
    public DeviceInfo info() {
        return info;
    }

    @Override
    public void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                       IoCompletion completion) {
        session.submit(this, op, offset, length, flags, buffer, tag, completion);
    }

    /**
     * Submitter assist (see ClientQueue): when the session's only request in flight is one the caller is about to
     * block on, waits for its answer on this thread, up to {@code maxWaitNanos} (capped by
     * {@code weft.rdma.submitter-assist-max-wait-us}), so its completion runs here. Returns at once otherwise.
     */
    @Override
    public void awaitCompletions(long maxWaitNanos) {
        session.awaitCompletions(maxWaitNanos);
    }

    /**
     * Completes the request at once with ECANCELED unless it was answered first; a late answer is dropped (never copied
     * into the buffer) and the request's chunk stays reserved until nothing can land in it any more.
     */
    @Override
    public void cancel(long tag, IoCompletion completion) {
        session.cancel(tag, completion);
    }

    /** Closes this device in its session (or the session, for a device that owns it). */
    @Override
    public void close() {
        if (ownsSession) {
            session.close();
        } else {
            session.closeDevice(this);
        }
    }

    @Override
    public String toString() {
        return "RdmaBlockDevice[" + name + " in session " + session.name() + "]";
    }
}
