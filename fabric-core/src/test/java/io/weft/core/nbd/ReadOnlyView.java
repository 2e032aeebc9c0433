package io.weft.core.nbd;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.DeviceInfo;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoRequests;
import io.weft.core.io.IoStatus;
import java.nio.ByteBuffer;

/** Test device: a read-only view of another device (as an `ro` mapping would be). */
final class ReadOnlyView implements BlockDevice {
    private final BlockDevice delegate;

    ReadOnlyView(BlockDevice delegate) {
        this.delegate = delegate;
    }

    @Override
    public DeviceInfo info() {
        return delegate.info().withReadOnly(true);
    }

    @Override
    public void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                       IoCompletion completion) {
        int status = IoRequests.check(info(), op, offset, length, flags);
        if (status != IoStatus.OK) {
            completion.onComplete(tag, status);
            return;
        }
        delegate.submit(op, offset, length, flags, buffer, tag, completion);
    }

    @Override
    public long describeExtents(long offset, long length, ExtentConsumer consumer) {
        return delegate.describeExtents(offset, length, consumer);
    }

    @Override
    public void close() {
    }
}
