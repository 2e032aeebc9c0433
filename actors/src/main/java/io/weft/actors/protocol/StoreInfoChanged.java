package io.weft.actors.protocol;

import io.weft.actors.WeftSerializable;
import io.weft.core.io.DeviceInfo;

/** From the backend to the client's session: the store was resized. */
public record StoreInfoChanged(String mappingId, DeviceInfo info) implements SessionCommand, WeftSerializable {
}
