package io.weft.actors.storage;

import io.weft.core.stats.IoStats;
import io.weft.core.io.BlockDevice;
import io.weft.core.io.DeviceInfo;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoRequests;
import io.weft.core.io.IoStatus;
import io.weft.core.store.StoreBlockDevice;
import java.nio.ByteBuffer;

/**
 * One mapping's view of a backend: what a transport serves to one client. It is read-only for {@code ro} mappings
 * whatever the store allows, and once revoked (mapping closed, lease expired, client node gone) every request
 * completes with {@link IoStatus#ESHUTDOWN}, so a client that lost its mapping cannot keep writing through it.
 * Counts into the backend's stats; no allocation per request.
 */
final class MappingView implements BlockDevice {
    private final StoreBlockDevice store;
    private final boolean readOnly;
    private final IoStats stats;
    private volatile DeviceInfo info;
    private volatile boolean revoked;

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

    @Override
    public DeviceInfo info() {
        return info;
    }

    @Override
    public void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                       IoCompletion completion) {
        long start = System.nanoTime();
        int status;
        if (revoked) {
            status = IoStatus.ESHUTDOWN;
        } else {
            status = IoRequests.check(info, op, offset, length, flags);
            if (status == IoStatus.OK) {
                status = store.execute(op, offset, length, flags, buffer);
            }
        }
        stats.record(op, length, status, System.nanoTime() - start);
        completion.onComplete(tag, status);
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
