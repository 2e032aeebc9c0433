package io.weft.core.nbd;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Device extents → base:allocation descriptors: clipping, merging, alignment, limits. */
class NbdExtentWriterTest {
    private static final int HZ = NbdProtocol.STATE_HOLE | NbdProtocol.STATE_ZERO;
    private final ByteBuffer out = ByteBuffer.allocate(1024 * 8);
    private final NbdExtentWriter writer = new NbdExtentWriter();

    private List<String> describe(long offset, long length, int max, long... lengthFlagPairs) {
        writer.begin(out, offset, length, 512, max);
        for (int i = 0; i < lengthFlagPairs.length; i += 2) {
            if (!writer.accept(lengthFlagPairs[i], (int) lengthFlagPairs[i + 1])) {
                break;
            }
        }
        int n = writer.finish();
        List<String> result = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            result.add((out.getInt(i * 8) & 0xffffffffL) + ":" + out.getInt(i * 8 + 4));
        }
        return result;
    }

    @Test
    void alignedExtentsPassThroughAndEqualNeighboursMerge() {
        assertEquals(List.of("4096:0", "8192:3", "4096:0"),
                describe(0, 16384, 100, 4096, 0, 4096, HZ, 4096, HZ, 4096, 0));
    }

    @Test
    void extentsAreClippedToTheRequest() {
        assertEquals(List.of("1024:3"), describe(0, 1024, 100, 1 << 20, HZ));
    }

    @Test
    void unalignedBoundariesMergeConservatively() {
        // A hole starting mid-block: the block containing the boundary is reported as data.
        assertEquals(List.of("1024:0", "1024:3"), describe(0, 2048, 100, 700, 0, 1348, HZ));
    }

    @Test
    void tinyExtentsInsideOneBlockCombine() {
        assertEquals(List.of("512:0", "1024:3"),
                describe(0, 1536, 100, 100, HZ, 100, 0, 312, HZ, 1024, HZ));
        assertEquals(List.of("1536:3"), describe(0, 1536, 100, 100, HZ, 100, HZ, 1336, HZ));
    }

    @Test
    void anUndescribedPartialTailIsLeftOut() {
        assertEquals(List.of("1024:3"), describe(0, 4096, 100, 1300, HZ));
        assertEquals(List.of("512:0"), describe(0, 4096, 100, 300, HZ));
    }

    @Test
    void reqOneGivesExactlyOneDescriptor() {
        assertEquals(List.of("4096:0"), describe(0, 16384, 1, 4096, 0, 4096, HZ, 8192, 0));
    }

    @Test
    void aDeviceDescribingNothingYieldsOneDataExtent() {
        assertEquals(List.of("8192:0"), describe(0, 8192, 100));
    }

    @Test
    void descriptorCountIsBounded() {
        long[] alternating = new long[2 * 10];
        for (int i = 0; i < 10; i++) {
            alternating[2 * i] = 512;
            alternating[2 * i + 1] = i % 2 == 0 ? 0 : HZ;
        }
        assertEquals(List.of("512:0", "512:3", "512:0"), describe(0, 5120, 3, alternating));
    }

    @Test
    void lengthsAboveTwoGigabytesStayUnsigned() {
        long big = 3L << 30;
        assertEquals(List.of(big + ":3"), describe(0, big, 10, big, HZ));
    }
}
