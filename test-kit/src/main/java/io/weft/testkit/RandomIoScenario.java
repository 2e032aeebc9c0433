package io.weft.testkit;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.testkit.FaultInjectingBlockDevice.CancelAnswer;
import io.weft.testkit.FaultInjectingBlockDevice.Fault;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

/**
 * One random run against a device stack: READ/WRITE/FLUSH/DISCARD/WRITE_ZEROES at random offsets and lengths, several
 * in flight, while the {@link FaultInjectingBlockDevice}s in the stack hold, reorder, drop, duplicate and fail
 * completions, and the stack's own timers (io-timeout, leg timeout), a force close and the caller's cancels fire at
 * random moments. Everything runs on the calling thread and is decided by one {@link Random} seeded with
 * {@code seed}, so a seed replays the run exactly.
 *
 * <p>Checked: every READ that completes OK returns, block by block, what {@link BlockModel} allows (the last
 * acknowledged write or a concurrent or failed one); no buffer is written after its completion
 * ({@link OwnershipChecker} poisons it then); every request completes exactly once, and all of them have completed
 * once the faults are lifted and the held answers delivered. A failure throws an {@link AssertionError} that names
 * the seed.
 */
public final class RandomIoScenario {

    /** The stack's timers and shutdown, as the owner of the device would drive them. Each may do nothing. */
    public interface Hooks {
        /** Everything in flight is older than the io-timeout now (e.g. {@code QueueingBlockDevice.expire}). */
        default void ioTimeout() {
        }

        /** Every leg part is older than the leg timeout now (e.g. {@code MirrorBlockDevice.checkTimeouts}). */
        default void legTimeout() {
        }

        /** Force close / unmap (the device refuses new IO afterwards). */
        default void forceClose() {
        }
    }

    private final long seed;
    private final Random random;
    private final BlockDevice device;
    private final List<FaultInjectingBlockDevice> faultPoints;
    private final Set<Fault> faults;
    private final Hooks hooks;
    private final int blockSize;
    private final int blocks;
    private final int maxBlocksPerIo;
    private final int maxInFlight;
    private final BlockModel model;
    private final OwnershipChecker checker;
    private final List<String> problems = new ArrayList<>();
    private final Map<Long, Long> writeIdOf = new HashMap<>();
    private final Map<Long, Long> readStartOf = new HashMap<>();
    private final List<String> log = new ArrayList<>();
    private boolean closed;

    /**
     * @param faultPoints    the fault injectors inside {@code device}'s stack
     * @param faults         the faults they may inject ({@link Fault#PASS} is always possible)
     * @param maxBlocksPerIo longest request in blocks
     */
    public RandomIoScenario(long seed, BlockDevice device, List<FaultInjectingBlockDevice> faultPoints,
                            Set<Fault> faults, Hooks hooks, int maxBlocksPerIo, int maxInFlight) {
        this.seed = seed;
        this.random = new Random(seed);
        this.device = device;
        this.faultPoints = faultPoints;
        this.faults = EnumSet.copyOf(faults);
        this.faults.remove(Fault.DELAY); // real time would make a seed not replay
        this.hooks = hooks;
        this.blockSize = device.info().preferredBlockSize();
        this.blocks = (int) (device.info().size() / blockSize);
        this.maxBlocksPerIo = maxBlocksPerIo;
        this.maxInFlight = maxInFlight;
        this.model = new BlockModel(blockSize, blocks);
        this.checker = new OwnershipChecker(this::onDone);
    }

    /** A run that takes longer than this is stuck (a submit waiting for a resource a leaked request holds). */
    public static final long STUCK_AFTER_MILLIS = 60_000;

    /**
     * Runs {@code steps} random steps, then lifts the faults and waits out every request; throws on a problem. The
     * run is on a daemon thread of its own, so a stuck one (a layer that leaks its resources can make a submit wait
     * forever) fails after {@link #STUCK_AFTER_MILLIS} instead of hanging the build.
     */
    public void run(int steps) {
        Throwable[] failure = new Throwable[1];
        Thread runner = new Thread(() -> {
            try {
                runHere(steps);
            } catch (Throwable t) {
                failure[0] = t;
            }
        }, "weft-scenario-" + seed);
        runner.setDaemon(true);
        runner.start();
        try {
            runner.join(STUCK_AFTER_MILLIS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted", e);
        }
        if (runner.isAlive()) {
            StackTraceElement[] where = runner.getStackTrace();
            throw new AssertionError("scenario seed " + seed + " (replay: -Dweft.property.seed=" + seed + ") is stuck"
                    + " after " + STUCK_AFTER_MILLIS + " ms in " + (where.length > 0 ? where[0] : "?")
                    + (where.length > 4 ? " / " + where[1] + " / " + where[2] + " / " + where[3] : ""));
        }
        if (failure[0] instanceof AssertionError a) {
            throw a;
        }
        if (failure[0] != null) {
            throw new AssertionError(failure[0]);
        }
    }

    private void runHere(int steps) {
        try {
            CancelAnswer answer = random.nextInt(5) == 0 ? CancelAnswer.IGNORE : CancelAnswer.ANSWER;
            for (FaultInjectingBlockDevice f : faultPoints) {
                f.cancelAnswer(answer);
            }
            for (int step = 0; step < steps; step++) {
                step();
            }
            settle();
        } catch (RuntimeException | AssertionError e) {
            throw new AssertionError(failure("threw " + e), e);
        }
        List<String> all = new ArrayList<>(problems);
        all.addAll(checker.violations());
        for (OwnershipChecker.Tracked t : checker.outstanding()) {
            all.add(t + " never completed");
        }
        if (!all.isEmpty()) {
            throw new AssertionError(failure(String.join("\n  ", all)));
        }
    }

    private String failure(String what) {
        int from = Math.max(0, log.size() - 40);
        return "scenario seed " + seed + " (replay: -Dweft.property.seed=" + seed + "):\n  " + what
                + "\n last steps:\n    " + String.join("\n    ", log.subList(from, log.size()));
    }

    private void step() {
        int roll = random.nextInt(100);
        if (roll < 55) {
            if (checker.outstanding().size() < maxInFlight) {
                submitRandom();
            }
        } else if (roll < 80) {
            FaultInjectingBlockDevice f = pick();
            if (f != null && f.releaseOne(random)) {
                log.add("release one held at " + f);
            }
        } else if (roll < 84) {
            FaultInjectingBlockDevice f = pick();
            if (f != null && f.answerDropped() > 0) {
                log.add("late answers of dropped requests at " + f);
            }
        } else if (roll < 89) {
            log.add("io-timeout");
            hooks.ioTimeout();
        } else if (roll < 94) {
            log.add("leg timeout");
            hooks.legTimeout();
        } else if (roll < 99) {
            List<OwnershipChecker.Tracked> out = checker.outstanding();
            if (!out.isEmpty()) {
                OwnershipChecker.Tracked t = out.get(random.nextInt(out.size()));
                log.add("caller cancels " + t);
                device.cancel(t.id, checker);
            }
        } else if (!closed && random.nextInt(4) == 0) {
            log.add("force close");
            closed = true;
            hooks.forceClose();
        }
    }

    private FaultInjectingBlockDevice pick() {
        return faultPoints.isEmpty() ? null : faultPoints.get(random.nextInt(faultPoints.size()));
    }

    private Fault randomFault() {
        int roll = random.nextInt(100);
        Fault f = roll < 55 ? Fault.PASS : roll < 75 ? Fault.HOLD : roll < 83 ? Fault.DROP
                : roll < 91 ? Fault.FAIL : Fault.DUPLICATE;
        return faults.contains(f) ? f : Fault.PASS;
    }

    private void submitRandom() {
        int roll = random.nextInt(100);
        IoOp op = roll < 40 ? IoOp.READ : roll < 80 ? IoOp.WRITE : roll < 88 ? IoOp.FLUSH
                : roll < 94 ? IoOp.DISCARD : IoOp.WRITE_ZEROES;
        int count = 1 + random.nextInt(Math.min(maxBlocksPerIo, blocks));
        int first = random.nextInt(blocks - count + 1);
        long offset = (long) first * blockSize;
        int length = count * blockSize;
        if (op == IoOp.FLUSH) {
            offset = 0;
            length = 0;
        }
        ByteBuffer buffer = op == IoOp.READ || op == IoOp.WRITE ? ByteBuffer.allocate(length) : null;
        StringBuilder faultsNow = new StringBuilder();
        for (FaultInjectingBlockDevice f : faultPoints) {
            Fault fault = randomFault();
            f.defaultFault(fault);
            faultsNow.append(' ').append(f).append('=').append(fault);
        }
        OwnershipChecker.Tracked t = checker.track(op, offset, length, buffer);
        if (op == IoOp.READ) {
            readStartOf.put(t.id, model.now());
        } else if (op != IoOp.FLUSH) {
            writeIdOf.put(t.id, model.beginWrite(offset, length, op != IoOp.WRITE, buffer));
        }
        log.add("submit " + t + faultsNow);
        device.submit(op, offset, length, 0, buffer, t.id, checker);
        for (FaultInjectingBlockDevice f : faultPoints) {
            f.defaultFault(Fault.PASS); // retries and late resubmissions go through
        }
    }

    private void onDone(OwnershipChecker.Tracked t) {
        log.add("completed " + t + " " + IoStatus.name(t.status()));
        Long writeId = writeIdOf.get(t.id);
        if (writeId != null) {
            model.completed(writeId, t.status() == IoStatus.OK);
        }
        Long start = readStartOf.get(t.id);
        if (start != null && t.status() == IoStatus.OK) {
            String problem = model.checkRead(t.offset, t.returned(), start);
            if (problem != null) {
                problems.add(t + ": " + problem);
            }
        }
    }

    /** Lifts the faults and delivers everything held or dropped until every request has completed (bounded). */
    private void settle() {
        for (FaultInjectingBlockDevice f : faultPoints) {
            f.defaultFault(Fault.PASS).cancelAnswer(CancelAnswer.ANSWER);
        }
        for (int round = 0; round < 100 && !checker.outstanding().isEmpty(); round++) {
            log.add("settle round " + round);
            for (FaultInjectingBlockDevice f : faultPoints) {
                f.releaseAll();
                f.answerDropped();
            }
            hooks.legTimeout();
            hooks.ioTimeout();
        }
    }

    public OwnershipChecker checker() {
        return checker;
    }
}
