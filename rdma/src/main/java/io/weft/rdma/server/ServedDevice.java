package io.weft.rdma.server;

import io.weft.core.io.BlockDevice;
import io.weft.rdma.protocol.Grant;

/**
 * A device the storage side serves and the one grant that may open sessions on it.
 *
 * @param device the device (the mapping's view of its backing store)
 * @param grant  who may open it: only a client that proves {@code grant}'s capability under its node name
 */
public record ServedDevice(BlockDevice device, Grant grant) {
}
