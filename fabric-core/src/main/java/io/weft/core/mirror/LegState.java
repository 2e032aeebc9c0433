package io.weft.core.mirror;

/** Where one leg of a mirrored device stands. */
public enum LegState {
    /** Same contents as the other in-sync legs: takes writes and serves reads. */
    IN_SYNC,
    /** Being copied to: takes writes (so it does not fall further behind) but never serves reads. */
    RESYNCING,
    /** Dropped after an error or a timeout: takes no IO; writes meanwhile are recorded in the bitmap. */
    FAILED,
    /** No device at this position (removed, or never added). */
    EMPTY
}
