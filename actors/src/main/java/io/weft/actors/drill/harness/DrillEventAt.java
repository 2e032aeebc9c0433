package io.weft.actors.drill.harness;

import com.fasterxml.jackson.annotation.JsonCreator;
import com.fasterxml.jackson.annotation.JsonValue;
import java.util.Locale;

/**
 * A {@link DrillEvent} and when it happened, relative to the fault's injection.
 *
 * @param fromFaultMillis milliseconds after the inject (negative before it); null when it happened before any fault
 *                        was injected (or when read back from JSON: the time is then in the text)
 * @param event           what happened
 */
public record DrillEventAt(Double fromFaultMillis, DrillEvent event) {

    /** The report's line: {@code "+101.0 ms leg 0 dropped: ..."}, or just the description before the fault. */
    @JsonValue
    public String text() {
        return fromFaultMillis == null ? event.describe()
                : String.format(Locale.ROOT, "%+.1f ms %s", fromFaultMillis, event.describe());
    }

    /** A line read back from a report's JSON: only its text is known. */
    @JsonCreator
    public static DrillEventAt fromText(String text) {
        return new DrillEventAt(null, new DrillEvent.Recorded(text));
    }

    @Override
    public String toString() {
        return text();
    }
}
