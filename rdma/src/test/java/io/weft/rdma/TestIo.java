package io.weft.rdma;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import java.nio.ByteBuffer;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/** Small helpers shared by the RDMA tests. */
public final class TestIo {
    private TestIo() {
    }

    /** Submits one request and waits for its status (test code: allocation is fine here). */
    public static int io(BlockDevice device, IoOp op, long offset, ByteBuffer buffer) throws Exception {
        CompletableFuture<Integer> done = new CompletableFuture<>();
        int length = buffer == null ? 0 : buffer.remaining();
        device.submit(op, offset, length, 0, buffer, 0, (tag, status) -> done.complete(status));
        return done.get(30, TimeUnit.SECONDS);
    }

    public static void write(BlockDevice device, long offset, byte[] data) throws Exception {
        int st = io(device, IoOp.WRITE, offset, ByteBuffer.wrap(data));
        if (st != IoStatus.OK) {
            throw new AssertionError("write at " + offset + " failed: " + IoStatus.name(st));
        }
    }

    public static byte[] read(BlockDevice device, long offset, int length) throws Exception {
        ByteBuffer b = ByteBuffer.allocate(length);
        int st = io(device, IoOp.READ, offset, b);
        if (st != IoStatus.OK) {
            throw new AssertionError("read at " + offset + " failed: " + IoStatus.name(st));
        }
        return b.array();
    }

    /** Deterministic content for block {@code block} of generation {@code gen}. */
    public static byte[] pattern(long block, int gen, int length) {
        byte[] b = new byte[length];
        long x = block * 0x9E3779B97F4A7C15L + gen * 0xC2B2AE3D27D4EB4FL + 1;
        for (int i = 0; i < length; i++) {
            x ^= x << 13;
            x ^= x >>> 7;
            x ^= x << 17;
            b[i] = (byte) x;
        }
        return b;
    }
}
