package io.weft.actors;

import java.util.Locale;

/**
 * How a client opens a backing store, as in RNBD. Enforced by the storage node's {@code BackendActor}.
 */
public enum AccessMode {
    /** Read only; any number of clients. */
    RO,
    /** Read-write; one client at a time. */
    RW,
    /** A second read-write opener, for live migration of a VM between client nodes. */
    MIGRATION;

    public boolean writable() {
        return this != RO;
    }

    public String wireName() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** Parses {@code ro}, {@code rw} or {@code migration} (any case). */
    public static AccessMode parse(String text) {
        if (text == null) {
            throw new IllegalArgumentException("access mode missing: use ro, rw or migration");
        }
        switch (text.trim().toLowerCase(Locale.ROOT)) {
            case "ro": return RO;
            case "rw": return RW;
            case "migration": return MIGRATION;
            default: throw new IllegalArgumentException("unknown access mode '" + text + "': use ro, rw or migration");
        }
    }
}
