package io.weft.actors.protocol;

import io.weft.actors.WeftSerializable;

/** From the backend to the client's session: it dropped the mapping (lease expired, channel moved); open again. */
public record MappingRevoked(String mappingId, String reason) implements SessionCommand, WeftSerializable {
}
