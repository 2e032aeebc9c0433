package io.weft.actors.protocol;

import io.weft.actors.WeftSerializable;

/**
 * From a storage node to a client's renewer: it has no mapping {@code mappingId} (released, or its backend restarted).
 */
public record LeaseUnknown(String mappingId) implements LeaseRenewerCommand, WeftSerializable {
}
