package io.weft.actors.drill.harness;

import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.ForwardingBlockDevice;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.core.mirror.FaultyBlockDevice;
import io.weft.core.mirror.LegState;
import io.weft.core.mirror.MirrorBlockDevice;
import io.weft.core.mirror.MirrorFixture;
import io.weft.core.mirror.MirrorOptions;
import io.weft.core.mirror.ReadPolicy;
import io.weft.core.mirror.WriteIntentBitmap;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class DrillTest {
    static final long SIZE = 16L << 20;
    /** Generous: a few leg timeouts of 250 ms plus scheduling noise on a shared 2-core machine. */
    static final double STALL_BOUND_MILLIS = 3000;
    /**
     * 250 ms keeps the suite short and a loaded CI machine from dropping a healthy leg;
     * {@code -Dweft.drill.legTimeoutMs=500} measures the shipped default (docs/mirror.md).
     */
    static final long LEG_TIMEOUT_MILLIS = Long.getLong("weft.drill.legTimeoutMs", 250);
    Path dir;

    @BeforeEach
    void setUp() throws Exception {
        dir = MirrorFixture.tempDir("weft-drill-");
    }

    @AfterEach
    void tearDown() throws Exception {
        MirrorFixture.deleteTree(dir);
    }

    /** EIO: the leg answers EIO; HANG: it never answers; FLAP: EIO, and it fails again right after it returns. */
    enum Kind { EIO, HANG, FLAP }

    @Test
    void randomizedMirrorDrillsLoseNothing() throws Exception {
        long base = Long.getLong("weft.drill.seed", System.nanoTime());
        int drills = Integer.getInteger("weft.drill.count", 22);
        // Printed first: a failure inside a fault's recover (an await) carries no drill context of its own.
        System.out.println("randomized drills from base seed " + base + " (replay one: -Dweft.drill.seed=SEED "
                + "-Dweft.drill.count=1)");
        List<String> summary = new ArrayList<>();
        int spuriousDrops = 0;
        for (int i = 0; i < drills; i++) {
            long seed = base + i;
            String context = "drill " + i + " seed " + seed + " (re-run with -Dweft.drill.seed=" + seed
                    + " -Dweft.drill.count=1)";
            // SplittableRandom: java.util.Random's first draws are correlated across consecutive seeds.
            SplittableRandom random = new SplittableRandom(seed);
            Kind kind = Kind.values()[(int) ((seed & Long.MAX_VALUE) % Kind.values().length)];
            int legCount = 2 + random.nextInt(2);
            int victim = random.nextInt(legCount);
            boolean async = random.nextInt(4) != 0;
            int region = random.nextBoolean() ? 1 << 20 : 256 << 10;
            ReadPolicy policy = random.nextBoolean() ? ReadPolicy.MIN_INFLIGHT : ReadPolicy.MIN_LATENCY;
            Path legDir = dir.resolve("d" + i);
            java.nio.file.Files.createDirectories(legDir);
            List<FaultyBlockDevice> legs = MirrorFixture.faultyLegs(legDir, legCount, SIZE, async);
            MirrorBlockDevice mirror = new MirrorBlockDevice(new ArrayList<>(legs),
                    WriteIntentBitmap.create(legDir.resolve("wib"), SIZE, region),
                    MirrorOptions.defaults().withLegTimeoutNanos(LEG_TIMEOUT_MILLIS * 1_000_000L).withReadPolicy(policy)
                            .withResyncBytesPerSecond(0));
            try {
                FaultyBlockDevice leg = legs.get(victim);
                DrillFault fault = DrillFault.of("leg" + victim + "-" + kind.name().toLowerCase(),
                        () -> leg.mode(kind == Kind.HANG ? FaultyBlockDevice.Mode.HANG : FaultyBlockDevice.Mode.FAIL),
                        () -> {
                            leg.mode(FaultyBlockDevice.Mode.PASS);
                            returnLeg(mirror, victim);
                            if (kind == Kind.FLAP) {
                                // Fail again while (or just after) it resyncs; the workload's writes notice it.
                                leg.mode(FaultyBlockDevice.Mode.FAIL);
                                await(context + ": leg " + victim + " dropped again", Duration.ofSeconds(10),
                                        () -> mirror.legState(victim) == LegState.FAILED);
                                leg.mode(FaultyBlockDevice.Mode.PASS);
                                returnLeg(mirror, victim);
                            }
                        });
                DrillOptions options = new DrillOptions(seed, 1 + random.nextInt(16), 4096, 65536,
                        random.nextInt(60), SIZE, 60, LEG_TIMEOUT_MILLIS * 3 / 2 + 100 + random.nextInt(100), 60,
                        20_000);
                DrillReport report = new Drill(mirror, mirror, fault, options).run();
                String text = context + "\n" + report.toText();
                // A flapping leg's first resync may report in sync before its second one ends; and on an overloaded
                // machine a healthy asynchronous leg can miss the leg timeout and be dropped (a spurious drop):
                // bring every leg back and let the data checks below decide.
                spuriousDrops += bringEveryLegBack(mirror, text);
                boolean survivorDropped = report.events().stream()
                        .anyMatch(e -> e.event() instanceof DrillEvent.LegDropped d && d.leg() != victim);
                long victimDrops = report.events().stream()
                        .filter(e -> e.event() instanceof DrillEvent.LegDropped d && d.leg() == victim).count();
                boolean unexpectedDrops = survivorDropped || victimDrops > (kind == Kind.FLAP ? 2 : 1);
                assertEquals(0, report.blocksLost(), text);
                assertEquals(0, report.blocksCorrupted(), text);
                assertEquals(0, report.readMismatches(), text);
                assertEquals(0, report.requestsHung(), text);
                if (!survivorDropped) {
                    assertEquals(0, report.writesFailed(), "one leg always survives: " + text);
                }
                if (!survivorDropped) {
                    // With every leg dropped (spuriously, on an overloaded machine) reads fail: nothing to verify.
                    assertEquals(0, report.blocksUnreadable(), text);
                    assertTrue(report.intact(), text);
                }
                assertTrue(report.timeToDetectMillis() >= 0, "leg-dropped event seen: " + text);
                assertTrue(unexpectedDrops || report.timeToResyncMillis() >= 0, "leg back in sync: " + text);
                assertTrue(report.longestStallMillis() < STALL_BOUND_MILLIS, text);
                if (!unexpectedDrops) {
                    assertTrue(report.events().stream().anyMatch(e -> e.event()
                            .equals(new DrillEvent.LegInSync(victim, true))), "names the fault leg: " + text);
                    assertEquals(0, report.regionsDirtyBeforeFault(), "fresh mirror: " + text);
                }
                if (!unexpectedDrops && kind != Kind.FLAP) {
                    // Counted by the drill from its own writes and flushes, independently of the bitmap: only the
                    // regions written while the leg was out, and those of the extents unflushed when it was dropped
                    // (its node may lose them), are copied.
                    assertTrue(report.regionsWrittenWhileOut() >= 1, text);
                    assertTrue(report.regionsWrittenWhileOut() <= report.regionsDirtyAtReturn(), text);
                    assertTrue(report.regionsUnflushedAtDrop() >= 0, text);
                    assertTrue(report.regionsCopied()
                            <= report.regionsWrittenWhileOut() + report.regionsUnflushedAtDrop(), text);
                    assertTrue(report.bytesCopied() >= report.regionsCopied() * region
                            || report.bytesCopied() >= report.regionsCopied() * (long) mirror.info().maxIoSize(), text);
                }
                assertTrue(report.writesAcknowledged() > 0, text);
                assertEquals(SIZE / 4096, report.blocksVerified() + report.blocksUnreadable(), text);
                assertEquals(LegState.IN_SYNC, mirror.legState(victim), text);
                for (int l = 1; l < legCount; l++) {
                    assertEquals(-1, MirrorFixture.firstDifference(legs.get(0).inner(), legs.get(l).inner(), SIZE),
                            "legs 0 and " + l + " identical after resync: " + text);
                }
                summary.add(String.format(java.util.Locale.ROOT,
                        "%-10s %d legs qd%-2d detect %6.1f ms failover %6.1f ms stall %6.1f ms resync %6.1f ms",
                        report.fault(), legCount, options.queueDepth(), report.timeToDetectMillis(),
                        report.timeToFailoverMillis(), report.longestStallMillis(), report.timeToResyncMillis()));
            } finally {
                mirror.close();
            }
        }
        System.out.println("randomized drills (base seed " + base + ", " + spuriousDrops
                + " legs brought back after spurious drops):\n  " + String.join("\n  ", summary));
    }

    /** legReturned, unless a spurious drop of the other legs (overloaded machine) left nothing to copy from. */
    static void returnLeg(MirrorBlockDevice mirror, int leg) {
        try {
            mirror.legReturned(leg);
        } catch (IllegalStateException e) {
            // bringEveryLegBack sorts it out after the drill; the report's events show what happened.
        }
    }

    /** Returns every FAILED leg and waits for its resync; returns how many extra returns that took. */
    static int bringEveryLegBack(MirrorBlockDevice mirror, String context) throws Exception {
        int extra = 0;
        for (int round = 0; round < 5; round++) {
            boolean allInSync = true;
            for (int l = 0; l < MirrorBlockDevice.MAX_LEGS; l++) {
                LegState st = mirror.legState(l);
                if (st == LegState.EMPTY || st == LegState.IN_SYNC) {
                    continue;
                }
                allInSync = false;
                try {
                    if (st == LegState.FAILED) {
                        extra++;
                        mirror.legReturned(l).get(30, java.util.concurrent.TimeUnit.SECONDS);
                    } else {
                        mirror.resyncCompletion(l).get(30, java.util.concurrent.TimeUnit.SECONDS);
                    }
                } catch (java.util.concurrent.ExecutionException | IllegalStateException e) {
                    // Dropped again meanwhile: the next round returns it.
                } catch (java.util.concurrent.TimeoutException e) {
                    throw new AssertionError("leg " + l + " (" + st + ") not back in sync within 30 s: "
                            + mirror.status() + "\n" + context, e);
                }
            }
            if (allInSync) {
                return extra;
            }
        }
        throw new AssertionError("legs not back in sync after 5 rounds: " + mirror.status() + "\n" + context);
    }

    /**
     * A dropped leg also gets the regions of the activity log's unflushed extents (its node may lose what it had not
     * flushed: docs/mirror.md), so the resync copies regions the drill did not write while the leg was out. Here the
     * drill only reads after its prefill (which no FLUSH follows): the leg is dropped with every prefilled extent
     * unflushed, nothing is written while it is out, and the resync copies all 64 regions. The randomized drills hit
     * the same thing whenever the writes while out miss a region of an unflushed extent (seed 23487258083899, drill
     * 0 under load: "resync copied 62 regions", "regions written while out 60").
     */
    @Test
    void aResyncAlsoCopiesTheExtentsUnflushedAtTheDropAndTheDrillCountsThem() throws Exception {
        int region = 256 << 10;
        List<FaultyBlockDevice> legs = MirrorFixture.faultyLegs(dir, 2, SIZE, false);
        MirrorBlockDevice mirror = new MirrorBlockDevice(new ArrayList<>(legs),
                WriteIntentBitmap.inMemory(SIZE, region),
                MirrorOptions.defaults().withLegTimeoutNanos(LEG_TIMEOUT_MILLIS * 1_000_000L)
                        .withResyncBytesPerSecond(0));
        FaultyBlockDevice leg = legs.get(1);
        DrillFault fault = DrillFault.of("leg1-eio", () -> leg.mode(FaultyBlockDevice.Mode.FAIL), () -> {
            leg.mode(FaultyBlockDevice.Mode.PASS);
            returnLeg(mirror, 1);
        });
        try {
            DrillReport report = new Drill(mirror, mirror, fault,
                    new DrillOptions(49, 1, 4096, 4096, 100, SIZE, 0, 100, 30, 20_000)).run();
            String text = report.toText();
            assertTrue(report.intact(), text);
            assertEquals(0, report.regionsDirtyBeforeFault(), text);
            assertEquals(0, report.regionsWrittenWhileOut(), "reads only: " + text);
            assertEquals(SIZE / region, report.regionsCopied(), "every prefilled extent was unflushed: " + text);
            assertEquals(SIZE / region, report.regionsUnflushedAtDrop(), "the drill counts them: " + text);
            assertTrue(report.regionsCopied() <= report.regionsWrittenWhileOut() + report.regionsUnflushedAtDrop(),
                    text);
        } finally {
            mirror.close();
        }
    }

    @Test
    void theVerifierSeesLostWrites() throws Exception {
        BlockDevice store = MirrorFixture.fileLeg(dir, "single", SIZE);
        Forgetful forgetful = new Forgetful(store);
        DrillFault fault = DrillFault.of("forget", () -> forgetful.forget = true, () -> {
            // However loaded the machine, let the fault touch some writes before it ends.
            await("20 forgotten writes", Duration.ofSeconds(20), () -> forgetful.affected.get() >= 20);
            forgetful.forget = false;
        });
        DrillReport report = new Drill(forgetful, null, fault,
                new DrillOptions(42, 4, 4096, 16384, 20, SIZE, 30, 80, 30, 1000)).run();
        try {
            assertTrue(report.blocksLost() > 0 || report.readMismatches() > 0, report.toText());
            assertTrue(!report.intact(), report.toText());
            assertEquals(-1.0, report.timeToDetectMillis(), "no mirror, no detection event");
        } finally {
            store.close();
        }
    }

    @Test
    void theVerifierSeesMisplacedWrites() throws Exception {
        BlockDevice store = MirrorFixture.fileLeg(dir, "single", SIZE);
        Forgetful shifting = new Forgetful(store);
        DrillFault fault = DrillFault.of("shift", () -> shifting.shift = true, () -> {
            await("20 misplaced writes", Duration.ofSeconds(20), () -> shifting.affected.get() >= 20);
            shifting.shift = false;
        });
        DrillReport report = new Drill(shifting, null, fault,
                new DrillOptions(43, 4, 4096, 16384, 20, SIZE - 65536, 30, 80, 30, 1000)).run();
        try {
            assertTrue(report.blocksCorrupted() > 0, report.toText());
        } finally {
            store.close();
        }
    }

    @Test
    void aSecondDrillOnTheSameDeviceIsIntactAndARealCorruptionIsStillSeen() throws Exception {
        BlockDevice store = MirrorFixture.fileLeg(dir, "again", SIZE);
        Forgetful device = new Forgetful(store);
        DrillFault nothing = DrillFault.of("none", () -> { }, () -> { });
        try {
            // Different seeds and working sets: the second drill's generations do not line up with the first's.
            DrillReport first = new Drill(device, null, nothing,
                    new DrillOptions(44, 4, 4096, 16384, 30, SIZE, 30, 60, 30, 1000)).run();
            assertTrue(first.intact(), first.toText());
            DrillReport second = new Drill(device, null, nothing,
                    new DrillOptions(45, 4, 4096, 65536, 30, SIZE / 2, 30, 60, 30, 1000)).run();
            assertTrue(second.intact(), second.toText());
            assertEquals(SIZE / 2 / 4096, second.blocksVerified(), second.toText());

            // After the workload has stopped, one block of the working set is overwritten behind the drill's back.
            DrillFault corruptAtRecover = DrillFault.of("corrupt", () -> { }, () -> device.corruptAfterDrain = 7);
            DrillReport third = new Drill(device, null, corruptAtRecover,
                    new DrillOptions(46, 4, 4096, 16384, 30, SIZE / 4, 30, 60, 30, 1000)).run();
            assertTrue(third.blocksCorrupted() >= 1, third.toText());
            assertTrue(!third.intact(), third.toText());
        } finally {
            store.close();
        }
    }

    @Test
    void aLegThatDoesNotReturnIsNotWaitedForAndHasNoResyncCounts() throws Exception {
        List<FaultyBlockDevice> legs = MirrorFixture.faultyLegs(dir, 2, SIZE, false);
        MirrorBlockDevice mirror = new MirrorBlockDevice(new ArrayList<>(legs),
                WriteIntentBitmap.inMemory(SIZE, 1 << 20),
                MirrorOptions.defaults().withLegTimeoutNanos(LEG_TIMEOUT_MILLIS * 1_000_000L));
        DrillFault gone = new DrillFault() {
            @Override
            public String name() {
                return "leg1-gone";
            }

            @Override
            public void inject() {
                legs.get(1).mode(FaultyBlockDevice.Mode.FAIL);
            }

            @Override
            public void recover() {
            }

            @Override
            public boolean legReturns() {
                return false;
            }
        };
        try {
            DrillReport report = new Drill(mirror, mirror, gone,
                    new DrillOptions(48, 4, 4096, 65536, 30, SIZE / 4, 30, 200, 30, 60_000)).run();
            assertTrue(report.intact(), report.toText());
            assertTrue(report.timeToDetectMillis() >= 0, report.toText());
            assertEquals(-1.0, report.timeToResyncMillis(), report.toText());
            assertEquals(-1, report.regionsCopied(), report.toText());
            assertEquals(-1, report.regionsDirtyAtReturn(), report.toText());
            assertTrue(report.regionsWrittenWhileOut() >= 1, report.toText());
            assertTrue(report.regionsWrittenWhileOut() <= mirror.bitmap().dirtyCount(), report.toText());
        } finally {
            mirror.close();
        }
    }

    @Test
    void severalFailedWritesToOneBlockAreAllInDoubtNotCorrupt() throws Exception {
        BlockDevice store = MirrorFixture.fileLeg(dir, "doubt", SIZE);
        Forgetful device = new Forgetful(store);
        DrillFault failWrites = DrillFault.of("fail-writes", () -> device.failSomeLand = true, () -> {
            await("100 failed writes", Duration.ofSeconds(20), () -> device.affected.get() >= 100);
            device.failSomeLand = false;
        });
        // 64 KiB working set of 16 blocks: every block gets several failed writes, some of which land.
        DrillReport report = new Drill(device, null, failWrites,
                new DrillOptions(47, 4, 4096, 16384, 30, 65536, 30, 80, 30, 1000)).run();
        try {
            assertTrue(report.writesFailed() >= 100, report.toText());
            assertEquals(0, report.blocksCorrupted(), report.toText());
            assertEquals(0, report.blocksLost(), report.toText());
            assertEquals(0, report.readMismatches(), report.toText());
        } finally {
            store.close();
        }
    }

    @Test
    void theReportRendersForPeopleAndScripts() {
        DrillReport r = new DrillReport("leg0-\"hang\"", 7, 130.5, 0.2, 101, 102.25, 40, 1000, 900, 1100, 5000,
                3000, 0, 0, 0, 4096, 0, 0, 0, 0, 2, 30, 27, 3, 29, 31L << 20, 64L << 20, 0, List.of(),
                List.of(new DrillEventAt(101.0, new DrillEvent.LegDropped(0, "no completion within 100 ms", false))));
        String json = r.toJson();
        assertTrue(json.startsWith("{\"fault\":\"leg0-\\\"hang\\\"\",\"seed\":7,\"intact\":true,"), json);
        assertTrue(json.contains("\"longestStallMillis\":130.500"), json);
        assertTrue(json.contains("\"timeToFailoverMillis\":102.250"), json);
        assertTrue(json.contains("\"regionsDirtyAtReturn\":30,\"regionsWrittenWhileOut\":27,"
                + "\"regionsUnflushedAtDrop\":3,\"regionsCopied\":29,\"bytesCopied\":32505856,"), json);
        assertTrue(json.endsWith("\"events\":[\"+101.0 ms leg 0 dropped: no completion within 100 ms\"]}"), json);
        String text = r.toText();
        assertTrue(text.contains("every acknowledged write intact"), text);
        assertTrue(text.contains("longest IO stall              130.5 ms"), text);
        assertTrue(text.contains("1000 / 900 / 1100"), text);
        assertTrue(text.contains("regions dirty before/at return 2 / 30"), text);
        assertTrue(text.contains("resync copied                 29 regions, 31 MiB"), text);
        assertTrue(text.contains("regions unflushed at the drop 3"), text);
        DrillReport older = new DrillReport("kill", 7, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1,
                1, 4096, -1, -1, List.of(), List.of());
        assertEquals(-1, older.regionsUnflushedAtDrop(), "the constructor without the count: not measured");
    }

    /** Jackson writes the report and reads it back: the same JSON again, the events as their text. */
    @Test
    void theJsonReadsBackToTheSameReport() throws Exception {
        DrillReport r = new DrillReport("kill", 9, 12.25, 0.5, -1, 3, Double.NaN, 10, 20, 30, 60, 40, 1, 2, 0, 256, 0,
                0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 0, List.of("leg 1 differs from leg 0 in [0, 4096)"),
                List.of(new DrillEventAt(null, new DrillEvent.FaultInjected("kill")),
                        new DrillEventAt(-2.0, new DrillEvent.ResyncStarted(1, 12, true))));
        String json = r.toJson();
        assertTrue(json.contains("\"timeToResyncMillis\":null,"), "not finite: null, as before: " + json);
        assertTrue(json.contains("\"events\":[\"fault 'kill' injected\",\"-2.0 ms leg 1 resync started: 12 regions"
                + " (full)\"]"), json);
        DrillReport back = DrillReport.fromJson(json);
        assertEquals(json, back.toJson());
        assertTrue(Double.isNaN(back.timeToResyncMillis()), back.toString());
        assertEquals(new DrillEvent.Recorded("-2.0 ms leg 1 resync started: 12 regions (full)"),
                back.events().get(1).event());
        assertEquals(r.toText(), back.toText());
        assertEquals(new com.fasterxml.jackson.databind.ObjectMapper().readTree(json), r.toJsonTree(),
                "the tree is what toJson writes, read back");
    }

    /** Each event type's text is the line the report showed when events were strings (scripts match these). */
    @Test
    void eventsDescribeThemselvesInTheReportsWords() {
        assertEquals("+0.0 ms fault 'cut' injected", new DrillEventAt(0.0, new DrillEvent.FaultInjected("cut")).text());
        assertEquals("+12.3 ms inject returned (took 12.3 ms)",
                new DrillEventAt(12.34, new DrillEvent.InjectReturned(12.34)).text());
        assertEquals("+3000.0 ms recover", new DrillEventAt(3000.0, new DrillEvent.RecoverStarted()).text());
        assertEquals("+101.0 ms leg 0 dropped: timeout (by the fault)",
                new DrillEventAt(101.0, new DrillEvent.LegDropped(0, "timeout", true)).text());
        assertEquals("leg 2 dropped: EIO", new DrillEventAt(null, new DrillEvent.LegDropped(2, "EIO", false)).text());
        assertEquals("+3100.0 ms leg 1 resync started: 7 regions",
                new DrillEventAt(3100.0, new DrillEvent.ResyncStarted(1, 7, false)).text());
        assertEquals("+3200.5 ms leg 1 in sync (dropped by the fault: time to resync)",
                new DrillEventAt(3200.5, new DrillEvent.LegInSync(1, true)).text());
        assertEquals("leg 0 in sync", new DrillEvent.LegInSync(0, false).describe());
        assertEquals("leg 1 resync failed: EIO", new DrillEvent.ResyncFailed(1, "EIO").describe());
        assertEquals("gave up waiting for leg(s) 0, 2 to be back in sync",
                new DrillEvent.ResyncWaitAbandoned("0, 2").describe());
        assertEquals("legs not compared: leg 1 is failed",
                new DrillEvent.LegsNotCompared("leg 1 is failed").describe());
        assertEquals("2 legs byte-identical over [0, 1048576) (1 MiB)",
                new DrillEvent.LegsCompared(new LegComparison.Result(2, 1 << 20, 0, List.of())).describe());
    }

    @Test
    void patternsAreSelfDescribing() {
        ByteBuffer a = Drill.patternFor(5, 9);
        ByteBuffer b = Drill.patternFor(5, 10);
        assertEquals(5, a.getLong(0));
        assertEquals(9, a.getLong(8));
        assertTrue(!a.equals(b));
    }

    /** A device that, when told to, acknowledges writes without doing them, or does them one block too far. */
    static final class Forgetful extends ForwardingBlockDevice {
        volatile boolean forget;
        volatile boolean shift;
        volatile boolean failSomeLand;
        /** When >= 0: every read covering this block sees a garbage word in it (as from a corrupted medium). */
        volatile long corruptAfterDrain = -1;
        final java.util.concurrent.atomic.AtomicLong affected = new java.util.concurrent.atomic.AtomicLong();

        Forgetful(BlockDevice inner) {
            super(inner);
        }

        @Override
        public void submit(IoOp op, long offset, int length, int flags, ByteBuffer buffer, long tag,
                           IoCompletion completion) {
            if (op == IoOp.WRITE && forget) {
                affected.incrementAndGet();
                completion.onComplete(tag, IoStatus.OK);
                return;
            }
            if (op == IoOp.WRITE && failSomeLand) {
                // Every other failed write still reaches the medium: its block may hold any of them.
                boolean lands = affected.incrementAndGet() % 2 == 0;
                if (lands) {
                    delegate.submit(op, offset, length, flags, buffer, tag,
                            (t, st) -> completion.onComplete(t, IoStatus.EIO));
                } else {
                    completion.onComplete(tag, IoStatus.EIO);
                }
                return;
            }
            if (op == IoOp.WRITE && shift) {
                affected.incrementAndGet();
                delegate.submit(op, offset + 4096, length, flags, buffer, tag, completion);
                return;
            }
            long bad = corruptAfterDrain;
            if (op == IoOp.READ && bad >= 0 && offset <= bad * 4096 && bad * 4096 < offset + length) {
                int at = (int) (bad * 4096 - offset);
                delegate.submit(op, offset, length, flags, buffer, tag, (t, st) -> {
                    buffer.putLong(at + 100, 0x0BAD_0BAD_0BAD_0BADL);
                    completion.onComplete(t, st);
                });
                return;
            }
            delegate.submit(op, offset, length, flags, buffer, tag, completion);
        }
    }
}
