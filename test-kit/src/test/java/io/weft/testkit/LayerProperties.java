package io.weft.testkit;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.SplittingBlockDevice;
import io.weft.core.mirror.MirrorBlockDevice;
import io.weft.core.mirror.MirrorOptions;
import io.weft.core.mirror.WriteIntentBitmap;
import io.weft.testkit.FaultInjectingBlockDevice.Fault;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Random;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.ShrinkingMode;

/**
 * Property-based tests (jqwik) of the fabric-core layers under random faults: each try is one
 * {@link RandomIoScenario} built from the {@code @ForAll long} scenario seed (see that class for what is checked).
 *
 * <p>Seeds and replay. jqwik prints, after every property, a report with its own {@code seed}; a failing try's
 * message starts with "scenario seed N (replay: -Dweft.property.seed=N)". To replay exactly that scenario:
 * <pre>
 * ./mvnw -B -ntp -o verify -pl test-kit -am -Dtest='LayerProperties' -Dsurefire.failIfNoSpecifiedTests=false \
 *     -Dweft.property.seed=N
 * </pre>
 * (every try then runs scenario N). To replay the whole run instead, put jqwik's reported seed into the
 * annotation: {@code @Property(seed = "...")}; jqwik also re-runs the last failing seed first by default
 * (its {@code .jqwik-database} file in the module directory). Shrinking is off: a seed's scenario is not
 * "smaller" for a smaller seed, and the reported seed is then the one that failed.
 *
 * <p>Tries are bounded so each property runs in a few seconds on the 2-core CI machine.
 */
class LayerProperties {
    static final long SIZE = 64 * 4096;
    static final long LEG_TIMEOUT = 50_000_000L;

    static long scenarioSeed(long generated) {
        return Long.getLong("weft.property.seed", generated);
    }

    @Property(tries = 200, shrinking = ShrinkingMode.OFF)
    void splitRequestsUnderFaultsReadBackAValidWriteAndNeverTouchACompletedBuffer(@ForAll long generated) {
        long seed = scenarioSeed(generated);
        FaultInjectingBlockDevice inner = new FaultInjectingBlockDevice(
                new MemoryBlockDevice(MemoryBlockDevice.geometry(SIZE, 8192)), "inner");
        SplittingBlockDevice splitting = new SplittingBlockDevice(inner, 1 << 16, 4, 16);
        // No DUPLICATE: the splitter relies on exactly-once completions of its parts (the contract).
        RandomIoScenario scenario = new RandomIoScenario(seed, splitting, List.of(inner),
                EnumSet.of(Fault.HOLD, Fault.DROP, Fault.FAIL), new RandomIoScenario.Hooks() {
                    @Override
                    public void forceClose() {
                        splitting.close();
                    }
                }, 8, 4);
        scenario.run(80);
    }

    @Property(tries = 120, shrinking = ShrinkingMode.OFF)
    void aMirrorUnderLegFaultsAndLegTimeoutsReadsBackAValidWriteAndNeverTouchesACompletedBuffer(
            @ForAll long generated) {
        long seed = scenarioSeed(generated);
        MirrorSetup m = new MirrorSetup(seed, 64);
        try {
            new RandomIoScenario(seed, m.mirror, m.legs,
                    EnumSet.of(Fault.HOLD, Fault.DROP, Fault.FAIL, Fault.DUPLICATE), m.hooks(), 4, 6).run(80);
        } finally {
            m.mirror.close();
        }
    }

    /** A mirror of 2 or 3 (chosen by the seed) fault-injecting legs over in-memory stores; no watchdog thread. */
    static final class MirrorSetup {
        final List<FaultInjectingBlockDevice> legs = new ArrayList<>();
        final MirrorBlockDevice mirror;

        MirrorSetup(long seed, int maxIoBlocks) {
            int n = 2 + new Random(~seed).nextInt(2);
            for (int i = 0; i < n; i++) {
                legs.add(new FaultInjectingBlockDevice(
                        new MemoryBlockDevice(MemoryBlockDevice.geometry(SIZE, maxIoBlocks * 4096)), "leg" + i));
            }
            mirror = new MirrorBlockDevice(new ArrayList<BlockDevice>(legs), WriteIntentBitmap.inMemory(SIZE, 1 << 16),
                    MirrorOptions.defaults().withLegTimeoutNanos(LEG_TIMEOUT).withWatchdog(false)
                            .withMaxInFlight(32));
        }

        RandomIoScenario.Hooks hooks() {
            return new RandomIoScenario.Hooks() {
                @Override
                public void legTimeout() {
                    mirror.checkTimeouts(System.nanoTime() + LEG_TIMEOUT + 1);
                }

                @Override
                public void forceClose() {
                    mirror.close();
                }
            };
        }
    }
}
