package io.weft.actors.protocol;

/** A message a client's session actor (one device's association with one storage node) accepts. */
public interface SessionCommand {
}
