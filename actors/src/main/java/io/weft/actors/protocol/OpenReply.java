package io.weft.actors.protocol;

/** The answer to {@link OpenStore}: {@link StoreOpened} or {@link OpenRefused}. */
public interface OpenReply {
}
