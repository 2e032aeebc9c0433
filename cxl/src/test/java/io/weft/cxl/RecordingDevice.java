package io.weft.cxl;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.DeviceInfo;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import java.nio.ByteBuffer;
import java.util.concurrent.ConcurrentLinkedQueue;

/** A pass-through device that records every request reaching the storage side ("OP@offset+length/flags"). */
final class RecordingDevice implements BlockDevice {
    final BlockDevice inner;
    final ConcurrentLinkedQueue<String> seen = new ConcurrentLinkedQueue<>();

    RecordingDevice(BlockDevice inner) {
        this.inner = inner;
    }

    @Override
    public DeviceInfo info() {
        return inner.info();
    }

    @Override
    public void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                       IoCompletion completion) {
        seen.add(op + "@" + offset + "+" + length + "/" + flags);
        inner.submit(op, offset, length, flags, buffer, tag, completion);
    }

    @Override
    public void close() {
        inner.close();
    }
}
