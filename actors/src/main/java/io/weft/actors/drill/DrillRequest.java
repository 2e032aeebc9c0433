package io.weft.actors.drill;

import com.fasterxml.jackson.databind.JsonNode;
import com.typesafe.config.ConfigFactory;
import io.weft.core.drill.DrillOptions;
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
 * @param options the workload and its phases
 */
public record DrillRequest(String device, Fault fault, String target, Integer path, boolean restart,
                           DrillOptions options) {

    /** The faults a drill can inject on a storage node. */
    public enum Fault {
        KILL, FREEZE, CUT;

        public String wireName() {
            return name().toLowerCase(Locale.ROOT);
        }

        static Fault parse(String s) {
            for (Fault f : values()) {
                if (f.wireName().equals(s)) {
                    return f;
                }
            }
            throw new IllegalArgumentException("'fault' must be kill, freeze or cut: " + s);
        }
    }

    public DrillRequest {
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
        return new DrillRequest(device, fault, target, path, restart, options);
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
