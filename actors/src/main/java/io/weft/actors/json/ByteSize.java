package io.weft.actors.json;

import com.fasterxml.jackson.annotation.JsonCreator;
import com.fasterxml.jackson.databind.JsonNode;

/**
 * A size in a request body: a whole number of bytes, or text in Typesafe Config's size syntax ({@code "1GiB"},
 * {@code "512M"}; see {@link ConfigUnits}).
 */
public record ByteSize(long bytes) {

    /** From the JSON value (Jackson); a bad one throws "is not a size: ..." (the field is added by the reader). */
    @JsonCreator(mode = JsonCreator.Mode.DELEGATING)
    public static ByteSize of(JsonNode value) {
        if (value.isIntegralNumber()) {
            return new ByteSize(value.asLong());
        }
        if (value.isTextual()) {
            return new ByteSize(ConfigUnits.bytes(value.asText()));
        }
        throw new IllegalArgumentException("is not a size: " + value);
    }

    /** {@code size}'s bytes, or {@code missing} when it was not given. */
    public static long or(ByteSize size, long missing) {
        return size == null ? missing : size.bytes;
    }
}
