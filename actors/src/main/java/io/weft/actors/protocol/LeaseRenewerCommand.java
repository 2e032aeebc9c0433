package io.weft.actors.protocol;

/** A message a client node's lease renewer accepts. */
public interface LeaseRenewerCommand {
}
