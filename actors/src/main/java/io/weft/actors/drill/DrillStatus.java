package io.weft.actors.drill;

import com.fasterxml.jackson.databind.JsonNode;

/**
 * A drill as {@code GET /weft/drills/{id}} shows it (see docs/drills.md).
 *
 * @param phase         starting, prefill, before, during, recovering, resync, after, verifying, done or failed
 * @param elapsedMillis since the drill was accepted (until it ended, once it has)
 * @param requests      workload requests completed so far
 * @param progress      0..1, a rough share of the planned time (before + during + after); 1 once ended
 * @param error         why the drill could not run or crashed (phase failed), else ""
 * @param faultDone     what the fault did ("SIGSTOP then SIGCONT sent to ..."), for people
 * @param report        {@code DrillReport.toJson()} as an object (with {@code intact}) once done, else null
 * @param reportText    {@code DrillReport.toText()} once done, else ""
 * @param startedAtMillis   wall-clock time the drill was accepted (the console places its timeline with it)
 * @param faultAtMillis     wall-clock time the fault was injected, -1 before
 * @param recoveredAtMillis wall-clock time recovery began, -1 before
 */
public record DrillStatus(String id, String device, String fault, String target, Integer path, long seed,
                          String phase, long elapsedMillis, long requests, double progress, String error,
                          String faultDone, JsonNode report, String reportText, long startedAtMillis,
                          long faultAtMillis, long recoveredAtMillis) {
}
