package io.weft.core.io;

import java.nio.ByteBuffer;
import java.util.Objects;

/**
 * A device that passes every call to the device it wraps: a layer that changes one thing (counts requests, records
 * them, holds or fails some) extends this and overrides only that, instead of re-writing the delegation of
 * {@code info}, {@code submit}, {@code cancel}, {@code describeExtents}, {@code awaitCompletions} and {@code close}.
 *
 * <p>Adds nothing per IO: each call is one virtual call to the delegate. Ownership is the delegate's contract
 * unchanged: a forwarded request's buffer belongs to the delegate until its completion runs.
 */
public abstract class ForwardingBlockDevice implements BlockDevice {
    /** The wrapped device; every call not overridden goes to it. */
    protected final BlockDevice delegate;

    protected ForwardingBlockDevice(BlockDevice delegate) {
        this.delegate = Objects.requireNonNull(delegate, "delegate");
    }

    /** The wrapped device. */
    public BlockDevice delegate() {
        return delegate;
    }

    @Override
    public DeviceInfo info() {
        return delegate.info();
    }

    @Override
    public void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                       IoCompletion completion) {
        delegate.submit(op, offset, length, flags, buffer, tag, completion);
    }

    @Override
    public long describeExtents(long offset, long length, ExtentConsumer consumer) {
        return delegate.describeExtents(offset, length, consumer);
    }

    @Override
    public void awaitCompletions(long maxWaitNanos) {
        delegate.awaitCompletions(maxWaitNanos);
    }

    @Override
    public void cancel(long tag, IoCompletion completion) {
        delegate.cancel(tag, completion);
    }

    @Override
    public void close() {
        delegate.close();
    }
}
