package io.weft.actors.json;

import com.fasterxml.jackson.annotation.JsonCreator;
import com.fasterxml.jackson.databind.JsonNode;

/**
 * A duration in a request body: a whole number of milliseconds, or text in Typesafe Config's duration syntax
 * ({@code "2s"}, {@code "500ms"}; see {@link ConfigUnits}).
 */
public record DurationMillis(long millis) {

    /** From the JSON value (Jackson); a bad one throws "is not a duration: ..." (the field is added by the reader). */
    @JsonCreator(mode = JsonCreator.Mode.DELEGATING)
    public static DurationMillis of(JsonNode value) {
        if (value.isIntegralNumber()) {
            return new DurationMillis(value.asLong());
        }
        if (value.isTextual()) {
            return new DurationMillis(ConfigUnits.duration(value.asText()).toMillis());
        }
        throw new IllegalArgumentException("is not a duration: " + value);
    }

    /** {@code duration}'s milliseconds, or {@code missing} when it was not given. */
    public static long or(DurationMillis duration, long missing) {
        return duration == null ? missing : duration.millis;
    }
}
