package io.weft.cxl;

import java.nio.ByteBuffer;

/**
 * Self-describing block contents for verifying workloads: each block carries its own block number and a version,
 * and the rest is derived from both, so a block written to the wrong offset, torn, or stale is recognised.
 */
public final class Pattern {
    public static final int BLOCK = 4096;

    private Pattern() {
    }

    public static void fill(ByteBuffer buf, int pos, long block, long version) {
        buf.putLong(pos, block);
        buf.putLong(pos + 8, version);
        long x = block * 0x9E3779B97F4A7C15L + version * 0xC2B2AE3D27D4EB4FL + 1;
        for (int i = 16; i < BLOCK; i += 8) {
            x ^= x << 13;
            x ^= x >>> 7;
            x ^= x << 17;
            buf.putLong(pos + i, x);
        }
    }

    /** @return the version held by the block, 0 for a never-written (all-zero) block, or -1 if it is corrupt */
    public static long versionOf(ByteBuffer buf, int pos, long block) {
        long b = buf.getLong(pos);
        long v = buf.getLong(pos + 8);
        if (b == 0 && v == 0) {
            for (int i = 0; i < BLOCK; i += 8) {
                if (buf.getLong(pos + i) != 0) {
                    return -1;
                }
            }
            return 0;
        }
        if (b != block) {
            return -1;
        }
        ByteBuffer expect = ByteBuffer.allocate(BLOCK);
        fill(expect, 0, block, v);
        for (int i = 0; i < BLOCK; i += 8) {
            if (buf.getLong(pos + i) != expect.getLong(i)) {
                return -1;
            }
        }
        return v;
    }
}
