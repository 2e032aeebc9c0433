package io.weft.actors.protocol;

import io.weft.actors.WeftSerializable;
import io.weft.core.io.DeviceInfo;

/** The mapping is alive; carries the current geometry so a resize always reaches the client. */
public record MappingAlive(String mappingId, DeviceInfo info) implements HeartbeatReply, WeftSerializable {
}
