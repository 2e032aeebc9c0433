package io.weft.actors.transport;

import java.io.IOException;

/**
 * The transport has no room for one more channel (e.g. a CXL region's backend, blkdev or segment table is full).
 * Waiting does not help — only an unmap or a larger resource does — so a device that is still mapping fails at once
 * with this message (which says what is full and how to enlarge it) instead of retrying until map-timeout.
 */
public final class TransportFullException extends IOException {
    public TransportFullException(String message, Throwable cause) {
        super(message, cause);
    }
}
