package io.weft.actors.drill.harness;

import java.util.Locale;

/**
 * Something a drill saw happen, typed so that code (tests, the report's checks) matches the kind and its fields;
 * {@link #describe()} is the English text people read in the report and its JSON (unchanged from when the events
 * were strings). A {@link DrillEventAt} adds when it happened.
 */
public sealed interface DrillEvent {
    /** The text for people, without the time. */
    String describe();

    /** The fault was injected (the drill's time zero). */
    record FaultInjected(String fault) implements DrillEvent {
        @Override
        public String describe() {
            return "fault '" + fault + "' injected";
        }
    }

    /** {@code fault.inject()} took long enough (over 10 ms) to be worth a line. */
    record InjectReturned(double tookMillis) implements DrillEvent {
        @Override
        public String describe() {
            return String.format(Locale.ROOT, "inject returned (took %.1f ms)", tookMillis);
        }
    }

    /** {@code fault.recover()} was called. */
    record RecoverStarted() implements DrillEvent {
        @Override
        public String describe() {
            return "recover";
        }
    }

    /** The mirror dropped a leg; {@code byFault}: between the inject and the end of recovery. */
    record LegDropped(int leg, String reason, boolean byFault) implements DrillEvent {
        @Override
        public String describe() {
            return "leg " + leg + " dropped: " + reason + (byFault ? " (by the fault)" : "");
        }
    }

    /** The mirror began resyncing a leg with {@code regions} dirty regions ({@code full}: the whole device). */
    record ResyncStarted(int leg, long regions, boolean full) implements DrillEvent {
        @Override
        public String describe() {
            return "leg " + leg + " resync started: " + regions + " regions" + (full ? " (full)" : "");
        }
    }

    /** A leg is in sync again; {@code droppedByFault}: it is one the fault dropped (its time to resync counts). */
    record LegInSync(int leg, boolean droppedByFault) implements DrillEvent {
        @Override
        public String describe() {
            return "leg " + leg + " in sync" + (droppedByFault ? " (dropped by the fault: time to resync)" : "");
        }
    }

    /** A leg's resync failed. */
    record ResyncFailed(int leg, String reason) implements DrillEvent {
        @Override
        public String describe() {
            return "leg " + leg + " resync failed: " + reason;
        }
    }

    /** The resync timeout passed with these fault legs (", "-separated indexes) still out. */
    record ResyncWaitAbandoned(String legs) implements DrillEvent {
        @Override
        public String describe() {
            return "gave up waiting for leg(s) " + legs + " to be back in sync";
        }
    }

    /** The legs were compared block by block after the drill. */
    record LegsCompared(LegComparison.Result result) implements DrillEvent {
        @Override
        public String describe() {
            return result.describe();
        }
    }

    /** The legs were not compared, and why (not in itself a data problem). */
    record LegsNotCompared(String reason) implements DrillEvent {
        @Override
        public String describe() {
            return "legs not compared: " + reason;
        }
    }

    /** An event read back from a report's JSON, where only its text (with the time) is kept. */
    record Recorded(String text) implements DrillEvent {
        @Override
        public String describe() {
            return text;
        }
    }
}
