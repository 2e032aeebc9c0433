package io.weft.actors.protocol;

/** The answer to {@link Heartbeat}: {@link MappingAlive} or {@link UnknownMapping}. */
public interface HeartbeatReply {
}
