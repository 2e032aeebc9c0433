package io.weft.testkit;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.ForwardingBlockDevice;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;

/**
 * Passes every request through and records it, in order (on whatever thread submits). Can also fail every FLUSH with
 * a chosen status (ENOSPC on one mirror leg, say), completing it inline without forwarding it.
 */
public final class RecordingBlockDevice extends ForwardingBlockDevice {
    private record Request(IoOp op, long offset, int length, int flags) {
        @Override
        public String toString() {
            return op + "@" + offset + "+" + length + "/" + flags;
        }
    }

    private final List<Request> requests = new ArrayList<>();
    private volatile int flushStatus = IoStatus.OK;

    public RecordingBlockDevice(BlockDevice delegate) {
        super(delegate);
    }

    /** Every later FLUSH completes with {@code status} (OK = forwarded). */
    public void failFlushesWith(int status) {
        flushStatus = status;
    }

    /** The operations so far, oldest first. */
    public synchronized List<IoOp> ops() {
        return requests.stream().map(Request::op).toList();
    }

    /** The requests so far, oldest first, each as {@code "OP@offset+length/flags"}. */
    public synchronized List<String> requests() {
        return requests.stream().map(Request::toString).toList();
    }

    @Override
    public void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                       IoCompletion completion) {
        synchronized (this) {
            requests.add(new Request(op, offset, length, flags));
        }
        int status = flushStatus;
        if (op == IoOp.FLUSH && status != IoStatus.OK) {
            completion.onComplete(tag, status);
            return;
        }
        delegate.submit(op, offset, length, flags, buffer, tag, completion);
    }

    @Override
    public String toString() {
        return "Recording[" + delegate + "]";
    }
}
