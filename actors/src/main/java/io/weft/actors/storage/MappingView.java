package io.weft.actors.storage;

import io.weft.core.stats.IoStats;
import io.weft.core.io.BlockDevice;
import io.weft.core.io.DeviceInfo;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoRequests;
import io.weft.core.io.IoStatus;
import io.weft.core.io.ReadLending;
import io.weft.core.store.StoreBlockDevice;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;

/**
 * One mapping's view of a backend: what a transport serves to one client. It is read-only for {@code ro} mappings
 * whatever the store allows, and once revoked (mapping closed, lease expired, client node gone) every request
 * completes with {@link IoStatus#ESHUTDOWN}, so a client that lost its mapping cannot keep writing through it.
 * Counts into the backend's stats; no allocation per request.
 *
 * <p>Fencing: a request that passed the revoked check before {@link #revoke()} may still be writing to the store
 * afterwards (the transport's agent thread runs it while the backend actor revokes). {@link #drained()} says when no
 * such request is left; the backend grants the next writer only then, so a late write of the old holder can never
 * land over the new holder's writes. Each request counts itself in flight before it reads the revoked flag (both
 * volatile), so once {@code revoke()} has run and {@code drained()} is true, no request of this view touches the
 * store again.
 *
 * <p>Lent READs ({@link ReadLending}) pass through to the store (its file mapping), so an NBD READ through
 * {@code weft node} is gathered straight from the page cache; a revoked view lends nothing (the ordinary READ then
 * answers ESHUTDOWN).
 */
final class MappingView implements BlockDevice, ReadLending {
    private static final VarHandle IN_FLIGHT;

    static {
        try {
            IN_FLIGHT = MethodHandles.lookup().findVarHandle(MappingView.class, "inFlight", int.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final StoreBlockDevice store;
    private final boolean readOnly;
    private final IoStats stats;
    private volatile DeviceInfo info;
    private volatile boolean revoked;
    /** Requests between their revoked check and the end of their store access. */
    private volatile int inFlight;

    MappingView(StoreBlockDevice store, boolean readOnly, IoStats stats) {
        this.store = store;
        this.readOnly = readOnly;
        this.stats = stats;
        refresh();
    }

    /** Picks up the store's geometry after a resize. */
    void refresh() {
        DeviceInfo base = store.info();
        info = readOnly ? base.withReadOnly(true) : base;
    }

    void revoke() {
        revoked = true;
    }

    /** After {@link #revoke()}: true once no request that passed the revoked check is still at the store. */
    boolean drained() {
        return inFlight == 0;
    }

    @Override
    public DeviceInfo info() {
        return info;
    }

    @Override
    public void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                       IoCompletion completion) {
        long start = System.nanoTime();
        int status;
        IN_FLIGHT.getAndAdd(this, 1);
        try {
            if (revoked) {
                status = IoStatus.ESHUTDOWN;
            } else {
                status = IoRequests.check(info, op, offset, length, flags);
                if (status == IoStatus.OK) {
                    status = store.execute(op, offset, length, flags, buffer);
                }
            }
        } finally {
            IN_FLIGHT.getAndAdd(this, -1);
        }
        stats.record(op, length, status, System.nanoTime() - start);
        completion.onComplete(tag, status);
    }

    @Override
    public boolean trySubmitLend(long offset, int length, int flags, long tag, LoanCompletion completion) {
        if (revoked || IoRequests.check(info, IoOp.READ, offset, length, flags) != IoStatus.OK) {
            return false; // the ordinary READ answers it (ESHUTDOWN, the check's error)
        }
        long start = System.nanoTime();
        boolean lent;
        IN_FLIGHT.getAndAdd(this, 1);
        try {
            lent = !revoked && store.trySubmitLend(offset, length, flags, tag, completion);
        } finally {
            IN_FLIGHT.getAndAdd(this, -1);
        }
        if (lent) {
            // The store lends inline, and after the same check it only ever lends with OK (StoreBlockDevice).
            stats.record(IoOp.READ, length, IoStatus.OK, System.nanoTime() - start);
        }
        return lent;
    }

    @Override
    public void releaseLoan(long loan) {
        store.releaseLoan(loan);
    }

    @Override
    public long describeExtents(long offset, long length, ExtentConsumer consumer) {
        return store.describeExtents(offset, length, consumer);
    }

    @Override
    public void close() {
        revoke();
    }
}
