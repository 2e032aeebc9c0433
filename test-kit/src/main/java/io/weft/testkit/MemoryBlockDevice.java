package io.weft.testkit;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.DeviceInfo;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoRequests;
import io.weft.core.io.IoStatus;
import java.nio.ByteBuffer;
import java.util.Arrays;

/**
 * A heap-backed store that executes every request inline, on the submitting thread, and completes it before
 * {@code submit} returns: the simplest correct {@link BlockDevice}, to put under wrappers and fault injectors.
 * DISCARD and WRITE_ZEROES zero the range. Thread-safe (one lock; tests only).
 */
public final class MemoryBlockDevice implements BlockDevice {
    private final byte[] data;
    private final DeviceInfo info;
    private volatile boolean closed;

    /** @param info geometry; its size is the store's size (at most 2 GiB) */
    public MemoryBlockDevice(DeviceInfo info) {
        if (info.size() > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("in-memory store of " + info.size() + " bytes is too large");
        }
        this.info = info;
        this.data = new byte[(int) info.size()];
    }

    /** A writable device of {@code size} bytes: 4 KiB blocks, {@code maxIoSize} per request, flush/FUA/trim/zeroes. */
    public static DeviceInfo geometry(long size, int maxIoSize) {
        return new DeviceInfo(size, 4096, 4096, maxIoSize, false, true, true, true, true, false, false, true);
    }

    @Override
    public DeviceInfo info() {
        return info;
    }

    @Override
    public void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                       IoCompletion completion) {
        int status = closed ? IoStatus.ESHUTDOWN : IoRequests.check(info, op, offset, length, flags);
        if (status == IoStatus.OK) {
            synchronized (data) {
                switch (op) {
                    case READ -> buffer.put(buffer.position(), data, (int) offset, length);
                    case WRITE -> buffer.get(buffer.position(), data, (int) offset, length);
                    case DISCARD, WRITE_ZEROES -> Arrays.fill(data, (int) offset, (int) offset + length, (byte) 0);
                    default -> {
                    }
                }
            }
        }
        completion.onComplete(tag, status);
    }

    /** A copy of {@code [offset, offset + length)} as stored now. */
    public byte[] snapshot(long offset, int length) {
        synchronized (data) {
            return Arrays.copyOfRange(data, (int) offset, (int) offset + length);
        }
    }

    @Override
    public void close() {
        closed = true;
    }

    @Override
    public String toString() {
        return "MemoryBlockDevice[" + info.size() + "]";
    }
}
