package io.weft.rdma;

import java.util.List;

/**
 * The RDMA data plane's JVM switches: system properties read once, when the classes that use them load, to compare
 * a mechanism with its absence in a benchmark or to tune a dedicated machine (docs/rdma.md). They are not
 * configuration keys — nothing reads them from a node's HOCON — but they share the {@code weft.} prefix, so a node's
 * settings loader, which rejects unknown {@code weft.*} keys, asks {@link #isSwitch} before refusing one.
 */
public final class RdmaJvmSwitches {
    /** Submitters post their own requests when the client queue is idle (default true). */
    public static final String INLINE_SUBMIT = "weft.rdma.inline-submit";
    /** A submitter alone in flight waits for its own answer (default true; needs inline submit). */
    public static final String SUBMITTER_ASSIST = "weft.rdma.submitter-assist";
    /** Completion-queue polls of an assisting submitter before it sleeps (default 0). */
    public static final String SUBMITTER_ASSIST_POLLS = "weft.rdma.submitter-assist-polls";
    /** Longest wait of an assisting submitter, in µs, before it hands its request back to the agent (default 1000). */
    public static final String SUBMITTER_ASSIST_MAX_WAIT_US = "weft.rdma.submitter-assist-max-wait-us";
    /** Empty duty cycles an RDMA agent spins before yielding (default 0). */
    public static final String IDLE_SPINS = "weft.rdma.idle.spins";
    /** Empty duty cycles an RDMA agent yields before parking on its doorbell (default 0). */
    public static final String IDLE_YIELDS = "weft.rdma.idle.yields";

    private static final List<String> ALL = List.of(INLINE_SUBMIT, SUBMITTER_ASSIST, SUBMITTER_ASSIST_POLLS,
            SUBMITTER_ASSIST_MAX_WAIT_US, IDLE_SPINS, IDLE_YIELDS);

    private RdmaJvmSwitches() {
    }

    /** Whether {@code key} (a full {@code weft.*} path) is one of these switches. */
    public static boolean isSwitch(String key) {
        return ALL.contains(key);
    }

    /** Every switch, for documentation and checks. */
    public static List<String> all() {
        return ALL;
    }
}
