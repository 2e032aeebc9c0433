package io.weft.actors.drill;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

/** {@code POST /weft/drills} bodies read into a {@link DrillRequest}: sizes, durations, and what is refused. */
class DrillRequestTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String BASE = "\"device\":\"m\",\"fault\":\"cut\",\"target\":\"b\",\"overwrite\":true";

    private static DrillRequest parse(String extra) throws Exception {
        JsonNode body = JSON.readTree("{" + BASE + (extra.isEmpty() ? "" : "," + extra) + "}");
        return DrillRequest.fromJson(body);
    }

    @Test
    void sizesAndDurationsAreReadAsTextOrNumbers() throws Exception {
        DrillRequest r = parse("\"seed\":7,\"queueDepth\":8,\"workingSet\":\"4MiB\",\"maxIo\":65536,"
                + "\"before\":\"500ms\",\"during\":\"2s\",\"after\":250");
        assertEquals(7, r.options().seed());
        assertEquals(8, r.options().queueDepth());
        assertEquals(4L << 20, r.options().workingSetBytes());
        assertEquals(65536, r.options().maxIoBytes());
        assertEquals(500, r.options().beforeMillis());
        assertEquals(2000, r.options().duringMillis());
        assertEquals(250, r.options().afterMillis());
    }

    /**
     * A user's text is a value, never HOCON source: quotes, braces, escapes or a substitution in it must not turn into
     * another size or duration (the text is either one as written or refused, naming the field).
     */
    @Test
    void quotesBracesAndEscapesInAValueAreNotParsedAsHocon() {
        String[] sizes = {"\"1\\\"6MiB\"", "\"\\\\u0031\\\\u0036MiB\"", "\"16MiB\\\" , x = {\"", "\"${HOME}\""};
        for (String size : sizes) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> parse("\"workingSet\":" + size), "workingSet " + size);
            assertTrue(e.getMessage().contains("'workingSet' is not a size"), e.getMessage());
        }
        String[] durations = {"\"2\\\"s\"", "\"\\\\u0032s\"", "\"{ }\""};
        for (String duration : durations) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> parse("\"during\":" + duration), "during " + duration);
            assertTrue(e.getMessage().contains("'during' is not a duration"), e.getMessage());
        }
    }

    @Test
    void badFieldsAreNamed() {
        assertTrue(assertThrows(IllegalArgumentException.class, () -> parse("\"seed\":\"x\"")).getMessage()
                .contains("'seed'"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> parse("\"queueDepth\":1.5")).getMessage()
                .contains("'queueDepth'"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> parse("\"path\":\"one\"")).getMessage()
                .contains("'path'"));
        assertTrue(assertThrows(IllegalArgumentException.class,
                () -> DrillRequest.fromJson(JSON.readTree("{\"fault\":\"cut\",\"target\":\"b\",\"overwrite\":true}")))
                .getMessage().contains("missing field 'device'"));
    }
}
