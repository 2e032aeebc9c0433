package io.weft.core.nbd;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.DeviceInfo;
import io.weft.core.io.ForwardingBlockDevice;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoRequests;
import io.weft.core.io.IoStatus;
import java.nio.ByteBuffer;

/** Test device: a read-only view of another device (as an `ro` mapping would be). */
final class ReadOnlyView extends ForwardingBlockDevice {
    ReadOnlyView(BlockDevice delegate) {
        super(delegate);
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

    /** Leaves the delegate open, as before: the test that made it closes it. */
    @Override
    public void close() {
    }
}
