package io.weft.actors.drill.harness;

import io.weft.core.io.BlockDevice;
import io.weft.core.mirror.LegState;
import io.weft.core.mirror.MirrorBlockDevice;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * A verifying workload over any {@link BlockDevice} that runs while a {@link DrillFault} happens, then reports stall,
 * detection, failover and resync times, IOPS per phase and whether every acknowledged write reads back intact.
 *
 * <p>This class is the drill's control thread: it walks the phases and builds the {@link DrillReport}. Its parts,
 * one job each: {@link DrillWorkload} drives the IO on its own thread; {@link BlockPatternVerifier} holds the model of
 * what each block should contain and checks it; {@link DrillTimeline} records the fault, the mirror's leg events and
 * which legs the fault dropped; {@link ResyncAccounting} counts what the resync should copy.
 *
 * <p>Phases: prefill → before (baseline) → {@code fault.inject()} → during → {@code fault.recover()} → wait for the
 * mirror's leg-in-sync events of every leg the fault dropped (dropped between the inject and the end of recovery)
 * → after → drain → read back the whole working set → compare the legs block by block (with a {@link LegComparator}:
 * each leg read directly, once every leg is in sync) over {@link #legCompareLength} bytes: any difference is a data
 * problem, as a lost write is.
 */
public final class Drill {
    private static final int BLOCK = DrillOptions.BLOCK;
    /** The legs are compared over at least this much of the device (all of it when smaller): 64 MiB. */
    public static final long LEG_COMPARE_MIN_BYTES = 64L << 20;

    private final BlockDevice device;
    private final MirrorBlockDevice mirror;
    private final DrillFault fault;
    private final DrillOptions options;
    private final LegComparator legComparator;
    private final BlockPatternVerifier verifier;
    private final DrillTimeline timeline;
    private final ResyncAccounting accounting;
    private final DrillWorkload workload;
    private long regionsDirtyBeforeFault = -1;
    private volatile Phase phase = Phase.STARTING;
    private volatile boolean cancelled;

    /** Where a running drill is, for a status page or progress bar on another thread. */
    public enum Phase {
        /** Constructed, {@link #run()} not yet called. */
        STARTING,
        /** Writing a known generation over the whole working set. */
        PREFILL,
        /** Baseline workload before the fault. */
        BEFORE,
        /** Fault injected; workload runs through it. */
        DURING,
        /** {@code fault.recover()} is running. */
        RECOVERING,
        /** Waiting for the dropped leg to be back in sync. */
        RESYNC,
        /** Workload after recovery. */
        AFTER,
        /** Draining and reading the whole working set back. */
        VERIFYING,
        /** {@link #run()} returned a report. */
        DONE,
        /** {@link #run()} threw. */
        FAILED
    }

    /**
     * @param device  the device under test (its working set is overwritten)
     * @param mirror  the mirror whose leg events time detection and resync, or null for a plain device
     * @param fault   what to break and how to undo it
     * @param options workload and phases
     */
    public Drill(BlockDevice device, MirrorBlockDevice mirror, DrillFault fault, DrillOptions options) {
        this(device, mirror, fault, options, null);
    }

    /**
     * @param legs compares the legs once the drill has verified the data (null: the device has no legs to compare)
     */
    public Drill(BlockDevice device, MirrorBlockDevice mirror, DrillFault fault, DrillOptions options,
                 LegComparator legs) {
        if (options.workingSetBytes() > device.info().size()) {
            throw new IllegalArgumentException("working set " + options.workingSetBytes() + " exceeds device size "
                    + device.info().size());
        }
        if (options.maxIoBytes() > device.info().maxIoSize()) {
            throw new IllegalArgumentException("max IO " + options.maxIoBytes() + " exceeds the device's "
                    + device.info().maxIoSize());
        }
        this.device = device;
        this.mirror = mirror;
        this.fault = fault;
        this.options = options;
        this.legComparator = legs;
        this.verifier = new BlockPatternVerifier(options.workingSetBytes());
        this.timeline = new DrillTimeline(mirror);
        this.accounting = new ResyncAccounting(mirror, options.workingSetBytes(), timeline);
        this.workload = new DrillWorkload(device, options, verifier, timeline, accounting);
    }

    /** The current phase; safe from any thread. */
    public Phase phase() {
        return phase;
    }

    /** {@link System#nanoTime()} when the fault was injected; 0 before. */
    public long faultNanos() {
        return timeline.faultNanos();
    }

    /** {@link System#nanoTime()} when recovery began (the fault undone); 0 before. */
    public long recoverNanos() {
        return timeline.recoverNanos();
    }

    /** Requests completed so far (any status); safe from any thread, lags the driver by at most a few requests. */
    public long completedRequests() {
        return workload.completedRequests();
    }

    /**
     * Cuts the remaining phases short (shutdown of whoever runs the drill): the phase waits end at once, so
     * {@code fault.recover()} runs promptly and the report covers what ran. Safe from any thread.
     */
    public void cancel() {
        cancelled = true;
    }

    /** Runs the drill (blocking, on the caller's thread as the control thread) and returns its report. */
    public DrillReport run() throws Exception {
        try {
            DrillReport report = runPhases();
            phase = Phase.DONE;
            return report;
        } catch (Exception | Error e) {
            phase = Phase.FAILED;
            throw e;
        }
    }

    private DrillReport runPhases() throws Exception {
        if (mirror != null) {
            mirror.addListener(timeline);
        }
        Thread thread = new Thread(workload, "weft-drill-driver");
        thread.setDaemon(true);
        try {
            fault.prepare();
            phase = Phase.PREFILL;
            thread.start();
            while (!workload.prefilled && thread.isAlive() && !cancelled) {
                LockSupport.parkNanos(1_000_000);
            }
            if (!workload.prefilled) {
                workload.running = false;
                thread.join(TimeUnit.SECONDS.toMillis(15));
                throw new IllegalStateException(cancelled ? "drill cancelled during prefill"
                        : "prefill of the working set failed", workload.failure);
            }
            phase = Phase.BEFORE;
            sleepMillis(options.beforeMillis());

            if (mirror != null) {
                regionsDirtyBeforeFault = mirror.bitmap().dirtyCount();
            }
            long faultNanos = System.nanoTime();
            timeline.faultInjected(faultNanos, fault.name());
            workload.enter(DrillWorkload.DURING, faultNanos);
            phase = Phase.DURING;
            fault.inject();
            long injected = System.nanoTime();
            if (injected - faultNanos > 10_000_000L) {
                timeline.add(injected, new DrillEvent.InjectReturned(nanosToMillis(injected - faultNanos)));
            }
            sleepMillis(options.duringMillis());

            long recoverNanos = System.nanoTime();
            timeline.recoverStarted(recoverNanos);
            workload.enter(DrillWorkload.RECOVERING, recoverNanos);
            phase = Phase.RECOVERING;
            fault.recover();
            timeline.recoveryReturned();
            long inSync = 0;
            if (mirror != null && timeline.firstDropNanos() != 0 && fault.legReturns()) {
                phase = Phase.RESYNC;
                inSync = awaitFaultLegsBack(recoverNanos, thread);
            }
            workload.enter(DrillWorkload.AFTER, System.nanoTime());
            phase = Phase.AFTER;
            sleepMillis(options.afterMillis());
            phase = Phase.VERIFYING;
            workload.phaseEnd = System.nanoTime();
            workload.running = false;
            thread.join(TimeUnit.SECONDS.toMillis(15));
            if (workload.failure != null) {
                throw new IllegalStateException("drill driver failed", workload.failure);
            }
            long hung = workload.inFlightAtEnd;
            long[] check = verifier.verifyAll(device, options.maxIoBytes());
            LegComparison.Result legs = compareLegs();
            return report(check, legs, hung, faultNanos, recoverNanos, inSync);
        } finally {
            workload.running = false;
            if (mirror != null) {
                mirror.removeListener(timeline);
            }
        }
    }

    /** Waits up to the resync timeout for every fault leg to be back in sync: when the last came back, or 0. */
    private long awaitFaultLegsBack(long recoverNanos, Thread workloadThread) {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(options.resyncTimeoutMillis());
        long back;
        while ((back = timeline.allFaultLegsBackAfter(recoverNanos)) == 0 && System.nanoTime() < deadline
                && workloadThread.isAlive() && !cancelled) {
            LockSupport.parkNanos(1_000_000);
        }
        if (back == 0) {
            timeline.add(new DrillEvent.ResyncWaitAbandoned(timeline.pendingLegs()));
        }
        return back;
    }

    private DrillReport report(long[] check, LegComparison.Result legs, long hung, long faultNanos,
                               long recoverNanos, long inSync) {
        double before = nanosToMillis(workload.maxLatency[DrillWorkload.BEFORE]);
        double stall = 0;
        for (long l : workload.maxLatency) {
            stall = Math.max(stall, nanosToMillis(l));
        }
        long drop = timeline.firstDropNanos();
        long[] resync = timeline.resyncCounts();
        return new DrillReport(fault.name(), options.seed(), stall, before,
                drop == 0 ? -1 : nanosToMillis(drop - faultNanos),
                workload.failoverNanos == 0 ? -1 : nanosToMillis(workload.failoverNanos - faultNanos),
                inSync == 0 ? -1 : nanosToMillis(inSync - recoverNanos),
                workload.iops(DrillWorkload.BEFORE), workload.iops(DrillWorkload.DURING),
                workload.iops(DrillWorkload.AFTER),
                workload.completed, workload.writesOk, workload.writesFailed, workload.readsFailed,
                workload.readMismatches, check[BlockPatternVerifier.VERIFIED], check[BlockPatternVerifier.LOST],
                check[BlockPatternVerifier.CORRUPTED], check[BlockPatternVerifier.UNREADABLE], hung,
                regionsDirtyBeforeFault, resync[0], accounting.regionsWrittenWhileOut(),
                accounting.regionsUnflushedAtDrop(), resync[1], resync[2],
                legs == null ? -1 : legs.bytesCompared(), legs == null ? -1 : legs.differingBytes(),
                legs == null ? List.of() : legs.regions().stream().map(Object::toString).toList(),
                timeline.events());
    }

    /** Bytes of the device the legs are compared over: the working set, at least 64 MiB, at most the device. */
    public long legCompareLength() {
        long size = device.info().size() / BLOCK * BLOCK;
        return Math.min(size, Math.max(options.workingSetBytes(), LEG_COMPARE_MIN_BYTES));
    }

    /**
     * Once every leg is in sync (waited for up to the resync timeout), compares them block by block. Null, with an
     * event saying why, when there is nothing to compare or the legs cannot be compared (a leg still out, a read
     * failing): the report then has -1 for the comparison, which is not in itself a data problem.
     */
    private LegComparison.Result compareLegs() {
        if (legComparator == null) {
            return null;
        }
        if (mirror != null) {
            if (!fault.legReturns()) {
                timeline.add(new DrillEvent.LegsNotCompared("the fault's leg does not return"));
                return null;
            }
            long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(options.resyncTimeoutMillis());
            String out;
            while ((out = legsNotInSync()) != null && System.nanoTime() < deadline && !cancelled) {
                LockSupport.parkNanos(1_000_000);
            }
            if (out != null) {
                timeline.add(new DrillEvent.LegsNotCompared(out));
                return null;
            }
        }
        long length = legCompareLength();
        try {
            LegComparison.Result r = legComparator.compare(length);
            timeline.add(new DrillEvent.LegsCompared(r));
            return r;
        } catch (Exception | Error e) {
            timeline.add(new DrillEvent.LegsNotCompared(e.getMessage()));
            return null;
        }
    }

    /** Why the mirror's legs are not all in sync now (a leg out, a resync running), or null when they are. */
    private String legsNotInSync() {
        for (int leg = 0; leg < MirrorBlockDevice.MAX_LEGS; leg++) {
            LegState state = mirror.legState(leg);
            if (state != LegState.IN_SYNC && state != LegState.EMPTY) {
                return "leg " + leg + " is " + state.name().toLowerCase(Locale.ROOT);
            }
        }
        return mirror.progress().running() ? "a resync is running" : null;
    }

    private static double nanosToMillis(long nanos) {
        return nanos / 1e6;
    }

    private void sleepMillis(long millis) {
        // Phase length, not synchronisation: the workload runs on its own thread meanwhile.
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(millis);
        long left;
        while ((left = deadline - System.nanoTime()) > 0 && !cancelled) {
            LockSupport.parkNanos(Math.min(left, 50_000_000L));
        }
    }

    /** For tests and tools: the expected content of {@code block} written by generation {@code gen}. */
    public static ByteBuffer patternFor(long block, long gen) {
        return BlockPatternVerifier.patternFor(block, gen);
    }

    /** Lists the drill's options for people (one line). */
    public String describe() {
        List<String> parts = new ArrayList<>();
        parts.add("qd " + options.queueDepth());
        parts.add(options.minIoBytes() / 1024 + "-" + options.maxIoBytes() / 1024 + " KiB");
        parts.add(options.readPercent() + "% reads");
        parts.add((options.workingSetBytes() >> 20) + " MiB");
        return String.join(", ", parts);
    }
}
