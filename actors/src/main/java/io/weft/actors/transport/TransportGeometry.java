package io.weft.actors.transport;

import io.weft.core.io.DeviceInfo;

/** The geometry a client device reports: the storage node's, limited by what its channel can carry per request. */
public final class TransportGeometry {
    private TransportGeometry() {
    }

    /**
     * @param storage what the storage node's open reply (or a heartbeat) says
     * @param channel the connected channel's own device info (RDMA chunk size, CXL data slot size)
     * @return {@code storage} with {@code maxIoSize} no larger than the channel's, so the NBD export advertises a
     *         maximum block size every request of which the path accepts
     */
    public static DeviceInfo narrow(DeviceInfo storage, DeviceInfo channel) {
        if (channel == null || channel.maxIoSize() >= storage.maxIoSize()) {
            return storage;
        }
        int maxIo = Math.max(channel.maxIoSize(), storage.logicalBlockSize());
        int preferred = Math.min(storage.preferredBlockSize(), Integer.highestOneBit(maxIo));
        preferred = Math.max(preferred, storage.logicalBlockSize());
        return new DeviceInfo(storage.size(), storage.logicalBlockSize(), preferred, maxIo, storage.readOnly(),
                storage.canFlush(), storage.canFua(), storage.canDiscard(), storage.canWriteZeroes(),
                storage.canFastZero(), storage.rotational(), storage.flushCoversAllConnections());
    }
}
