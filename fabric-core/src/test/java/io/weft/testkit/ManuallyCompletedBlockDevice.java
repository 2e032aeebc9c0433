package io.weft.testkit;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.DeviceInfo;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Accepts every request, does none of them, and completes them only when the test says so ({@link #releaseAll},
 * {@link #releaseAllFilled}): a stuck store. Not to be confused with {@link CompletionHoldingBlockDevice}, which does
 * each request at once and only delays its completion.
 */
public final class ManuallyCompletedBlockDevice implements BlockDevice {
    private record Held(long tag, int length, ByteBuffer buffer, IoCompletion completion) {
    }

    private final DeviceInfo info;
    private final List<Held> held = new ArrayList<>();
    /** Requests submitted so far, released or not. */
    public final AtomicInteger submitted = new AtomicInteger();

    public ManuallyCompletedBlockDevice(DeviceInfo info) {
        this.info = info;
    }

    @Override
    public DeviceInfo info() {
        return info;
    }

    @Override
    public synchronized void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                                    IoCompletion completion) {
        submitted.incrementAndGet();
        held.add(new Held(tag, length, buffer, completion));
    }

    /** Requests accepted and not completed yet. */
    public synchronized int held() {
        return held.size();
    }

    /** Completes every held request with {@code status}, oldest first. */
    public synchronized void releaseAll(int status) {
        for (Held h : held) {
            h.completion().onComplete(h.tag(), status);
        }
        held.clear();
    }

    /**
     * Completes every held request OK after filling each READ/WRITE payload (the shared data slot) with {@code fill}.
     */
    public synchronized void releaseAllFilled(byte fill) {
        for (Held h : held) {
            ByteBuffer b = h.buffer();
            if (b != null) {
                for (int j = 0; j < h.length(); j++) {
                    b.put(b.position() + j, fill);
                }
            }
        }
        releaseAll(IoStatus.OK);
    }

    @Override
    public void close() {
    }
}
