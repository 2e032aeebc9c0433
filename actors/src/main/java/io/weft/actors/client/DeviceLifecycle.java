package io.weft.actors.client;

import io.weft.actors.DeviceState;
import io.weft.actors.NodeState;
import io.weft.actors.Reply;
import io.weft.actors.WeftSettings;
import java.time.Duration;
import java.util.function.Supplier;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;

/**
 * The part of a client device's life that does not depend on how its paths are made, shared by {@link DeviceActor}
 * (one session) and {@link MirroredDeviceActor} (a session per leg): the expiry tick that fails requests older than
 * the io-timeout, the export and its withdrawal, the one answer to the map request, and the unmap (stop accepting,
 * drain for up to {@code weft.client.unmap-drain-timeout}, or fail everything at once when forced, then forget the
 * device).
 *
 * <p>Not an actor: it runs inside its owner's actor, on its thread, with the owner's context and timers, and its two
 * messages ({@link ExpireTick}, {@link DrainTick}) are the owner's. The owner routes them here and supplies what
 * closing means for it ({@code closeNow}: stop its sessions, close its mirror).
 */
final class DeviceLifecycle {

    /** Fails the queued requests older than the io-timeout. */
    record ExpireTick() implements DeviceActor.Command {
    }

    /** An unmap waiting for the device's last requests; {@code deadlineNanos} on {@link System#nanoTime()}. */
    record DrainTick(ActorRef<Reply> replyTo, long deadlineNanos) implements DeviceActor.Command {
    }

    private final ActorContext<DeviceActor.Command> ctx;
    private final TimerScheduler<DeviceActor.Command> timers;
    private final NodeState.DeviceEntry entry;
    private final WeftSettings settings;
    private final DeviceExporter exporter;
    private final DeviceRegistry registry;
    private final ActorRef<Reply> mapReplyTo;
    private final Supplier<Behavior<DeviceActor.Command>> closeNow;
    private boolean mapAnswered;
    private boolean closing;

    /**
     * @param mapAnswered true for an adopted device (its map was answered by an earlier incarnation)
     * @param closeNow    the owner's close: called once the unmap has answered; returns the owner's next behaviour
     */
    DeviceLifecycle(ActorContext<DeviceActor.Command> ctx, TimerScheduler<DeviceActor.Command> timers,
                    NodeState.DeviceEntry entry, WeftSettings settings, DeviceExporter exporter,
                    DeviceRegistry registry, ActorRef<Reply> mapReplyTo, boolean mapAnswered,
                    Supplier<Behavior<DeviceActor.Command>> closeNow) {
        this.ctx = ctx;
        this.timers = timers;
        this.entry = entry;
        this.settings = settings;
        this.exporter = exporter;
        this.registry = registry;
        this.mapReplyTo = mapReplyTo;
        this.mapAnswered = mapAnswered;
        this.closeNow = closeNow;
    }

    /**
     * Starts the expiry tick: a tenth of the io-timeout, between 20 ms and 3 s, so a request fails at most a tenth
     * of the io-timeout after it (3 s after the default 30 s). Every mapped device ticks, idle or not: with the old
     * 1 s ceiling 100 idle devices cost their node 100 actor messages a second, the largest per-device idle cost
     * left (issue 12).
     */
    void startExpiryTick() {
        Duration tick = settings.ioTimeout().dividedBy(10);
        if (tick.compareTo(Duration.ofMillis(20)) < 0) {
            tick = Duration.ofMillis(20);
        } else if (tick.compareTo(Duration.ofSeconds(3)) > 0) {
            tick = Duration.ofSeconds(3);
        }
        timers.startTimerWithFixedDelay("expire", new ExpireTick(), tick);
    }

    void onExpireTick() {
        entry.device.expire(System.nanoTime());
    }

    /** Exports the device's queueing device; a failure is published in the snapshot, the device stays mapped. */
    void export(String description) {
        try {
            String exportedAs = exporter.export(entry.spec.deviceId(), description, entry.device);
            entry.update(d -> d.withExport(exportedAs, ""));
        } catch (Exception e) {
            entry.update(d -> d.withExport(d.exportedAs(), e.toString()));
            ctx.getLog().warn("device {} is mapped but could not be exported: {}", entry.spec.deviceId(),
                    e.toString());
        }
    }

    /** Withdraws the export; an exporter that throws must not stop an unmap half way. */
    void unexport() {
        try {
            exporter.unexport(entry.spec.deviceId());
        } catch (RuntimeException e) {
            ctx.getLog().warn("device {}: withdrawing the export failed: {}", entry.spec.deviceId(), e.toString());
        }
    }

    /** The map request gets exactly one answer, however the mapping ends. */
    void answerMap(Reply reply) {
        if (!mapAnswered) {
            mapAnswered = true;
            mapReplyTo.tell(reply);
        }
    }

    /** True from the unmap (or a failed map) on: the device is going away. */
    boolean closing() {
        return closing;
    }

    /**
     * The common start of the owner's close: a map still pending is answered, the device stops for good (every
     * queued request fails) and is marked closing. The owner then closes its paths.
     */
    void beginClose() {
        if (entry.snapshot().state() == DeviceState.MAPPING) {
            answerMap(Reply.error("device " + entry.spec.deviceId() + " was unmapped before it was ready"));
        }
        closing = true;
        entry.device.forceClose();
    }

    /**
     * Unmaps: withdraws the export, then either fails every outstanding request at once ({@code force}) or stops
     * accepting and drains (see {@link #onDrainTick}); answered once the device is closed.
     */
    Behavior<DeviceActor.Command> onUnmap(DeviceActor.Unmap unmap, Behavior<DeviceActor.Command> same) {
        if (closing) {
            unmap.replyTo().tell(Reply.error(entry.spec.deviceId() + " is already being unmapped"));
            return same;
        }
        closing = true;
        unexport();
        if (unmap.force()) {
            long failed = entry.device.inFlight();
            entry.device.forceClose();
            return finishUnmap(unmap.replyTo(), "force-unmapped " + entry.spec.deviceId() + "; " + failed
                    + " outstanding request(s) failed with EIO");
        }
        entry.device.stopAccepting();
        return onDrainTick(new DrainTick(unmap.replyTo(),
                System.nanoTime() + settings.unmapDrainTimeout().toNanos()), same);
    }

    Behavior<DeviceActor.Command> onDrainTick(DrainTick tick, Behavior<DeviceActor.Command> same) {
        if (entry.device.inFlight() == 0) {
            entry.device.forceClose();
            return finishUnmap(tick.replyTo(), "unmapped " + entry.spec.deviceId());
        }
        if (System.nanoTime() - tick.deadlineNanos() > 0) {
            long failed = entry.device.inFlight();
            entry.device.forceClose();
            return finishUnmap(tick.replyTo(), "unmapped " + entry.spec.deviceId() + " after "
                    + settings.unmapDrainTimeout().toMillis() + " ms; " + failed + " request(s) failed with EIO");
        }
        timers.startSingleTimer("drain", tick, Duration.ofMillis(10));
        return same;
    }

    private Behavior<DeviceActor.Command> finishUnmap(ActorRef<Reply> replyTo, String message) {
        ctx.getLog().info(message);
        registry.forgotten(entry.spec.deviceId()); // before the answer: whoever reads the record next sees it gone
        replyTo.tell(Reply.ok(message));
        return closeNow.get();
    }

    /** When the owner stops for good: the export goes and every queued request fails. */
    void withdraw() {
        unexport();
        entry.device.forceClose();
    }

    /** The owner's last step when it stops: the device closes and leaves node state and, if unmapped, the registry. */
    void forget() {
        entry.update(d -> d.withState(DeviceState.CLOSED));
        entry.nodeState.removeDevice(entry.spec.deviceId(), entry);
        if (closing) {
            registry.forgotten(entry.spec.deviceId());
        }
    }
}
