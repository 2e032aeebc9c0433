package io.weft.actors.drill.harness;

/**
 * What a drill does to the system under test. The caller decides what it means: kill a storage process
 * ({@code kill -9}), freeze it ({@code SIGSTOP}, recovered by {@code SIGCONT}), cut its transport paths, or (in unit
 * tests) make one leg device fail or hang. Both methods run on the drill's control thread while the workload runs.
 */
public interface DrillFault {
    /** Short name for the report ("kill", "freeze", "cut", "leg-eio", ...). */
    String name();

    /**
     * Readies the fault before the workload starts (e.g. loads the native signal binding), so that
     * {@link #inject()} itself is prompt and time to detect is not inflated by one-off start-up work.
     */
    default void prepare() throws Exception {
    }

    /** Breaks something. Should return promptly; the drill measures from the moment it is called. */
    void inject() throws Exception;

    /**
     * Undoes it (restart the node, SIGCONT, reconnect) and, where the caller owns that step, tells the mirror the leg
     * is back ({@code MirrorBlockDevice.legReturned}). The drill measures time to resync from this call to the
     * mirror's leg-in-sync event.
     */
    void recover() throws Exception;

    /**
     * Whether a leg dropped by this fault comes back after {@link #recover()} (so the drill waits for its resync);
     * false e.g. for a kill without restart.
     */
    default boolean legReturns() {
        return true;
    }

    /** A fault with lambdas for both halves. */
    static DrillFault of(String name, Action inject, Action recover) {
        return new DrillFault() {
            @Override
            public String name() {
                return name;
            }

            @Override
            public void inject() throws Exception {
                inject.run();
            }

            @Override
            public void recover() throws Exception {
                recover.run();
            }
        };
    }

    /** A step that may throw. */
    @FunctionalInterface
    interface Action {
        void run() throws Exception;
    }
}
