package io.weft.core.mirror;

import static io.weft.core.mirror.MirrorFixture.fileLeg;
import static io.weft.core.mirror.MirrorFixture.firstDifference;
import static io.weft.core.mirror.MirrorFixture.pattern;
import static io.weft.core.mirror.MirrorFixture.write;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.IoStatus;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * {@link MirrorBlockDevice#resyncLeg}: the honest way to ask for a full copy (instead of deleting the bitmap file,
 * which makes a new mirror whose legs are assumed identical and copies nothing).
 */
class FullResyncTest extends MirrorTestBase {
    static final long SIZE = 8L << 20;
    static final int REGION = 1 << 20;




    static MirrorOptions options() {
        return MirrorOptions.defaults().withWatchdog(false).withResyncBytesPerSecond(0);
    }

    @Test
    void aFullResyncMakesAnInSyncLegThatDiffersIdentical() throws Exception {
        BlockDevice a = fileLeg(dir, "a", SIZE);
        BlockDevice b = fileLeg(dir, "b", SIZE);
        mirror = new MirrorBlockDevice(List.of(a, b), WriteIntentBitmap.inMemory(SIZE, REGION), options());
        assertEquals(IoStatus.OK, write(mirror, 4096, pattern(8192, 1)));
        // Leg b differs behind the mirror's back (restored from a backup, a bitmap file deleted...).
        assertEquals(IoStatus.OK, write(b, 5L * REGION + 512 * 3, pattern(4096, 2)));
        assertTrue(firstDifference(a, b, SIZE) >= 0);

        ResyncProgress p = mirror.resyncLeg(1, true).get(30, TimeUnit.SECONDS);
        assertTrue(p.full());
        assertEquals(SIZE / REGION, p.regionsDone(), "every region copied");
        assertEquals(LegState.IN_SYNC, mirror.legState(1));
        assertEquals(-1, firstDifference(a, b, SIZE));
    }

    @Test
    void theOnlyInSyncLegIsRefusedAndAFailedLegIsCopiedInFull() throws Exception {
        FaultyBlockDevice a = new FaultyBlockDevice(fileLeg(dir, "a", SIZE), false);
        FaultyBlockDevice b = new FaultyBlockDevice(fileLeg(dir, "b", SIZE), false);
        mirror = new MirrorBlockDevice(List.of(a, b), WriteIntentBitmap.inMemory(SIZE, REGION), options());
        b.mode(FaultyBlockDevice.Mode.FAIL);
        assertEquals(IoStatus.OK, write(mirror, 0, pattern(4096, 1)));
        assertEquals(LegState.FAILED, mirror.legState(1));
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> mirror.resyncLeg(0, true));
        assertTrue(e.getMessage().contains("only in-sync leg"), e.getMessage());
        assertThrows(IllegalStateException.class, () -> mirror.resyncLeg(2, true), "an empty position");

        b.mode(FaultyBlockDevice.Mode.PASS);
        long before = b.writes.get();
        ResyncProgress p = mirror.resyncLeg(1, true).get(30, TimeUnit.SECONDS);
        assertEquals(SIZE / REGION, p.regionsDone());
        assertEquals(SIZE / REGION, b.writes.get() - before, "the whole device, not just the dirty region");
        assertEquals(-1, firstDifference(a.inner(), b.inner(), SIZE));
        // Both legs in sync now: either can be the target, the other is the source.
        assertEquals(0, mirror.resyncLeg(0, true).get(30, TimeUnit.SECONDS).leg());
        assertEquals(LegState.IN_SYNC, mirror.legState(0));
        assertEquals(LegState.IN_SYNC, mirror.legState(1));
    }
}
