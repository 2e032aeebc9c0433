package io.weft.actors.drill.harness;

/**
 * How a drill compares the legs of its device once the workload has drained and every leg is back in sync: reads
 * each leg directly (not through the mirror) and compares them block by block ({@link LegComparison}). On a node that
 * is the legs' devices; a driver outside the node asks the node's HTTP API.
 */
@FunctionalInterface
public interface LegComparator {
    /**
     * Compares {@code [0, length)} of every leg.
     *
     * @throws Exception when the legs cannot be read or compared (the report then says so; not a data problem by
     *                   itself)
     */
    LegComparison.Result compare(long length) throws Exception;
}
