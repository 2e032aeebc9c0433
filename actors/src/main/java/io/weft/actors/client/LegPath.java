package io.weft.actors.client;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.DeviceInfo;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import java.nio.ByteBuffer;

/**
 * One mirror leg as the {@link io.weft.core.mirror.MirrorBlockDevice} sees it: a fixed {@link BlockDevice} whose
 * current session path comes and goes. Without a path a request fails at once with {@code ESHUTDOWN}, which makes
 * the mirror drop the leg (and mark the write in its bitmap) instead of waiting out the leg timeout; unlike the
 * {@link QueueingBlockDevice} nothing is queued, so no old request of a dropped leg can land after it returned.
 *
 * <p>{@link #cancel} goes to the current path and to the one before it (the mirror cancels the part of a leg it
 * drops, typically right after that leg's session went away): a request lives on the path it was submitted to, and a
 * path that does not know the tag ignores the cancel. A request on a path older than that is held by a session torn
 * down long since, which completed it when it closed.
 */
final class LegPath implements BlockDevice {
    private final String name;
    private final DeviceInfo info;
    private volatile BlockDevice path;
    /** The last path before the current one (or the current one): where requests of the last session may live. */
    private volatile BlockDevice previousPath;

    LegPath(String name, DeviceInfo info, BlockDevice path) {
        this.name = name;
        this.info = info;
        this.path = path;
        this.previousPath = path;
    }

    void connect(BlockDevice newPath) {
        BlockDevice old = path;
        if (old != null) {
            previousPath = old;
        }
        path = newPath;
    }

    void disconnect() {
        BlockDevice old = path;
        if (old != null) {
            previousPath = old;
        }
        path = null;
    }

    boolean connected() {
        return path != null;
    }

    @Override
    public void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                       IoCompletion completion) {
        BlockDevice p = path;
        if (p == null) {
            completion.onComplete(tag, IoStatus.ESHUTDOWN);
        } else {
            p.submit(op, offset, length, flags, buffer, tag, completion);
        }
    }

    @Override
    public void cancel(long tag, IoCompletion completion) {
        BlockDevice current = path;
        BlockDevice previous = previousPath;
        if (current != null) {
            current.cancel(tag, completion);
        }
        if (previous != null && previous != current) {
            previous.cancel(tag, completion);
        }
    }

    @Override
    public long describeExtents(long offset, long length, ExtentConsumer consumer) {
        BlockDevice p = path;
        return p == null ? BlockDevice.super.describeExtents(offset, length, consumer)
                : p.describeExtents(offset, length, consumer);
    }

    @Override
    public DeviceInfo info() {
        return info;
    }

    /** The session owns the channel; the mirror closing its legs must not close it. */
    @Override
    public void close() {
        disconnect();
    }

    @Override
    public String toString() {
        return name;
    }
}
