package io.weft.rdma.server;

import io.weft.core.io.BlockDevice;
import io.weft.rdma.protocol.Grant;

/**
 * A device opened inside one session (DEVICE_OPEN after its mapping capability was proven). Immutable; the session's
 * table holds it until the client closes it or the storage node stops serving it.
 *
 * @param id     what requests name in their header: slot (low 16 bits) | the slot's reuse generation (high 16 bits),
 *               so a late request for a closed device never reaches the next device opened in that slot
 * @param name   the served device's name (the mapping id)
 * @param device the device requests run against
 * @param grant  the mapping grant proven when it was opened
 */
record SessionDevice(int id, String name, BlockDevice device, Grant grant) {
    static int slot(int id) {
        return id & 0xFFFF;
    }
}
