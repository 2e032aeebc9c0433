package io.weft.actors.json;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonMappingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.cfg.CoercionAction;
import com.fasterxml.jackson.databind.cfg.CoercionInputShape;
import com.fasterxml.jackson.databind.exc.MismatchedInputException;
import com.fasterxml.jackson.databind.type.LogicalType;
import java.util.stream.Collectors;

/**
 * Reads HTTP request bodies into records with Jackson, and turns what Jackson refuses into an
 * {@link IllegalArgumentException} whose message names the bad field (the routes answer 400 with it).
 *
 * <p>Integers are strict ({@code "queueDepth": "8"} or {@code 1.5} is refused, not coerced); unknown fields are
 * ignored, as they always were. A record's creator or its own checks may throw {@code IllegalArgumentException}: its
 * message is kept, prefixed with the field when Jackson knows which one it was reading.
 */
public final class JsonBodies {
    private static final ObjectMapper MAPPER = mapper();

    private JsonBodies() {
    }

    private static ObjectMapper mapper() {
        ObjectMapper m = new ObjectMapper().disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
                .disable(DeserializationFeature.ACCEPT_FLOAT_AS_INT);
        m.coercionConfigFor(LogicalType.Integer)
                .setCoercion(CoercionInputShape.String, CoercionAction.Fail)
                .setCoercion(CoercionInputShape.Float, CoercionAction.Fail)
                .setCoercion(CoercionInputShape.Boolean, CoercionAction.Fail);
        return m;
    }

    /**
     * The body as a {@code type} record.
     *
     * @throws IllegalArgumentException naming the field that is missing, of the wrong type or malformed
     */
    public static <T> T read(JsonNode body, Class<T> type) {
        try {
            return MAPPER.treeToValue(body, type);
        } catch (JsonMappingException e) {
            throw refusal(body, e);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("malformed JSON: " + e.getOriginalMessage(), e);
        }
    }

    private static IllegalArgumentException refusal(JsonNode body, JsonMappingException e) {
        Throwable cause = e.getCause();
        String field = e.getPath().stream()
                .map(ref -> ref.getFieldName() != null ? ref.getFieldName() : "[" + ref.getIndex() + "]")
                .collect(Collectors.joining("."));
        if (cause instanceof IllegalArgumentException bad) {
            // The record's own words ("'flaps' must be 1..100: 0"), or a value type's ("is not a size: x").
            String message = bad.getMessage();
            return new IllegalArgumentException(field.isEmpty() || message.startsWith("'") ? message
                    : "'" + field + "' " + message, bad);
        }
        if (field.isEmpty()) {
            return new IllegalArgumentException("body: " + e.getOriginalMessage(), e);
        }
        JsonNode value = e.getPath().size() == 1 ? body.get(field) : null;
        String shown = value == null ? "" : ": " + value;
        if (e instanceof MismatchedInputException m && m.getTargetType() != null) {
            return new IllegalArgumentException("'" + field + "' must be " + kind(m.getTargetType()) + shown, e);
        }
        return new IllegalArgumentException("'" + field + "' is malformed" + shown, e);
    }

    private static String kind(Class<?> type) {
        if (type == Integer.class || type == int.class || type == Long.class || type == long.class) {
            return "an integer";
        }
        if (type == Boolean.class || type == boolean.class) {
            return "true or false";
        }
        if (type == String.class) {
            return "a string";
        }
        if (java.util.List.class.isAssignableFrom(type) || type.isArray()) {
            return "a list";
        }
        return "an object";
    }

    /** {@code value}, or an {@code IllegalArgumentException("missing field 'NAME'")} when it is null or blank. */
    public static String required(String value, String field) {
        if (value == null || value.isBlank()) {
            throw new IllegalArgumentException("missing field '" + field + "'");
        }
        return value;
    }
}
