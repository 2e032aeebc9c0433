package io.weft.actors.transport;

import io.weft.core.io.BlockDevice;

/**
 * Client side: a connected path to one mapping. {@link #device()} is the BlockDevice IO is submitted to; it completes
 * requests it can no longer carry with {@link io.weft.core.io.IoStatus#ESHUTDOWN} so the device can retry them on the
 * next path.
 */
public interface MappingChannel extends DataChannel {
    BlockDevice device();

    /**
     * The transport that actually carries this channel (for {@code auto}, the one it chose), or null for the
     * transport the map asked for.
     */
    default String transportName() {
        return null;
    }

    /**
     * True when this channel's data path proves this process's liveness to the storage node on its own (RDMA admin
     * heartbeats, CXL blkdev heartbeats): a storage node that counts it as a lease renewal (StoreOpened says so) needs
     * renewal messages only as a slow audit (issue 12).
     */
    default boolean carriesLiveness() {
        return false;
    }

    /** How many transport paths carry this channel (an RDMA session has one per storage listen address). */
    default int pathCount() {
        return 1;
    }

    /**
     * Takes one path down until {@link #reconnectPath}; its requests move to the other paths (drills). Only for a
     * channel with more than one path.
     *
     * @param index 0-based, below {@link #pathCount()}
     */
    default void disconnectPath(int index) {
        throw new UnsupportedOperationException("this channel has a single transport path");
    }

    /** Brings a path taken down by {@link #disconnectPath} back. */
    default void reconnectPath(int index) {
        throw new UnsupportedOperationException("this channel has a single transport path");
    }
}
