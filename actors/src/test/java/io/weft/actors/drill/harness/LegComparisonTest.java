package io.weft.actors.drill.harness;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.IoStatus;
import io.weft.core.mirror.FaultyBlockDevice;
import io.weft.core.mirror.MirrorBlockDevice;
import io.weft.core.mirror.MirrorFixture;
import io.weft.core.mirror.MirrorOptions;
import io.weft.core.mirror.WriteIntentBitmap;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The block-by-block leg comparison: it finds exactly the regions where a leg differs, and a drill whose mirror
 * reads back right but whose legs differ (a write that reached one leg behind the mirror's back) reports a data
 * problem.
 */
class LegComparisonTest {
    static final long SIZE = 8L << 20;
    Path dir;

    @BeforeEach
    void setUp() throws Exception {
        dir = MirrorFixture.tempDir("weft-legcmp-");
    }

    @AfterEach
    void tearDown() throws Exception {
        MirrorFixture.deleteTree(dir);
    }

    @Test
    void identicalLegsCompareEqualAndEachDifferingRegionIsNamed() throws Exception {
        List<BlockDevice> legs = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            legs.add(MirrorFixture.fileLeg(dir, "leg" + i, SIZE));
        }
        try {
            byte[] same = MirrorFixture.pattern(1 << 20, 5);
            for (BlockDevice leg : legs) {
                assertEquals(IoStatus.OK, MirrorFixture.write(leg, 2L << 20, same));
            }
            LegComparison.Result equal = LegComparison.compare(legs, SIZE, 10_000);
            assertTrue(equal.identical(), equal.describe());
            assertEquals(SIZE, equal.bytesCompared());
            assertEquals(3, equal.legs());

            // Leg 1: 8 KiB differ at 3 MiB + 4 KiB, and the last block of the device; leg 2: 4 KiB at 0.
            assertEquals(IoStatus.OK, MirrorFixture.write(legs.get(1), (3L << 20) + 4096,
                    MirrorFixture.pattern(8192, 9)));
            assertEquals(IoStatus.OK, MirrorFixture.write(legs.get(1), SIZE - 4096, MirrorFixture.pattern(4096, 3)));
            assertEquals(IoStatus.OK, MirrorFixture.write(legs.get(2), 0, MirrorFixture.pattern(4096, 4)));
            LegComparison.Result diff = LegComparison.compare(legs, SIZE, 10_000);
            assertFalse(diff.identical(), diff.describe());
            assertEquals(4 * 4096, diff.differingBytes(), diff.describe());
            assertEquals(List.of(new LegComparison.Region(1, (3L << 20) + 4096, 8192),
                    new LegComparison.Region(1, SIZE - 4096, 4096),
                    new LegComparison.Region(2, 0, 4096)), diff.regions());
            assertTrue(diff.describe().contains("legs DIFFER in 16384 bytes"), diff.describe());
        } finally {
            legs.forEach(BlockDevice::close);
        }
    }

    @Test
    void aDrillReportsLegsThatDifferAsADataProblemEvenWhenEveryReadIsRight() throws Exception {
        List<FaultyBlockDevice> legs = MirrorFixture.faultyLegs(dir, 2, SIZE, false);
        MirrorBlockDevice mirror = new MirrorBlockDevice(new ArrayList<>(legs),
                WriteIntentBitmap.create(dir.resolve("wib"), SIZE, 1 << 20), MirrorOptions.defaults());
        // At recover: leg 1 gets a block behind the mirror's back, outside the working set (the workload never
        // reads or rewrites it), so only the comparison can see it.
        long stray = SIZE - 4096;
        DrillFault sneak = DrillFault.of("sneak", () -> { }, () -> assertEquals(IoStatus.OK,
                MirrorFixture.write(legs.get(1), stray, MirrorFixture.pattern(4096, 77))));
        try {
            Drill drill = new Drill(mirror, mirror, sneak, new DrillOptions(11, 4, 4096, 65536, 30, SIZE / 2, 30, 30,
                    30, 10_000), length -> LegComparison.compare(legs, length, 10_000));
            assertEquals(SIZE, drill.legCompareLength(), "the whole device when smaller than 64 MiB");
            DrillReport report = drill.run();
            assertEquals(0, report.blocksLost(), report.toText());
            assertEquals(0, report.blocksCorrupted(), report.toText());
            assertEquals(0, report.readMismatches(), report.toText());
            assertEquals(SIZE, report.legBytesCompared(), report.toText());
            assertEquals(4096, report.legDifferingBytes(), report.toText());
            assertFalse(report.intact(), "legs that differ are a data problem: " + report.toText());
            assertEquals(List.of(new LegComparison.Region(1, stray, 4096).toString()), report.legDifferences());
            assertTrue(report.toText().contains("DATA PROBLEM"), report.toText());
            assertTrue(report.toJson().contains("\"legDifferingBytes\":4096"), report.toJson());
        } finally {
            mirror.close();
        }
    }

    @Test
    void aCleanDrillComparesTheLegsAndFindsThemIdentical() throws Exception {
        List<FaultyBlockDevice> legs = MirrorFixture.faultyLegs(dir, 2, SIZE, true);
        MirrorBlockDevice mirror = new MirrorBlockDevice(new ArrayList<>(legs),
                WriteIntentBitmap.create(dir.resolve("wib"), SIZE, 1 << 20), MirrorOptions.defaults());
        try {
            DrillReport report = new Drill(mirror, mirror, DrillFault.of("nothing", () -> { }, () -> { }),
                    new DrillOptions(12, 8, 4096, 65536, 30, SIZE, 30, 30, 30, 10_000),
                    length -> LegComparison.compare(legs, length, 10_000)).run();
            assertTrue(report.intact(), report.toText());
            assertEquals(SIZE, report.legBytesCompared(), report.toText());
            assertEquals(0, report.legDifferingBytes(), report.toText());
            assertTrue(report.events().stream().anyMatch(e -> e.event() instanceof DrillEvent.LegsCompared c
                    && c.result().legs() == 2 && c.result().identical()), report.toText());
        } finally {
            mirror.close();
        }
    }
}
