package io.weft.actors.drill.harness;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * Compares the legs of a mirror block by block, each leg read through its own device (not through the mirror, so
 * the mirror's read policy cannot hide a leg that differs): what a drill does once the device is back in sync, and
 * what {@code POST /weft/devices/{id}/compare-legs} answers. Every leg is compared with leg 0 (the first leg given)
 * in 4 KiB blocks; adjacent differing blocks are reported as one region.
 *
 * <p>Meaningful only on an idle device with every leg in sync: a write in flight lands on the legs at slightly
 * different times. The caller makes sure of that (the drill has drained its workload; the route refuses a device
 * with a leg out of sync).
 *
 * <p>Control path: one chunk per leg in flight, blocking the calling thread, buffers allocated per comparison.
 */
public final class LegComparison {
    /** Regions kept in a result (the first ones by offset); {@link Result#differingBytes()} counts them all. */
    public static final int MAX_REGIONS = 16;
    private static final int BLOCK = DrillOptions.BLOCK;
    private static final int MAX_CHUNK = 1 << 20;

    /**
     * One differing region: leg {@code leg} holds other bytes than leg 0 in {@code [offset, offset + length)}.
     */
    public record Region(int leg, long offset, long length) {
        @Override
        public String toString() {
            return String.format(Locale.ROOT, "leg %d differs from leg 0 in [%d, %d) (%d KiB at %.2f MiB)", leg,
                    offset, offset + length, length >> 10, offset / (double) (1 << 20));
        }
    }

    /**
     * @param legs           legs compared
     * @param bytesCompared  bytes of each leg compared, from offset 0
     * @param differingBytes bytes (in 4 KiB blocks) where some leg differs from leg 0, summed over the legs
     * @param regions        the first {@value #MAX_REGIONS} differing regions by leg and offset
     */
    public record Result(int legs, long bytesCompared, long differingBytes, List<Region> regions) {
        public Result {
            regions = List.copyOf(regions);
        }

        public boolean identical() {
            return differingBytes == 0;
        }

        /** One line for people. */
        public String describe() {
            if (identical()) {
                return String.format(Locale.ROOT, "%d legs byte-identical over [0, %d) (%d MiB)", legs, bytesCompared,
                        bytesCompared >> 20);
            }
            return String.format(Locale.ROOT, "legs DIFFER in %d bytes of [0, %d): %s%s", differingBytes,
                    bytesCompared, regions.isEmpty() ? "" : regions.get(0),
                    regions.size() > 1 ? " and " + (regions.size() - 1) + " more region(s) listed" : "");
        }
    }

    private LegComparison() {
    }

    /**
     * Reads {@code [0, length)} of every leg and compares each with the first.
     *
     * @param legs          two or more leg devices, in mirror position order
     * @param length        bytes to compare (a multiple of 4096, at most every leg's size)
     * @param timeoutMillis bound for each read
     * @throws IllegalArgumentException for fewer than two legs or a bad length
     * @throws IllegalStateException    when a read fails or times out (the comparison cannot say anything then)
     */
    public static Result compare(List<? extends BlockDevice> legs, long length, long timeoutMillis) {
        if (legs.size() < 2) {
            throw new IllegalArgumentException("a comparison needs two legs or more: " + legs.size());
        }
        if (length <= 0 || length % BLOCK != 0) {
            throw new IllegalArgumentException("length must be a positive multiple of 4096: " + length);
        }
        int chunk = MAX_CHUNK;
        for (BlockDevice leg : legs) {
            if (leg.info().size() < length) {
                throw new IllegalArgumentException("a leg has " + leg.info().size() + " bytes, fewer than the "
                        + length + " to compare");
            }
            chunk = Math.min(chunk, Math.max(BLOCK, leg.info().maxIoSize() / BLOCK * BLOCK));
        }
        Read[] reads = new Read[legs.size()];
        for (int i = 0; i < reads.length; i++) {
            reads[i] = new Read(chunk);
        }
        // Per leg (index 1..n-1): the differing region being extended, and what was found so far.
        long[] openStart = new long[legs.size()];
        java.util.Arrays.fill(openStart, -1);
        List<Region> regions = new ArrayList<>();
        long differing = 0;
        for (long at = 0; at < length; at += chunk) {
            int n = (int) Math.min(chunk, length - at);
            for (int i = 0; i < reads.length; i++) {
                reads[i].start(legs.get(i), at, n);
            }
            for (int i = 0; i < reads.length; i++) {
                int st = reads[i].await(legs.get(i), timeoutMillis);
                if (st != IoStatus.OK) {
                    throw new IllegalStateException("reading leg " + i + " at " + at + " failed: "
                            + IoStatus.name(st) + "; the legs were not compared");
                }
            }
            ByteBuffer base = reads[0].buffer;
            for (int leg = 1; leg < reads.length; leg++) {
                ByteBuffer other = reads[leg].buffer;
                for (int off = 0; off < n; off += BLOCK) {
                    boolean same = base.slice(off, BLOCK).equals(other.slice(off, BLOCK));
                    long blockAt = at + off;
                    if (!same) {
                        differing += BLOCK;
                        if (openStart[leg] < 0) {
                            openStart[leg] = blockAt;
                        }
                    } else if (openStart[leg] >= 0) {
                        regions.add(new Region(leg, openStart[leg], blockAt - openStart[leg]));
                        openStart[leg] = -1;
                    }
                }
            }
        }
        for (int leg = 1; leg < openStart.length; leg++) {
            if (openStart[leg] >= 0) {
                regions.add(new Region(leg, openStart[leg], length - openStart[leg]));
            }
        }
        regions.sort((x, y) -> x.leg() != y.leg() ? Integer.compare(x.leg(), y.leg())
                : Long.compare(x.offset(), y.offset()));
        return new Result(legs.size(), length, differing,
                regions.subList(0, Math.min(MAX_REGIONS, regions.size())));
    }

    /**
     * One read of one leg. Ownership: the buffer is the device's from submit until the completion runs; a read that
     * times out is cancelled, and if it still does not complete its buffer is abandoned (a fresh one is used next),
     * so no late completion can write into a buffer being compared.
     */
    private static final class Read implements IoCompletion {
        private final int capacity;
        ByteBuffer buffer;
        private volatile boolean done;
        private volatile int status;
        private volatile Thread waiter;

        Read(int capacity) {
            this.capacity = capacity;
            this.buffer = ByteBuffer.allocateDirect(capacity);
        }

        void start(BlockDevice device, long offset, int length) {
            done = false;
            waiter = Thread.currentThread();
            buffer.clear().limit(length);
            device.submit(IoOp.READ, offset, length, 0, buffer, 0, this);
        }

        int await(BlockDevice device, long timeoutMillis) {
            long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
            while (!done && System.nanoTime() < deadline) {
                LockSupport.parkNanos(1_000_000);
            }
            if (!done) {
                device.cancel(0, this);
                long grace = System.nanoTime() + TimeUnit.SECONDS.toNanos(1);
                while (!done && System.nanoTime() < grace) {
                    LockSupport.parkNanos(1_000_000);
                }
                if (!done) {
                    buffer = ByteBuffer.allocateDirect(capacity); // the old one may still be written: let it go
                }
                return IoStatus.ETIMEDOUT;
            }
            return status;
        }

        @Override
        public void onComplete(long tag, int st) {
            status = st;
            done = true;
            Thread w = waiter;
            if (w != null) {
                LockSupport.unpark(w);
            }
        }
    }
}
