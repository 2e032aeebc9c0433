package io.weft.core.drill;

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
 * @param events                leg events seen, in order, with their time relative to the fault (for people)
 */
public record DrillReport(String fault, long seed, double longestStallMillis, double stallBeforeMillis,
                          double timeToDetectMillis, double timeToFailoverMillis, double timeToResyncMillis,
                          double iopsBefore, double iopsDuring, double iopsAfter, long requests,
                          long writesAcknowledged, long writesFailed, long readsFailed, long readMismatches,
                          long blocksVerified, long blocksLost, long blocksCorrupted, long blocksUnreadable,
                          long requestsHung, long regionsDirtyBeforeFault, long regionsDirtyAtReturn,
                          long regionsWrittenWhileOut, long regionsUnflushedAtDrop, long regionsCopied,
                          long bytesCopied,
                          long legBytesCompared, long legDifferingBytes, List<String> legDifferences,
                          List<String> events) {

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
                       List<String> events) {
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
        for (String e : events) {
            row(b, "event", e);
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
        StringBuilder b = new StringBuilder(512).append('{');
        str(b, "fault", fault).append(',');
        num(b, "seed", seed).append(',');
        b.append("\"intact\":").append(intact()).append(',');
        dbl(b, "longestStallMillis", longestStallMillis).append(',');
        dbl(b, "stallBeforeMillis", stallBeforeMillis).append(',');
        dbl(b, "timeToDetectMillis", timeToDetectMillis).append(',');
        dbl(b, "timeToFailoverMillis", timeToFailoverMillis).append(',');
        dbl(b, "timeToResyncMillis", timeToResyncMillis).append(',');
        dbl(b, "iopsBefore", iopsBefore).append(',');
        dbl(b, "iopsDuring", iopsDuring).append(',');
        dbl(b, "iopsAfter", iopsAfter).append(',');
        num(b, "requests", requests).append(',');
        num(b, "writesAcknowledged", writesAcknowledged).append(',');
        num(b, "writesFailed", writesFailed).append(',');
        num(b, "readsFailed", readsFailed).append(',');
        num(b, "readMismatches", readMismatches).append(',');
        num(b, "blocksVerified", blocksVerified).append(',');
        num(b, "blocksLost", blocksLost).append(',');
        num(b, "blocksCorrupted", blocksCorrupted).append(',');
        num(b, "blocksUnreadable", blocksUnreadable).append(',');
        num(b, "requestsHung", requestsHung).append(',');
        num(b, "regionsDirtyBeforeFault", regionsDirtyBeforeFault).append(',');
        num(b, "regionsDirtyAtReturn", regionsDirtyAtReturn).append(',');
        num(b, "regionsWrittenWhileOut", regionsWrittenWhileOut).append(',');
        num(b, "regionsUnflushedAtDrop", regionsUnflushedAtDrop).append(',');
        num(b, "regionsCopied", regionsCopied).append(',');
        num(b, "bytesCopied", bytesCopied).append(',');
        num(b, "legBytesCompared", legBytesCompared).append(',');
        num(b, "legDifferingBytes", legDifferingBytes).append(',');
        b.append("\"legDifferences\":[");
        for (int i = 0; i < legDifferences.size(); i++) {
            if (i > 0) {
                b.append(',');
            }
            quote(b, legDifferences.get(i));
        }
        b.append("],\"events\":[");
        for (int i = 0; i < events.size(); i++) {
            if (i > 0) {
                b.append(',');
            }
            quote(b, events.get(i));
        }
        return b.append("]}").toString();
    }

    private static StringBuilder str(StringBuilder b, String name, String value) {
        quote(b, name);
        b.append(':');
        quote(b, value);
        return b;
    }

    private static StringBuilder num(StringBuilder b, String name, long value) {
        quote(b, name);
        return b.append(':').append(value);
    }

    private static StringBuilder dbl(StringBuilder b, String name, double value) {
        quote(b, name);
        b.append(':');
        if (Double.isFinite(value)) {
            b.append(String.format(Locale.ROOT, "%.3f", value));
        } else {
            b.append("null");
        }
        return b;
    }

    static void quote(StringBuilder b, String s) {
        b.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"': b.append("\\\""); break;
                case '\\': b.append("\\\\"); break;
                case '\n': b.append("\\n"); break;
                case '\r': b.append("\\r"); break;
                case '\t': b.append("\\t"); break;
                default:
                    if (c < 0x20) {
                        b.append(String.format(Locale.ROOT, "\\u%04x", (int) c));
                    } else {
                        b.append(c);
                    }
            }
        }
        b.append('"');
    }
}
