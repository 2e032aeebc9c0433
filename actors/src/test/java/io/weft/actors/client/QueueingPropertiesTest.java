package io.weft.actors.client;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.SplittingBlockDevice;
import io.weft.core.mirror.MirrorBlockDevice;
import io.weft.core.mirror.MirrorOptions;
import io.weft.core.mirror.WriteIntentBitmap;
import io.weft.core.stats.IoStats;
import io.weft.testkit.FaultInjectingBlockDevice;
import io.weft.testkit.FaultInjectingBlockDevice.Fault;
import io.weft.testkit.MemoryBlockDevice;
import io.weft.testkit.PropertyRuns;
import io.weft.testkit.RandomIoScenario;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/**
 * Property-based tests of the client's {@link QueueingBlockDevice}, alone over a faulty path and on top of
 * the whole client stack (Queueing &rarr; Splitting &rarr; Mirror &rarr; 2 or 3 faulty legs), with io-timeouts, leg
 * timeouts, force close and caller cancels at random moments: see {@link RandomIoScenario} for what is checked.
 *
 * <p>Replay: a failing try's message starts with "scenario seed N"; run
 * <pre>
 * ./mvnw -B -ntp -o verify -pl actors -am -Dtest='QueueingPropertiesTest' -Dsurefire.failIfNoSpecifiedTests=false \
 *     -DskipITs -Dweft.property.seed=N
 * </pre>
 * or the whole run with {@code -Dweft.property.run-seed=M} (printed at start; see {@link PropertyRuns}).
 * docs/architecture.md, "Buffer ownership", says more.
 */
class QueueingPropertiesTest {
    static final long SIZE = 64 * 4096;
    static final long IO_TIMEOUT = 1_000_000_000L;
    static final long LEG_TIMEOUT = 50_000_000L;

    @TestFactory
    Stream<DynamicTest> theQueueUnderPathFaultsIoTimeoutsAndForceCloseNeverTouchesACompletedBuffer() {
        return PropertyRuns.scenarios("queueing", 400, seed -> {
            FaultInjectingBlockDevice path = new FaultInjectingBlockDevice(
                    new MemoryBlockDevice(MemoryBlockDevice.geometry(SIZE, 1 << 16)), "path");
            QueueingBlockDevice queue = new QueueingBlockDevice(path.info(), 8, IO_TIMEOUT, new IoStats("p"));
            queue.connect(path, path.info());
            new RandomIoScenario(seed, queue, List.of(path),
                    EnumSet.of(Fault.HOLD, Fault.DROP, Fault.FAIL, Fault.DUPLICATE), new RandomIoScenario.Hooks() {
                        @Override
                        public void ioTimeout() {
                            queue.expire(System.nanoTime() + IO_TIMEOUT + 1);
                        }

                        @Override
                        public void forceClose() {
                            queue.forceClose();
                        }
                    }, 8, 6).run(80);
        });
    }

    @TestFactory
    Stream<DynamicTest> theWholeClientStackOverAFaultyMirrorNeverTouchesACompletedBufferAndReadsBackValidWrites() {
        return PropertyRuns.scenarios("client stack", 300, seed -> {
            List<FaultInjectingBlockDevice> legs = new ArrayList<>();
            int n = 2 + new Random(~seed).nextInt(2);
            for (int i = 0; i < n; i++) {
                legs.add(new FaultInjectingBlockDevice(
                        new MemoryBlockDevice(MemoryBlockDevice.geometry(SIZE, 8192)), "leg" + i));
            }
            MirrorBlockDevice mirror = new MirrorBlockDevice(new ArrayList<BlockDevice>(legs),
                    WriteIntentBitmap.inMemory(SIZE, 1 << 16),
                    MirrorOptions.defaults().withLegTimeoutNanos(LEG_TIMEOUT).withWatchdog(false).withMaxInFlight(32));
            SplittingBlockDevice splitting = new SplittingBlockDevice(mirror, 1 << 16, 4, 16);
            QueueingBlockDevice queue = new QueueingBlockDevice(splitting.info(), 8, IO_TIMEOUT, new IoStats("p"));
            queue.connect(splitting, splitting.info());
            try {
                new RandomIoScenario(seed, queue, legs, EnumSet.of(Fault.HOLD, Fault.DROP, Fault.FAIL, Fault.DUPLICATE),
                        new RandomIoScenario.Hooks() {
                            @Override
                            public void ioTimeout() {
                                queue.expire(System.nanoTime() + IO_TIMEOUT + 1);
                            }

                            @Override
                            public void legTimeout() {
                                mirror.checkTimeouts(System.nanoTime() + LEG_TIMEOUT + 1);
                            }

                            @Override
                            public void forceClose() {
                                queue.forceClose();
                            }
                        }, 8, 4).run(80);
            } finally {
                mirror.close();
            }
        });
    }
}
