package io.weft.actors.transport;

import java.io.IOException;

/**
 * The endpoint can never be reached from this node (e.g. an in-process endpoint of another JVM): retrying is
 * pointless, so a device that is still mapping fails at once with this message instead of waiting for map-timeout.
 */
public final class UnreachableEndpointException extends IOException {
    public UnreachableEndpointException(String message) {
        super(message);
    }
}
