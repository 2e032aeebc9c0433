package io.weft.actors.transport;

import io.weft.core.io.BlockDevice;

/**
 * Client side: a connected path to one mapping. {@link #device()} is the BlockDevice IO is submitted to; it completes
 * requests it can no longer carry with {@link io.weft.core.io.IoStatus#ESHUTDOWN} so the device can retry them on the
 * next path.
 */
public interface ClientChannel extends DataChannel {
    BlockDevice device();

    /**
     * The transport that actually carries this channel (for {@code auto}, the one it chose), or null for the
     * transport the map asked for.
     */
    default String transportName() {
        return null;
    }
}
