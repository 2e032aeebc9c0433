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
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/**
 * Property-based tests of the fabric-core layers under random faults: each scenario is one {@link RandomIoScenario}
 * built from its seed (see that class for what is checked), run as a JUnit dynamic test by {@link PropertyRuns}.
 *
 * <p>Seeds and replay: the run prints its run seed; a failing scenario's name and message carry its own seed
 * ("scenario seed N"). Replay that one scenario:
 * <pre>
 * ./mvnw -B -ntp -o verify -pl test-kit -am -Dtest='LayerPropertiesTest' -Dsurefire.failIfNoSpecifiedTests=false \
 *     -Dweft.property.seed=N
 * </pre>
 * or the whole run with {@code -Dweft.property.run-seed=M}. Scenario counts are bounded so each property runs in a
 * few seconds on the 2-core CI machine.
 */
class LayerPropertiesTest {
    static final long SIZE = 64 * 4096;
    static final long LEG_TIMEOUT = 50_000_000L;

    @TestFactory
    Stream<DynamicTest> splitRequestsUnderFaultsReadBackAValidWriteAndNeverTouchACompletedBuffer() {
        return PropertyRuns.scenarios("splitting", 500, seed -> {
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
        });
    }

    @TestFactory
    Stream<DynamicTest> aMirrorUnderLegFaultsAndLegTimeoutsReadsBackAValidWriteAndNeverTouchesACompletedBuffer() {
        return PropertyRuns.scenarios("mirror", 400, seed -> {
            MirrorSetup m = new MirrorSetup(seed, 64);
            try {
                new RandomIoScenario(seed, m.mirror, m.legs,
                        EnumSet.of(Fault.HOLD, Fault.DROP, Fault.FAIL, Fault.DUPLICATE), m.hooks(), 4, 6).run(80);
            } finally {
                m.mirror.close();
            }
        });
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
