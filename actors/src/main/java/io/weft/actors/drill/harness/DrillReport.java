package io.weft.actors.drill.harness;

import com.fasterxml.jackson.annotation.JsonCreator;
import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.annotation.JsonPropertyOrder;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationContext;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializerProvider;
import com.fasterxml.jackson.databind.deser.std.StdDeserializer;
import com.fasterxml.jackson.databind.module.SimpleModule;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.ser.std.StdSerializer;
import java.io.IOException;
import java.util.List;
import java.util.Locale;

/**
 * What a drill measured. Times are milliseconds (fractional); -1 means "did not happen".
 *
 * @param fault                 the fault's name
 * @param seed                  the workload seed (re-run with it to reproduce the IO sequence)
 * @param longestStallMillis    the largest latency of any request during the drill
 * @param stallBeforeMillis     the largest latency before the fault (the baseline)
 * @param timeToDetectMillis    fault injected → first leg-dropped event
 * @param timeToFailoverMillis  fault injected → first successful completion of a request submitted after the drop
 * @param timeToResyncMillis    recover called → leg back in sync
 * @param iopsBefore            completions per second before the fault
 * @param iopsDuring            completions per second between inject and recover
 * @param iopsAfter             completions per second after the leg is back (or after recover)
 * @param requests              requests completed in total
 * @param writesAcknowledged    writes that completed OK (each is in the model)
 * @param writesFailed          writes that completed with an error (their blocks may hold old or new data)
 * @param readsFailed           reads that completed with an error
 * @param readMismatches        online reads whose data matched no acknowledged (or failed, in-doubt) write
 * @param blocksVerified        final check: 4 KiB blocks holding exactly what the model expects
 * @param blocksLost            final check: blocks holding an older acknowledged version (or zeros) — a lost write
 * @param blocksCorrupted       final check: blocks holding anything else (wrong offset, torn, garbage)
 * @param blocksUnreadable      final check: blocks whose read failed (e.g. no leg left): not verified either way
 * @param requestsHung          requests still in flight when the drill ended (after a 10 s drain)
 * @param regionsDirtyBeforeFault the mirror's dirty bitmap regions just before the fault (left by earlier outages);
 *                              -1 for a plain device
 * @param regionsDirtyAtReturn  the bitmap's dirty regions when the leg(s) the fault dropped returned (the count the
 *                              mirror's resync started with); -1 when no fault leg came back in sync
 * @param regionsWrittenWhileOut the drill's own count of distinct bitmap regions touched by writes that completed
 *                              (acknowledged or failed) between the fault leg's drop event and its resync start,
 *                              independent of the bitmap; -1 for a plain device
 * @param regionsUnflushedAtDrop the drill's own bound, also independent of the bitmap, of the other regions the mirror
 *                              marked for the fault leg at its drop: those of the activity-log extents the drill
 *                              wrote to after its last successful FLUSH before the drop (the leg's node may lose
 *                              what it had not flushed), not counted in {@code regionsWrittenWhileOut}; so the
 *                              resync copies at most {@code regionsWrittenWhileOut + regionsUnflushedAtDrop +
 *                              regionsDirtyBeforeFault} regions. -1 for a plain device or when no fault leg dropped
 * @param regionsCopied         regions the resync of the fault leg(s) copied; -1 as above
 * @param bytesCopied           bytes that resync wrote (more than regions × region size when foreground writes
 *                              raced with a region copy and it was repeated); -1 as above
 * @param legBytesCompared      bytes of each leg compared block by block after the drill (each leg read directly,
 *                              not through the mirror); -1 when the legs were not compared (a plain device, a leg
 *                              still out: an event says why)
 * @param legDifferingBytes     bytes (4 KiB blocks, summed over the legs) where a leg differs from leg 0: any is a
 *                              data problem (the same block would read back differently depending on the leg);
 *                              -1 when not compared
 * @param legDifferences        the first differing regions, for people ("leg 1 differs from leg 0 in [a, b) ...")
 * @param events                what the drill saw, in order, typed, with its time relative to the fault; in the JSON
 *                              each is its text for people ({@link DrillEventAt#text()})
 *
 * <p>JSON ({@link #toJson()}, written and read by Jackson): every component under its own name, in this order, with
 * {@code "intact"} after {@code "seed"}; milliseconds and rates with three decimals.
 */
@JsonPropertyOrder({"fault", "seed", "intact", "longestStallMillis", "stallBeforeMillis", "timeToDetectMillis",
        "timeToFailoverMillis", "timeToResyncMillis", "iopsBefore", "iopsDuring", "iopsAfter", "requests",
        "writesAcknowledged", "writesFailed", "readsFailed", "readMismatches", "blocksVerified", "blocksLost",
        "blocksCorrupted", "blocksUnreadable", "requestsHung", "regionsDirtyBeforeFault", "regionsDirtyAtReturn",
        "regionsWrittenWhileOut", "regionsUnflushedAtDrop", "regionsCopied", "bytesCopied", "legBytesCompared",
        "legDifferingBytes", "legDifferences", "events"})
@JsonIgnoreProperties(value = "intact", allowGetters = true)
public record DrillReport(String fault, long seed, double longestStallMillis, double stallBeforeMillis,
                          double timeToDetectMillis, double timeToFailoverMillis, double timeToResyncMillis,
                          double iopsBefore, double iopsDuring, double iopsAfter, long requests,
                          long writesAcknowledged, long writesFailed, long readsFailed, long readMismatches,
                          long blocksVerified, long blocksLost, long blocksCorrupted, long blocksUnreadable,
                          long requestsHung, long regionsDirtyBeforeFault, long regionsDirtyAtReturn,
                          long regionsWrittenWhileOut, long regionsUnflushedAtDrop, long regionsCopied,
                          long bytesCopied,
                          long legBytesCompared, long legDifferingBytes, List<String> legDifferences,
                          List<DrillEventAt> events) {

    /** Jackson with the report's number format; private, so it formats nothing else. */
    private static final ObjectMapper JSON = new ObjectMapper().registerModule(new SimpleModule("drill-report")
            .addSerializer(Double.class, new ThreeDecimals.Writer())
            .addSerializer(Double.TYPE, new ThreeDecimals.Writer())
            .addDeserializer(Double.class, new ThreeDecimals.Reader())
            .addDeserializer(Double.TYPE, new ThreeDecimals.Reader()));

    @JsonCreator
    public DrillReport {
        legDifferences = List.copyOf(legDifferences);
        events = List.copyOf(events);
    }

    /** A report without the unflushed-extent count ({@code regionsUnflushedAtDrop} = -1: not measured). */
    public DrillReport(String fault, long seed, double longestStallMillis, double stallBeforeMillis,
                       double timeToDetectMillis, double timeToFailoverMillis, double timeToResyncMillis,
                       double iopsBefore, double iopsDuring, double iopsAfter, long requests,
                       long writesAcknowledged, long writesFailed, long readsFailed, long readMismatches,
                       long blocksVerified, long blocksLost, long blocksCorrupted, long blocksUnreadable,
                       long requestsHung, long regionsDirtyBeforeFault, long regionsDirtyAtReturn,
                       long regionsWrittenWhileOut, long regionsCopied, long bytesCopied,
                       long legBytesCompared, long legDifferingBytes, List<String> legDifferences,
                       List<DrillEventAt> events) {
        this(fault, seed, longestStallMillis, stallBeforeMillis, timeToDetectMillis, timeToFailoverMillis,
                timeToResyncMillis, iopsBefore, iopsDuring, iopsAfter, requests, writesAcknowledged, writesFailed,
                readsFailed, readMismatches, blocksVerified, blocksLost, blocksCorrupted, blocksUnreadable,
                requestsHung, regionsDirtyBeforeFault, regionsDirtyAtReturn, regionsWrittenWhileOut, -1,
                regionsCopied, bytesCopied, legBytesCompared, legDifferingBytes, legDifferences, events);
    }

    /**
     * Every block was read back and held what it should, no read returned wrong data, nothing hung, and the legs
     * (when compared) are byte-identical.
     */
    @JsonProperty("intact")
    public boolean intact() {
        return blocksLost == 0 && blocksCorrupted == 0 && blocksUnreadable == 0 && readMismatches == 0
                && requestsHung == 0 && legDifferingBytes <= 0;
    }

    private static String ms(double v) {
        return v < 0 ? "-" : String.format(Locale.ROOT, "%.1f ms", v);
    }

    /** A table for people. */
    public String toText() {
        StringBuilder b = new StringBuilder();
        b.append(String.format(Locale.ROOT, "drill %s (seed %d): %s%n", fault, seed,
                intact() ? "every acknowledged write intact" : "DATA PROBLEM"));
        row(b, "longest IO stall", ms(longestStallMillis) + " (before the fault: " + ms(stallBeforeMillis) + ")");
        row(b, "time to detect", ms(timeToDetectMillis));
        row(b, "time to fail over", ms(timeToFailoverMillis));
        row(b, "time to resync", ms(timeToResyncMillis));
        row(b, "IOPS before/during/after", String.format(Locale.ROOT, "%.0f / %.0f / %.0f",
                iopsBefore, iopsDuring, iopsAfter));
        row(b, "requests", Long.toString(requests));
        row(b, "writes acked/failed", writesAcknowledged + " / " + writesFailed);
        row(b, "reads failed/mismatched", readsFailed + " / " + readMismatches);
        row(b, "blocks verified/lost/corrupt", blocksVerified + " / " + blocksLost + " / " + blocksCorrupted);
        row(b, "blocks unreadable", Long.toString(blocksUnreadable));
        row(b, "requests hung", Long.toString(requestsHung));
        if (regionsDirtyBeforeFault >= 0) {
            row(b, "regions dirty before/at return", regionsDirtyBeforeFault + " / " + count(regionsDirtyAtReturn));
            row(b, "regions written while out", count(regionsWrittenWhileOut));
            row(b, "regions unflushed at the drop", count(regionsUnflushedAtDrop));
            row(b, "resync copied", count(regionsCopied) + " regions, "
                    + (bytesCopied < 0 ? "-" : (bytesCopied >> 20) + " MiB"));
        }
        row(b, "legs compared", legBytesCompared < 0 ? "- (see events)"
                : (legBytesCompared >> 20) + " MiB, " + (legDifferingBytes == 0 ? "byte-identical"
                : "DIFFERENT in " + legDifferingBytes + " bytes"));
        for (String d : legDifferences) {
            row(b, "leg difference", d);
        }
        for (DrillEventAt e : events) {
            row(b, "event", e.text());
        }
        return b.toString();
    }

    private static String count(long v) {
        return v < 0 ? "-" : Long.toString(v);
    }

    private static void row(StringBuilder b, String name, String value) {
        b.append(String.format(Locale.ROOT, "  %-29s %s%n", name, value));
    }

    /** One JSON object for scripts (numbers in milliseconds and counts; -1 = did not happen). */
    public String toJson() {
        try {
            return JSON.writeValueAsString(this);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("a drill report did not serialize", e);
        }
    }

    /**
     * The report as a JSON tree, for a status object that embeds it: {@link #toJson()}'s text read back, so its
     * numbers are the same doubles a client reading that text gets (a tree built directly would keep the 3-decimal
     * text as a decimal number).
     */
    public ObjectNode toJsonTree() {
        try {
            return (ObjectNode) JSON.readTree(toJson());
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("a drill report did not read back", e);
        }
    }

    /** A report read back from {@link #toJson()}'s text (its events keep only their text). */
    public static DrillReport fromJson(String json) throws JsonProcessingException {
        return JSON.readValue(json, DrillReport.class);
    }

    /**
     * Milliseconds and rates in the JSON: three decimals ({@code 130.500}), and null for a value that is not finite;
     * null reads back as NaN.
     */
    static final class ThreeDecimals {
        private ThreeDecimals() {
        }

        static final class Writer extends StdSerializer<Double> {
            Writer() {
                super(Double.class);
            }

            @Override
            public void serialize(Double value, JsonGenerator gen, SerializerProvider provider) throws IOException {
                if (Double.isFinite(value)) {
                    gen.writeNumber(String.format(Locale.ROOT, "%.3f", value));
                } else {
                    gen.writeNull();
                }
            }
        }

        static final class Reader extends StdDeserializer<Double> {
            Reader() {
                super(Double.class);
            }

            @Override
            public Double deserialize(JsonParser p, DeserializationContext ctxt) throws IOException {
                return p.getValueAsDouble();
            }

            @Override
            public Double getNullValue(DeserializationContext ctxt) {
                return Double.NaN;
            }
        }
    }
}
