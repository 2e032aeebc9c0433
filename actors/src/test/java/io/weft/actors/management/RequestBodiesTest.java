package io.weft.actors.management;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.weft.actors.json.JsonBodies;
import org.junit.jupiter.api.Test;

/** The HTTP API's request bodies read by Jackson: sizes (volumes, resize, compare-legs) and fields named in errors. */
class RequestBodiesTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    private static long size(String json) throws Exception {
        return JsonBodies.read(JSON.readTree(json), HttpBodies.VolumeBody.class).sizeOr(-1);
    }

    @Test
    void aSizeIsBytesOrText() throws Exception {
        assertEquals(1L << 30, size("{\"size\":\"1GiB\"}"));
        assertEquals(512L << 20, size("{\"size\":\"512M\"}"));
        assertEquals(4096, size("{\"size\":4096}"));
    }

    /** The user's text is a value, never HOCON source: a quote or an escape in it does not make another size. */
    @Test
    void quotesAndEscapesInASizeAreNotParsedAsHocon() {
        for (String text : new String[] {"\"1\\\"GiB\"", "\"\\\\u0031GiB\"", "\"{ }\""}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> size("{\"size\":" + text + "}"), text);
            assertTrue(e.getMessage().contains("'size' is not a size"), e.getMessage());
        }
    }

    @Test
    void aMissingOrMistypedFieldIsNamed() throws Exception {
        assertEquals("missing field 'size'", assertThrows(IllegalArgumentException.class,
                () -> size("{\"path\":\"x\"}")).getMessage());
        String wrongType = assertThrows(IllegalArgumentException.class, () -> JsonBodies.read(
                JSON.readTree("{\"force\":{}}"), HttpBodies.UnmapBody.class)).getMessage();
        assertTrue(wrongType.startsWith("'force' must be true or false"), wrongType);
        String legs = assertThrows(IllegalArgumentException.class, () -> JsonBodies.read(
                JSON.readTree("{\"id\":\"m\",\"legs\":7}"), HttpBodies.MapBody.class)).getMessage();
        assertTrue(legs.startsWith("'legs' must be a list"), legs);
        HttpBodies.MapBody map = JsonBodies.read(JSON.readTree("{\"id\":\"m\",\"legs\":[{\"storage\":\"a\","
                + "\"path\":\"x.img\"},{\"storage\":\"b\"}],\"extra\":1}"), HttpBodies.MapBody.class);
        assertEquals("rw", map.modeOrDefault());
        assertEquals("", map.legs().get(1).pathOrEmpty());
        assertEquals(-1, JsonBodies.read(JSON.readTree("{\"length\":\"all\"}"), HttpBodies.CompareLegsBody.class)
                .lengthBytes());
        assertEquals(64L << 20, JsonBodies.read(JSON.readTree("{\"length\":\"64MiB\"}"),
                HttpBodies.CompareLegsBody.class).lengthBytes());
    }
}
