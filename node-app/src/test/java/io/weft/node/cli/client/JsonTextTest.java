package io.weft.node.cli.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.weft.testkit.PropertyRuns;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/**
 * The CLI's JSON without an ObjectMapper reads and writes exactly what ObjectMapper does: the same trees from the same
 * text, the same {@code --json} output and request bodies from the same trees.
 */
class JsonTextTest {
    private static final ObjectMapper MAPPER = new ObjectMapper();

    private static final String EVERY_KIND = "{\"ok\":true,\"failed\":false,\"none\":null,"
            + "\"name\":\"vol\\u00e9 \\\"0\\\"\\n\","
            + "\"int\":-7,\"long\":1099511627776,\"big\":123456789012345678901234567890,\"double\":0.25,"
            + "\"exp\":1.5E-7,\"empty\":{},\"list\":[],\"nested\":[1,[2,{\"a\":[\"x\",null]}],{\"b\":{\"c\":3}}],"
            + "\"dup\":1,\"dup\":2}";

    @Test
    void readsTheTreesObjectMapperReads() throws IOException {
        assertEquals(MAPPER.readTree(EVERY_KIND), JsonText.parse(EVERY_KIND));
        assertEquals(MAPPER.readTree("[1,2] trailing"), JsonText.parse("[1,2] trailing"));
        assertEquals(MAPPER.readTree("\"just text\""), JsonText.parse("\"just text\""));
    }

    @Test
    void writesWhatObjectMapperWrites() throws IOException {
        JsonNode tree = MAPPER.readTree(EVERY_KIND);
        assertEquals(MAPPER.writerWithDefaultPrettyPrinter().writeValueAsString(tree), JsonText.pretty(tree));
        assertEquals(MAPPER.writeValueAsString(tree), JsonText.compact(tree));
        JsonNode built = JsonText.object().put("id", "d").put("size", 1L << 40).put("ratio", 0.5f).put("on", true)
                .putNull("none");
        assertEquals(MAPPER.writeValueAsString(built), JsonText.compact(built));
    }

    /** Random trees (seeds and replay: {@link PropertyRuns}): read, written compact and pretty like ObjectMapper. */
    @TestFactory
    Stream<DynamicTest> randomTreesRoundTripLikeObjectMapper() {
        return PropertyRuns.scenarios("json-text", 200, seed -> {
            try {
                roundTrip(seed);
            } catch (IOException e) {
                throw new UncheckedIOException("scenario seed " + seed, e);
            }
        });
    }

    private static void roundTrip(long seed) throws IOException {
        JsonNode tree = randomValue(new Random(seed), 4);
        String text = MAPPER.writeValueAsString(tree);
        assertEquals(MAPPER.readTree(text), JsonText.parse(text), "scenario seed " + seed + ": " + text);
        assertEquals(MAPPER.writerWithDefaultPrettyPrinter().writeValueAsString(tree), JsonText.pretty(tree),
                "scenario seed " + seed + ": " + text);
        assertEquals(text, JsonText.compact(tree), "scenario seed " + seed);
    }

    private static JsonNode randomValue(Random random, int depth) {
        int kind = random.nextInt(depth > 0 ? 9 : 7);
        return switch (kind) {
            case 0 -> MAPPER.getNodeFactory().numberNode(random.nextInt());
            case 1 -> MAPPER.getNodeFactory().numberNode(random.nextLong());
            case 2 -> MAPPER.getNodeFactory().numberNode(random.nextDouble() * 1e6);
            case 3 -> MAPPER.getNodeFactory().textNode(randomText(random));
            case 4 -> MAPPER.getNodeFactory().booleanNode(random.nextBoolean());
            case 5 -> MAPPER.getNodeFactory().nullNode();
            case 6 -> MAPPER.getNodeFactory().numberNode(new java.math.BigInteger(100, random));
            case 7 -> {
                var array = MAPPER.createArrayNode();
                for (int n = random.nextInt(4); n > 0; n--) {
                    array.add(randomValue(random, depth - 1));
                }
                yield array;
            }
            default -> {
                var object = MAPPER.createObjectNode();
                for (int n = random.nextInt(4); n > 0; n--) {
                    object.set(randomText(random), randomValue(random, depth - 1));
                }
                yield object;
            }
        };
    }

    private static String randomText(Random random) {
        StringBuilder s = new StringBuilder();
        for (int n = random.nextInt(8); n > 0; n--) {
            int pick = random.nextInt(5);
            s.append(switch (pick) {
                case 0 -> (char) ('a' + random.nextInt(26));
                case 1 -> '"';
                case 2 -> '\n';
                case 3 -> (char) (0x80 + random.nextInt(0x700));
                default -> (char) random.nextInt(0x20);
            });
        }
        return s.toString();
    }

    @Test
    void textThatIsNotJsonFails() {
        assertThrows(IOException.class, () -> JsonText.parse(""));
        assertThrows(IOException.class, () -> JsonText.parse("The server was not able to produce a timely response"));
        assertThrows(IOException.class, () -> JsonText.parse("{\"a\":"));
    }
}
