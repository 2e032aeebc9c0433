package io.weft.actors;

/** The states of a client device (see docs/control-plane.md for the transitions). */
public enum DeviceState {
    /** Opening the backing store on the storage node for the first time. */
    MAPPING,
    /** A path is up; IO flows. */
    READY,
    /** Some legs of a mirrored device are down, IO continues on the rest (mirror legs are not implemented yet). */
    DEGRADED,
    /** No path: IO queues until the path is back or the io-timeout fails it with EIO. */
    RECONNECTING,
    /** Unmapped; IO gets ESHUTDOWN. */
    CLOSED
}
