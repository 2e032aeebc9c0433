package io.weft.actors.protocol;

import io.weft.actors.WeftSerializable;

/** The mapping is gone (released or the store restarted): the client must open again. */
public record UnknownMapping(String mappingId) implements HeartbeatReply, WeftSerializable {
}
