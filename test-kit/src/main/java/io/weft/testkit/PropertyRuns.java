package io.weft.testkit;

import java.util.Random;
import java.util.function.LongConsumer;
import java.util.stream.LongStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;

/**
 * Runs a randomized property as plain JUnit 5 dynamic tests: {@code tries} scenarios, each named by its own seed,
 * all drawn from one printed run seed. Replay one scenario with {@code -Dweft.property.seed=N} (the seed a failure
 * message and the test's name show), or the whole run with {@code -Dweft.property.run-seed=M} (printed at start).
 */
public final class PropertyRuns {
    private PropertyRuns() {
    }

    public static Stream<DynamicTest> scenarios(String property, int tries, LongConsumer scenario) {
        Long one = Long.getLong("weft.property.seed");
        if (one != null) {
            System.out.printf("property %s: replaying scenario seed %d%n", property, one);
            return Stream.of(DynamicTest.dynamicTest("scenario seed " + one, () -> scenario.accept(one)));
        }
        long runSeed = Long.getLong("weft.property.run-seed", new Random().nextLong());
        System.out.printf("property %s: %d scenarios from run seed %d (replay the run: -Dweft.property.run-seed=%d; "
                + "one scenario: -Dweft.property.seed=N)%n", property, tries, runSeed, runSeed);
        Random seeds = new Random(runSeed);
        return LongStream.generate(seeds::nextLong).limit(tries).boxed()
                .map(seed -> DynamicTest.dynamicTest("scenario seed " + seed, () -> scenario.accept(seed)));
    }
}
