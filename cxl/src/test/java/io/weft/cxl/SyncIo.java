package io.weft.cxl;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.IoOp;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/** Blocking wrapper for tests: submit one request and wait for its status (with a deadline). */
public final class SyncIo {
    private SyncIo() {
    }

    public static int run(BlockDevice dev, IoOp op, long offset, int length, int flags, ByteBuffer buf) {
        return run(dev, op, offset, length, flags, buf, Duration.ofSeconds(30));
    }

    public static int run(BlockDevice dev, IoOp op, long offset, int length, int flags, ByteBuffer buf,
                          Duration timeout) {
        CompletableFuture<Integer> done = new CompletableFuture<>();
        dev.submit(op, offset, length, flags, buf, 0, (tag, status) -> done.complete(status));
        try {
            return done.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (Exception e) {
            throw new AssertionError(op + " at " + offset + " did not complete within " + timeout, e);
        }
    }
}
