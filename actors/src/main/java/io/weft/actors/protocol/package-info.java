/**
 * The messages that cross between a client node and a storage node, as top-level serializable records, and the
 * message types of the actors that receive them ({@link io.weft.actors.protocol.StorageServiceCommand},
 * {@link io.weft.actors.protocol.BackendCommand}, {@link io.weft.actors.protocol.SessionCommand},
 * {@link io.weft.actors.protocol.LeaseRenewerCommand}). The {@code client} and {@code storage} packages both depend
 * on this one and never on each other.
 *
 * <p>Every record here implements {@link io.weft.actors.WeftSerializable}, which the serializer bindings
 * ({@code pekko.actor.serialization-bindings} in {@code reference.conf} and {@code weft-pekko.conf}) bind to Pekko's
 * Jackson JSON serializer. Jackson's manifest is the class name, so a node and a node of a version from before these
 * classes moved here do not understand each other's client/storage messages: upgrade every node of a cluster together.
 */
package io.weft.actors.protocol;
