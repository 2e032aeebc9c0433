package io.weft.actors;

/**
 * Marker for every message that may cross nodes. Bound to Pekko's Jackson JSON serializer in {@code weft-pekko.conf}
 * ({@code pekko.actor.serialization-bindings}), so adding a cross-node message is: make it a record, implement this.
 */
public interface WeftSerializable {
}
