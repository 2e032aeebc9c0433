package io.weft.actors.drill;

import com.fasterxml.jackson.databind.JsonNode;
import io.weft.actors.drill.harness.DrillOptions;
import io.weft.actors.json.ByteSize;
import io.weft.actors.json.DurationMillis;
import io.weft.actors.json.JsonBodies;
import java.util.Locale;
import java.util.concurrent.ThreadLocalRandom;

/**
 * A drill as {@code POST /weft/drills} asks for it (see docs/drills.md); {@link Body} is the JSON body.
 *
 * @param device  a device mapped on this node
 * @param fault   what to do to the target
 * @param target  a storage node holding a leg (or the backend) of the device
 * @param path    cut only: one transport path index of each of the device's sessions to the target; null = all
 * @param restart kill only: start the killed node again at recover
 * @param flap    flap only: how many freezes, how long each and how long the target runs between them
 * @param options the workload and its phases
 */
public record DrillRequest(String device, Fault fault, String target, Integer path, boolean restart,
                           FlapPlan flap, DrillOptions options) {

    /** The faults a drill run on the client node can inject on a storage node. */
    public enum Fault {
        KILL, FREEZE, CUT, FLAP;

        public String wireName() {
            return name().toLowerCase(Locale.ROOT);
        }

        static Fault parse(String s) {
            for (Fault f : values()) {
                if (f.wireName().equals(s)) {
                    return f;
                }
            }
            if ("client-kill".equals(s)) {
                throw new IllegalArgumentException("a client-kill drill kills this node, so it is driven from"
                        + " outside it: run 'weft drill DEVICE --fault client-kill --overwrite' on this node's host"
                        + " (docs/drills.md, \"Client kill\")");
            }
            throw new IllegalArgumentException("'fault' must be kill, freeze, flap or cut: " + s);
        }
    }

    /**
     * A flap's schedule: {@code cycles} times SIGSTOP for {@code freezeMillis}, then SIGCONT and {@code runMillis}
     * running (none after the last).
     *
     * @param freezeMillis 0 = the device's mirror leg timeout + {@value #FREEZE_MARGIN_MILLIS} ms (just past it, so
     *                     every freeze drops the leg), decided by the node
     */
    public record FlapPlan(int cycles, long freezeMillis, long runMillis) {
        public static final int DEFAULT_CYCLES = 3;
        public static final long DEFAULT_RUN_MILLIS = 1000;
        public static final long FREEZE_MARGIN_MILLIS = 300;
        public static final FlapPlan DEFAULT = new FlapPlan(DEFAULT_CYCLES, 0, DEFAULT_RUN_MILLIS);

        public FlapPlan {
            if (cycles < 1 || cycles > 100) {
                throw new IllegalArgumentException("'flaps' must be 1..100: " + cycles);
            }
            if (freezeMillis < 0 || runMillis < 0) {
                throw new IllegalArgumentException("'freezeFor' and 'runFor' must be >= 0");
            }
        }

        /** The freeze length, with 0 resolved against the leg timeout. */
        public long freezeMillis(long legTimeoutMillis) {
            return freezeMillis > 0 ? freezeMillis : legTimeoutMillis + FREEZE_MARGIN_MILLIS;
        }
    }

    /** A request without a flap schedule (any fault but flap). */
    public DrillRequest(String device, Fault fault, String target, Integer path, boolean restart,
                        DrillOptions options) {
        this(device, fault, target, path, restart, FlapPlan.DEFAULT, options);
    }

    public DrillRequest {
        if (flap == null) {
            flap = FlapPlan.DEFAULT;
        }
        if (path != null && fault != Fault.CUT) {
            throw new IllegalArgumentException("'path' applies to a cut only");
        }
        if (path != null && path < 0) {
            throw new IllegalArgumentException("'path' must be >= 0: " + path);
        }
    }

    /**
     * The JSON body of {@code POST /weft/drills} as Jackson reads it (docs/drills.md); {@link #toRequest()} applies
     * the defaults and the rules. Every field is optional here: the required ones are checked there, so that a
     * missing one is named the same way as before.
     */
    public record Body(String device, String fault, String target, Boolean overwrite, Integer path, Boolean restart,
                       Integer flaps, DurationMillis freezeFor, DurationMillis runFor, Long seed, Integer queueDepth,
                       ByteSize minIo, ByteSize maxIo, Integer readPercent, ByteSize workingSet,
                       DurationMillis before, DurationMillis during, DurationMillis after,
                       DurationMillis resyncTimeout) {

        /**
         * The request, with {@link DrillOptions#defaults} for what is missing (a random seed when none is given); a
         * drill overwrites the start of the device, so {@code "overwrite": true} is required.
         */
        public DrillRequest toRequest() {
            String dev = JsonBodies.required(device, "device");
            Fault f = Fault.parse(JsonBodies.required(fault, "fault"));
            String tgt = JsonBodies.required(target, "target");
            if (!Boolean.TRUE.equals(overwrite)) {
                throw new IllegalArgumentException("a drill overwrites [0, workingSet) of device " + dev
                        + " with its own patterns; pass \"overwrite\": true to allow that");
            }
            FlapPlan flap = FlapPlan.DEFAULT;
            if (flaps != null || freezeFor != null || runFor != null) {
                if (f != Fault.FLAP) {
                    throw new IllegalArgumentException("'flaps', 'freezeFor' and 'runFor' apply to a flap only");
                }
                flap = new FlapPlan(flaps == null ? FlapPlan.DEFAULT_CYCLES : flaps,
                        DurationMillis.or(freezeFor, 0), DurationMillis.or(runFor, FlapPlan.DEFAULT_RUN_MILLIS));
            }
            return new DrillRequest(dev, f, tgt, path, restart == null || restart, flap, options());
        }

        /**
         * The workload and its phases, with {@link DrillOptions#defaults} for what is missing (a random seed when
         * none is given). Also what the CLI's client-kill driver runs, from the body it builds.
         */
        public DrillOptions options() {
            long s = seed != null ? seed : ThreadLocalRandom.current().nextLong(1L << 40);
            DrillOptions d = DrillOptions.defaults(s);
            return new DrillOptions(s,
                    queueDepth == null ? d.queueDepth() : queueDepth,
                    (int) ByteSize.or(minIo, d.minIoBytes()),
                    (int) ByteSize.or(maxIo, d.maxIoBytes()),
                    readPercent == null ? d.readPercent() : readPercent,
                    ByteSize.or(workingSet, d.workingSetBytes()),
                    DurationMillis.or(before, d.beforeMillis()),
                    DurationMillis.or(during, d.duringMillis()),
                    DurationMillis.or(after, d.afterMillis()),
                    DurationMillis.or(resyncTimeout, d.resyncTimeoutMillis()));
        }
    }

    /**
     * Parses a request body ({@link Body}).
     *
     * @throws IllegalArgumentException for a missing or malformed field, named (the route answers 400 with it)
     */
    public static DrillRequest fromJson(JsonNode body) {
        return JsonBodies.read(body, Body.class).toRequest();
    }
}
