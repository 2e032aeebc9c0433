package io.weft.actors.protocol;

/** A message a storage node's backend actor (one opened backing store) accepts. */
public interface BackendCommand {
}
