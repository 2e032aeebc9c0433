package io.weft.actors.drill;

import com.fasterxml.jackson.databind.JsonNode;
import com.typesafe.config.ConfigFactory;
import io.weft.actors.drill.harness.DrillOptions;
import java.time.Duration;
import java.util.Locale;
import java.util.concurrent.ThreadLocalRandom;

/**
 * A drill as {@code POST /weft/drills} asks for it (see docs/drills.md).
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
     * Parses a request body. Missing optional fields take {@link DrillOptions#defaults} (a random seed when none is
     * given); a drill overwrites the start of the device, so {@code "overwrite": true} is required.
     *
     * @throws IllegalArgumentException for a missing or malformed field (the route answers 400 with the message)
     */
    public static DrillRequest fromJson(JsonNode body) {
        String device = text(body, "device");
        Fault fault = Fault.parse(text(body, "fault"));
        String target = text(body, "target");
        if (!body.path("overwrite").asBoolean(false)) {
            throw new IllegalArgumentException("a drill overwrites [0, workingSet) of device " + device
                    + " with its own patterns; pass \"overwrite\": true to allow that");
        }
        Integer path = null;
        JsonNode p = body.get("path");
        if (p != null && !p.isNull()) {
            if (!p.canConvertToInt() || !p.isIntegralNumber()) {
                throw new IllegalArgumentException("'path' must be a path index: " + p);
            }
            path = p.asInt();
        }
        boolean restart = body.path("restart").asBoolean(true);
        FlapPlan flap = FlapPlan.DEFAULT;
        if (body.has("flaps") || body.has("freezeFor") || body.has("runFor")) {
            if (fault != Fault.FLAP) {
                throw new IllegalArgumentException("'flaps', 'freezeFor' and 'runFor' apply to a flap only");
            }
            flap = new FlapPlan((int) number(body, "flaps", FlapPlan.DEFAULT_CYCLES),
                    millis(body, "freezeFor", 0), millis(body, "runFor", FlapPlan.DEFAULT_RUN_MILLIS));
        }
        long seed = body.has("seed") ? number(body, "seed") : ThreadLocalRandom.current().nextLong(1L << 40);
        DrillOptions d = DrillOptions.defaults(seed);
        DrillOptions options = new DrillOptions(seed,
                (int) number(body, "queueDepth", d.queueDepth()),
                (int) size(body, "minIo", d.minIoBytes()),
                (int) size(body, "maxIo", d.maxIoBytes()),
                (int) number(body, "readPercent", d.readPercent()),
                size(body, "workingSet", d.workingSetBytes()),
                millis(body, "before", d.beforeMillis()),
                millis(body, "during", d.duringMillis()),
                millis(body, "after", d.afterMillis()),
                millis(body, "resyncTimeout", d.resyncTimeoutMillis()));
        return new DrillRequest(device, fault, target, path, restart, flap, options);
    }

    private static String text(JsonNode body, String field) {
        JsonNode n = body.get(field);
        if (n == null || n.isNull() || !n.isTextual() || n.asText().isBlank()) {
            throw new IllegalArgumentException("missing field '" + field + "'");
        }
        return n.asText();
    }

    private static long number(JsonNode body, String field) {
        JsonNode n = body.get(field);
        if (n == null || !n.isIntegralNumber()) {
            throw new IllegalArgumentException("'" + field + "' must be an integer: " + n);
        }
        return n.asLong();
    }

    private static long number(JsonNode body, String field, long missing) {
        return body.has(field) && !body.get(field).isNull() ? number(body, field) : missing;
    }

    /** A size: a number of bytes or "64MiB"-style text (Typesafe Config's size syntax). */
    private static long size(JsonNode body, String field, long missing) {
        JsonNode n = body.get(field);
        if (n == null || n.isNull()) {
            return missing;
        }
        if (n.isIntegralNumber()) {
            return n.asLong();
        }
        try {
            return ConfigFactory.parseString("v = \"" + n.asText().replace("\"", "") + "\"").getBytes("v");
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("'" + field + "' is not a size: " + n.asText());
        }
    }

    /** A duration: a number of milliseconds or "2s" / "500ms"-style text (Typesafe Config's duration syntax). */
    private static long millis(JsonNode body, String field, long missing) {
        JsonNode n = body.get(field);
        if (n == null || n.isNull()) {
            return missing;
        }
        if (n.isIntegralNumber()) {
            return n.asLong();
        }
        try {
            Duration d = ConfigFactory.parseString("v = \"" + n.asText().replace("\"", "") + "\"").getDuration("v");
            return d.toMillis();
        } catch (RuntimeException e) {
            throw new IllegalArgumentException("'" + field + "' is not a duration: " + n.asText());
        }
    }
}
