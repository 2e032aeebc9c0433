package io.weft.actors;

import java.util.Locale;

/**
 * Where a client's session to one storage node stands (see {@code client.SessionActor}): SEARCHING (the node is not
 * among the cluster's reachable storage members) → OPENING (open sent) → CONNECTING (opened; the data path is
 * attaching) → CONNECTED (IO flows); BACKOFF while it waits to open again; CLOSED once unmapped.
 */
public enum SessionPhase {
    SEARCHING, OPENING, CONNECTING, CONNECTED, BACKOFF, CLOSED;

    /** The lower-case word HTTP, JMX and the console show. */
    public String wireName() {
        return name().toLowerCase(Locale.ROOT);
    }
}
