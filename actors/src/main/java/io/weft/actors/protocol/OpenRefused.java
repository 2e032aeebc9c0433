package io.weft.actors.protocol;

import io.weft.actors.WeftSerializable;

/**
 * @param permanent true when retrying cannot help (path refused, mode conflict, unknown transport); false when
 *                  it may (serving failed, store busy restarting)
 */
public record OpenRefused(String reason, boolean permanent) implements OpenReply, WeftSerializable {
}
