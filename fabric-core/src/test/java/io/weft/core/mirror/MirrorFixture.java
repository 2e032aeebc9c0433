package io.weft.core.mirror;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.core.store.FileBackingStore;
import io.weft.core.store.StoreBlockDevice;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/** Temp-file legs and blocking helpers shared by the mirror and drill tests. */
public final class MirrorFixture {
    private MirrorFixture() {
    }

    public static StoreBlockDevice fileLeg(Path dir, String name, long size) throws IOException {
        return new StoreBlockDevice(FileBackingStore.createSparse(dir.resolve(name), size));
    }

    public static List<FaultyBlockDevice> faultyLegs(Path dir, int n, long size, boolean async) throws IOException {
        List<FaultyBlockDevice> legs = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            legs.add(new FaultyBlockDevice(fileLeg(dir, "leg" + i, size), async));
        }
        return legs;
    }

    /** Submits one request and waits (bounded) for its status. */
    public static int io(BlockDevice d, IoOp op, long offset, int length, int flags, ByteBuffer buf) {
        CompletableFuture<Integer> f = new CompletableFuture<>();
        d.submit(op, offset, length, flags, buf, 7, (tag, status) -> f.complete(status));
        try {
            return f.get(10, TimeUnit.SECONDS);
        } catch (Exception e) {
            throw new AssertionError("IO did not complete within 10 s: " + op + " @" + offset, e);
        }
    }

    public static int write(BlockDevice d, long offset, byte[] data) {
        ByteBuffer b = ByteBuffer.allocateDirect(data.length);
        b.put(data).flip();
        return io(d, IoOp.WRITE, offset, data.length, 0, b);
    }

    public static byte[] read(BlockDevice d, long offset, int length) {
        ByteBuffer b = ByteBuffer.allocateDirect(length);
        int st = io(d, IoOp.READ, offset, length, 0, b);
        if (st != IoStatus.OK) {
            throw new AssertionError("read @" + offset + " failed: " + IoStatus.name(st));
        }
        b.flip();
        byte[] out = new byte[length];
        b.get(out);
        return out;
    }

    public static byte[] pattern(int length, int seed) {
        byte[] b = new byte[length];
        for (int i = 0; i < length; i++) {
            b[i] = (byte) (seed * 31 + i * 7 + (i >>> 8));
        }
        return b;
    }

    /** Byte-compares two legs' whole contents; returns the first differing offset or -1. */
    public static long firstDifference(BlockDevice a, BlockDevice b, long size) {
        int chunk = 1 << 20;
        for (long pos = 0; pos < size; pos += chunk) {
            int len = (int) Math.min(chunk, size - pos);
            byte[] x = read(a, pos, len);
            byte[] y = read(b, pos, len);
            int m = Arrays.mismatch(x, y);
            if (m >= 0) {
                return pos + m;
            }
        }
        return -1;
    }

    public static Path tempDir(String prefix) throws IOException {
        Path shm = Path.of("/dev/shm");
        Path base = Files.isDirectory(shm) ? shm : Path.of(System.getProperty("java.io.tmpdir"));
        return Files.createTempDirectory(base, prefix);
    }

    public static void deleteTree(Path dir) throws IOException {
        if (dir == null || !Files.exists(dir)) {
            return;
        }
        try (var s = Files.walk(dir)) {
            s.sorted((x, y) -> y.getNameCount() - x.getNameCount()).forEach(p -> p.toFile().delete());
        }
    }
}
