package io.weft.actors.drill;

import com.fasterxml.jackson.databind.JsonNode;
import io.weft.actors.NodeServices;
import io.weft.actors.NodeState;
import io.weft.actors.WeftSettings;
import io.weft.actors.cluster.ClusterDirectory;
import io.weft.actors.protocol.DescribeProcess;
import io.weft.actors.protocol.ProcessInfo;
import io.weft.actors.protocol.SessionCommand;
import io.weft.actors.protocol.StorageServiceCommand;
import io.weft.actors.drill.harness.Drill;
import io.weft.actors.drill.harness.DrillOptions;
import io.weft.actors.drill.harness.DrillReport;
import io.weft.actors.drill.harness.LegComparison;
import io.weft.core.io.BlockDevice;
import io.weft.core.mirror.MirrorOptions;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.PostStop;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;

/**
 * Runs drills on this (client) node: a verifying {@link Drill} workload over a mapped device while a
 * {@link NodeFault} kills, freezes or cuts one of the device's storage nodes (docs/drills.md). One per node with the
 * client role, spawned by {@code NodeGuardian} as {@code drills}.
 *
 * <p>It validates a request (the device is mapped here and idle, the target holds one of its legs, a kill or freeze
 * target runs on this host), answers at once, and runs each drill on its own thread (the workload blocks; it never
 * runs on a dispatcher thread). The thread tells this actor when the drill ends; meanwhile status queries read the
 * drill's phase and request count from the {@link Drill} itself. The last {@value #KEEP} drills are kept.
 *
 * <p>What it checks before it starts a drill is {@link DrillAdmission}; a kill of a single-backend device's storage
 * node recovers through {@link AwaitReconnect}; the workload itself is {@code io.weft.actors.drill.harness}.
 *
 * <p>Supervision (applied by {@code NodeGuardian}): resumed on failure, because its state is the drills it is running
 * (their threads and faults) which a restart would orphan. When it stops (node shutdown) every running drill is
 * cancelled and its fault closed, so no node is left stopped or cut off.
 */
public final class DrillService extends AbstractBehavior<DrillService.Command> {
    /** Drills kept for {@code GET /weft/drills}. */
    public static final int KEEP = 20;
    /** Bound of one leg read while comparing legs (1 MiB or less on an idle device). */
    static final long COMPARE_READ_TIMEOUT_MILLIS = 10_000;

    public interface Command {
    }

    /** Starts a drill; answered with {@link Started} or {@link Refused} once it is running or cannot run. */
    public record Start(DrillRequest request, ActorRef<StartReply> replyTo) implements Command {
    }

    public sealed interface StartReply permits Started, Refused {
    }

    public record Started(DrillStatus status) implements StartReply {
    }

    /** @param httpStatus 400 bad request, 404 no such device, 409 conflict (busy, not on this host, ...) */
    public record Refused(int httpStatus, String message) implements StartReply, CompareReply {
    }

    /**
     * Compares the legs of a mirrored device block by block (each leg read directly) over {@code [0, length)}:
     * {@code length} 0 = the drill's default (64 MiB, or the whole device when smaller), -1 = the whole device.
     * Answered with {@link Compared}, or {@link Refused} when the device is not mirrored, has a leg out of sync or a
     * drill running.
     */
    public record CompareLegs(String device, long length, ActorRef<CompareReply> replyTo) implements Command {
    }

    public sealed interface CompareReply permits Compared, Refused {
    }

    public record Compared(String device, LegComparison.Result result) implements CompareReply {
        /** The JSON body of {@code POST /weft/devices/{id}/compare-legs}. */
        public Map<String, Object> toMap() {
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("device", device);
            out.put("legs", result.legs());
            out.put("bytesCompared", result.bytesCompared());
            out.put("identical", result.identical());
            out.put("differingBytes", result.differingBytes());
            out.put("regions", result.regions().stream().map(r -> Map.of("leg", r.leg(), "offset", r.offset(),
                    "length", r.length())).toList());
            out.put("text", result.describe());
            return out;
        }
    }

    /** Every kept drill, oldest first. */
    public record ListDrills(ActorRef<List<DrillStatus>> replyTo) implements Command {
    }

    public record GetDrill(String id, ActorRef<Optional<DrillStatus>> replyTo) implements Command {
    }

    private record TargetFound(String id, Set<ActorRef<StorageServiceCommand>> refs, Throwable failure)
            implements Command {
    }

    private record TargetDescribed(String id, ProcessInfo info, Throwable failure)
            implements Command {
    }

    private record Finished(String id, DrillReport report, Throwable failure) implements Command {
    }

    public static Behavior<Command> create(WeftSettings settings, NodeState nodeState) {
        return Behaviors.setup(ctx -> new DrillService(ctx, settings, nodeState));
    }

    /** One drill, confined to this actor except the {@link Drill}'s own thread-safe getters. */
    private static final class Run {
        final String id;
        final DrillRequest request;
        final long startNanos = System.nanoTime();
        final long startedAtMillis = System.currentTimeMillis();
        ActorRef<StartReply> pendingReply;
        Drill drill;
        NodeFault fault;
        Thread thread;
        long endNanos;
        String endPhase;
        String error = "";
        JsonNode report;
        String reportText = "";

        Run(String id, DrillRequest request) {
            this.id = id;
            this.request = request;
        }

        boolean ended() {
            return endPhase != null;
        }
    }

    private final WeftSettings settings;
    private final NodeState nodeState;
    private final Map<String, Run> runs = new LinkedHashMap<>();
    private final Map<String, String> drillOnDevice = new HashMap<>();
    private int sequence;

    private DrillService(ActorContext<Command> ctx, WeftSettings settings, NodeState nodeState) {
        super(ctx);
        this.settings = settings;
        this.nodeState = nodeState;
    }

    @Override
    public Receive<Command> createReceive() {
        return newReceiveBuilder()
                .onMessage(Start.class, this::onStart)
                .onMessage(TargetFound.class, this::onTargetFound)
                .onMessage(TargetDescribed.class, this::onTargetDescribed)
                .onMessage(Finished.class, this::onFinished)
                .onMessage(CompareLegs.class, this::onCompareLegs)
                .onMessage(ListDrills.class, l -> {
                    l.replyTo().tell(runs.values().stream().map(this::status).toList());
                    return this;
                })
                .onMessage(GetDrill.class, g -> {
                    g.replyTo().tell(Optional.ofNullable(runs.get(g.id())).map(this::status));
                    return this;
                })
                .onSignal(PostStop.class, s -> onStopped())
                .build();
    }

    // ------------------------------------------------------------------------------------------ start

    private Behavior<Command> onStart(Start start) {
        DrillRequest req = start.request();
        NodeState.DeviceEntry entry = nodeState.device(req.device());
        if (entry == null) {
            start.replyTo().tell(new Refused(404, "no device " + req.device() + " mapped on node "
                    + nodeState.nodeName()));
            return this;
        }
        String running = drillOnDevice.get(req.device());
        if (running != null) {
            start.replyTo().tell(new Refused(409, running + " is already running on device " + req.device()
                    + "; one drill at a time per device"));
            return this;
        }
        List<String> storageNodes = DrillAdmission.storageNodes(entry.spec);
        if (!storageNodes.contains(req.target())) {
            start.replyTo().tell(new Refused(400, "'" + req.target() + "' holds no leg of device " + req.device()
                    + "; its storage nodes are " + storageNodes));
            return this;
        }
        String unfit = DrillAdmission.unfit(entry, req.options());
        if (unfit != null) {
            start.replyTo().tell(new Refused(unfit.startsWith("device") ? 409 : 400, unfit));
            return this;
        }
        Run run = new Run("drill-" + (++sequence), req);
        if (req.fault() == DrillRequest.Fault.CUT) {
            List<NodeState.SessionView> legs = DrillAdmission.sessionsTo(entry, req.target());
            String refused = DrillAdmission.cutRefusal(entry, legs, req);
            if (refused != null) {
                start.replyTo().tell(new Refused(refused.contains("out of range") ? 400 : 409, refused));
                return this;
            }
            List<ActorRef<SessionCommand>> sessions = legs.stream().map(l -> l.snapshot().session()).toList();
            // The sessions end the cut by themselves a little after the planned during phase, should the drill die.
            Duration hold = Duration.ofMillis(req.options().duringMillis()).plus(settings.askTimeout());
            run.fault = new CutFault(req.target(), sessions, req.path(), hold, settings.askTimeout(),
                    getContext().getSystem());
            run.pendingReply = start.replyTo();
            admit(run);
            launch(run);
            return this;
        }
        // kill / freeze: ask the target which process it is before accepting.
        run.pendingReply = start.replyTo();
        admit(run);
        Set<ActorRef<StorageServiceCommand>> targets = ClusterDirectory.snapshot(getContext().getSystem())
                .find(NodeServices.STORAGE, req.target()).stream()
                .map(ClusterDirectory.Located::ref).collect(java.util.stream.Collectors.toSet());
        getContext().getSelf().tell(new TargetFound(run.id, targets, null));
        return this;
    }

    private void admit(Run run) {
        runs.put(run.id, run);
        drillOnDevice.put(run.request.device(), run.id);
        evict();
    }

    private Behavior<Command> onTargetFound(TargetFound found) {
        Run run = runs.get(found.id());
        if (run == null || run.pendingReply == null) {
            return this;
        }
        if (found.refs().isEmpty()) {
            return refuse(run, 409, "storage node " + run.request.target() + " is not in the cluster now"
                    + (found.failure() == null ? "" : " (" + found.failure().getMessage() + ")")
                    + "; a " + run.request.fault().wireName() + " drill needs it up");
        }
        String unauthenticated = DrillAdmission.unauthenticatedTarget(getContext().getSystem().settings().config(),
                found.refs().iterator().next().path().address(), run.request.target());
        if (unauthenticated != null) {
            return refuse(run, 409, unauthenticated);
        }
        getContext().ask(ProcessInfo.class, found.refs().iterator().next(), settings.askTimeout(),
                DescribeProcess::new,
                (info, failure) -> new TargetDescribed(run.id, info, failure));
        return this;
    }

    private Behavior<Command> onTargetDescribed(TargetDescribed described) {
        Run run = runs.get(described.id());
        if (run == null || run.pendingReply == null) {
            return this;
        }
        DrillRequest req = run.request;
        ProcessInfo info = described.info();
        if (info == null) {
            return refuse(run, 409, "storage node " + req.target() + " did not say which process it is: "
                    + described.failure());
        }
        String localBoot = ProcFs.bootId();
        if (localBoot.isEmpty() || !localBoot.equals(info.bootId())) {
            return refuse(run, 409, "storage node " + req.target() + " runs on another host (boot id "
                    + (info.bootId().isEmpty() ? "unknown" : info.bootId()) + ", here "
                    + (localBoot.isEmpty() ? "unknown" : localBoot) + "); a " + req.fault().wireName()
                    + " drill signals the node's process, so it needs the target on this client's host; use"
                    + " \"fault\": \"cut\" across hosts");
        }
        long pid = info.pid();
        if (pid == ProcessHandle.current().pid()) {
            return refuse(run, 409, "storage node " + req.target() + " runs in this JVM (pid " + pid + "); a "
                    + req.fault().wireName() + " would hit this client node too");
        }
        if (!ProcFs.visible(pid)) {
            return refuse(run, 409, "storage node " + req.target() + "'s pid " + pid + " is not visible on this"
                    + " host (another PID namespace or container?)");
        }
        if (req.fault() == DrillRequest.Fault.FREEZE) {
            run.fault = ProcessFaults.freeze(req.target(), pid, java.time.Duration.ofMillis(
                    req.options().duringMillis() + ProcessFaults.WATCHDOG_GRACE_MILLIS));
        } else if (req.fault() == DrillRequest.Fault.FLAP) {
            NodeState.DeviceEntry entry = nodeState.device(req.device());
            var mirror = entry == null ? null : entry.snapshot().mirror();
            long legTimeoutMillis = (mirror == null ? MirrorOptions.defaults() : mirror.options()).legTimeoutNanos()
                    / 1_000_000L;
            DrillRequest.FlapPlan plan = req.flap();
            run.fault = ProcessFaults.flap(req.target(), pid, plan.cycles(), plan.freezeMillis(legTimeoutMillis),
                    plan.runMillis());
        } else {
            ProcFs.ProcessImage image;
            try {
                image = ProcFs.snapshot(pid);
            } catch (IOException | RuntimeException e) {
                return refuse(run, 409, "cannot read how " + req.target() + " (pid " + pid + ") was started from"
                        + " /proc/" + pid + ": " + e + "; a kill drill needs to restart it the same way");
            }
            Path fallbackLog = settings.dataDir().toAbsolutePath().resolve("drill-restart-" + req.target() + ".log");
            run.fault = ProcessFaults.kill(req.target(), image, req.restart(), fallbackLog);
            NodeState.DeviceEntry entry = nodeState.device(req.device());
            if (req.restart() && entry != null && entry.spec.legs().isEmpty()) {
                // A plain device has no mirror events to wait for: recovery lasts until it has reconnected.
                run.fault = new AwaitReconnect(run.fault, entry, req.options().resyncTimeoutMillis());
            }
        }
        launch(run);
        return this;
    }

    private Behavior<Command> refuse(Run run, int httpStatus, String message) {
        runs.remove(run.id);
        drillOnDevice.remove(run.request.device(), run.id);
        ActorRef<StartReply> replyTo = run.pendingReply;
        run.pendingReply = null;
        if (replyTo != null) {
            replyTo.tell(new Refused(httpStatus, message));
        }
        return this;
    }

    /** Builds the drill and starts its thread; answers the pending request either way. */
    private void launch(Run run) {
        DrillRequest req = run.request;
        NodeState.DeviceEntry entry = nodeState.device(req.device());
        if (entry == null) {
            refuse(run, 404, "device " + req.device() + " was unmapped meanwhile");
            return;
        }
        try {
            var mirror = entry.snapshot().mirror();
            run.drill = new Drill(entry.device, mirror, run.fault, req.options(),
                    mirror == null ? null : length -> compareLegs(entry, length));
        } catch (IllegalArgumentException e) {
            refuse(run, 400, e.getMessage());
            return;
        }
        ActorRef<Command> self = getContext().getSelf();
        Drill drill = run.drill;
        NodeFault fault = run.fault;
        String id = run.id;
        run.thread = new Thread(() -> {
            DrillReport report = null;
            Throwable failure = null;
            try {
                report = drill.run();
            } catch (Throwable t) {
                failure = t;
            } finally {
                // However the drill ended, the target is thawed / reconnected / restarted.
                fault.close();
            }
            self.tell(new Finished(id, report, failure));
        }, "weft-drill-" + id);
        run.thread.setDaemon(true);
        run.thread.start();
        getContext().getLog().info("{}: {} of {} on device {} started (seed {}, {})", id, req.fault().wireName(),
                req.target() + (req.path() == null ? "" : " path " + req.path()), req.device(),
                req.options().seed(), drill.describe());
        run.pendingReply.tell(new Started(status(run)));
        run.pendingReply = null;
    }

    private Behavior<Command> onCompareLegs(CompareLegs ask) {
        NodeState.DeviceEntry entry = nodeState.device(ask.device());
        if (entry == null) {
            ask.replyTo().tell(new Refused(404, "no device " + ask.device() + " mapped on node "
                    + nodeState.nodeName()));
            return this;
        }
        var mirror = entry.snapshot().mirror();
        if (mirror == null) {
            ask.replyTo().tell(new Refused(409, "device " + ask.device() + (entry.spec.legs().isEmpty()
                    ? " is not mirrored: no legs to compare" : " has no mirror yet (its legs are still opening)")));
            return this;
        }
        String running = drillOnDevice.get(ask.device());
        if (running != null) {
            ask.replyTo().tell(new Refused(409, running + " is running on device " + ask.device()
                    + "; it compares the legs itself when it ends"));
            return this;
        }
        for (int leg = 0; leg < io.weft.core.mirror.MirrorBlockDevice.MAX_LEGS; leg++) {
            var state = mirror.legState(leg);
            if (state != io.weft.core.mirror.LegState.IN_SYNC && state != io.weft.core.mirror.LegState.EMPTY) {
                ask.replyTo().tell(new Refused(409, "leg " + leg + " of device " + ask.device() + " is "
                        + state.name().toLowerCase(Locale.ROOT) + "; legs are compared once every leg is in sync"));
                return this;
            }
        }
        long size = entry.device.info().size() / DrillOptions.BLOCK * DrillOptions.BLOCK;
        long length = ask.length() < 0 ? size : ask.length() == 0 ? Math.min(size, Drill.LEG_COMPARE_MIN_BYTES)
                : ask.length();
        if (length > size || length % DrillOptions.BLOCK != 0 || length == 0) {
            ask.replyTo().tell(new Refused(400, "'length' must be a multiple of 4096 up to the device's " + size
                    + " bytes: " + length));
            return this;
        }
        // Blocking reads: on a thread of its own, never on a dispatcher thread.
        Thread t = new Thread(() -> {
            try {
                ask.replyTo().tell(new Compared(ask.device(), compareLegs(entry, length)));
            } catch (RuntimeException e) {
                ask.replyTo().tell(new Refused(409, "legs of " + ask.device() + " not compared: " + e.getMessage()));
            }
        }, "weft-compare-legs-" + ask.device());
        t.setDaemon(true);
        t.start();
        return this;
    }

    /**
     * Compares the mirror's legs, each read through its own device (the leg's session path, not the mirror), over
     * {@code [0, length)}; on the calling (drill or comparison) thread.
     */
    static LegComparison.Result compareLegs(NodeState.DeviceEntry entry, long length) {
        List<BlockDevice> legs = new ArrayList<>();
        for (BlockDevice leg : entry.snapshot().legDevices()) {
            if (leg != null) {
                legs.add(leg);
            }
        }
        return LegComparison.compare(legs, length, COMPARE_READ_TIMEOUT_MILLIS);
    }

    // ------------------------------------------------------------------------------------------ end

    private Behavior<Command> onFinished(Finished finished) {
        Run run = runs.get(finished.id());
        drillOnDevice.values().remove(finished.id());
        if (run == null) {
            return this;
        }
        run.endNanos = System.nanoTime();
        if (finished.report() != null) {
            DrillReport r = finished.report();
            run.endPhase = "done";
            run.report = r.toJsonTree();
            run.reportText = r.toText();
            getContext().getLog().info("{} done: {}", run.id, r.intact() ? "every acknowledged write intact"
                    : "DATA PROBLEM");
        } else {
            run.endPhase = "failed";
            Throwable t = finished.failure();
            Throwable cause = t.getCause() != null && t instanceof IllegalStateException ? t.getCause() : t;
            run.error = String.valueOf(t.getMessage()) + (cause != t ? ": " + cause : "");
            getContext().getLog().warn("{} failed: {}", run.id, run.error);
        }
        return this;
    }

    /** Drops the oldest ended drills beyond {@link #KEEP}. */
    private void evict() {
        Iterator<Run> it = runs.values().iterator();
        int excess = runs.size() - KEEP;
        while (excess > 0 && it.hasNext()) {
            Run r = it.next();
            if (r.ended()) {
                it.remove();
                excess--;
            }
        }
    }

    private DrillStatus status(Run run) {
        DrillRequest req = run.request;
        long end = run.ended() ? run.endNanos : System.nanoTime();
        long elapsed = (end - run.startNanos) / 1_000_000;
        Drill drill = run.drill;
        String phase = run.ended() ? run.endPhase : drill == null ? "starting" : livePhase(drill.phase());
        DrillOptions o = req.options();
        long planned = Math.max(1, o.beforeMillis() + o.duringMillis() + o.afterMillis());
        double progress = run.ended() ? 1.0 : Math.min(0.99, (double) elapsed / planned);
        return new DrillStatus(run.id, req.device(), req.fault().wireName(), req.target(), req.path(), o.seed(),
                phase, elapsed, drill == null ? 0 : drill.completedRequests(), progress, run.error,
                run.fault == null ? "" : run.fault.describe(), run.report, run.reportText, run.startedAtMillis,
                wallClock(run, drill == null ? 0 : drill.faultNanos()),
                wallClock(run, drill == null ? 0 : drill.recoverNanos()));
    }

    /** A drill's nanoTime instant as wall-clock milliseconds (-1 for 0: not yet). */
    private static long wallClock(Run run, long nanos) {
        return nanos == 0 ? -1 : run.startedAtMillis + (nanos - run.startNanos) / 1_000_000;
    }

    /**
     * The workload's phase while the run has not ended here. Its DONE/FAILED come before this actor has the report
     * (the Finished message), so until then it still says "verifying": "done" always comes with a report.
     */
    private static String livePhase(Drill.Phase phase) {
        return phase == Drill.Phase.DONE || phase == Drill.Phase.FAILED ? "verifying"
                : phase.name().toLowerCase(Locale.ROOT);
    }

    private Behavior<Command> onStopped() {
        for (Run run : new ArrayList<>(runs.values())) {
            if (!run.ended()) {
                if (run.drill != null) {
                    run.drill.cancel();
                }
                if (run.fault != null) {
                    run.fault.close();
                }
            }
        }
        return this;
    }
}
