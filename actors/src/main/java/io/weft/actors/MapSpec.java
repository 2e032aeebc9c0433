package io.weft.actors;

/**
 * What a client asks for when it maps a device, as with IBNBD: a storage node, a path there, an access mode.
 *
 * @param deviceId    name of the device on this client node (also its NBD export name); letters, digits, {@code -_.}
 * @param storageNode the storage node's {@code weft.node.name}
 * @param path        backing store path on that node, absolute or relative to its first export root
 * @param mode        access mode
 * @param transport   transport name, or null/empty for {@code weft.transport.default}
 */
public record MapSpec(String deviceId, String storageNode, String path, AccessMode mode, String transport) {
    public MapSpec {
        if (deviceId == null || !deviceId.matches("[A-Za-z0-9][A-Za-z0-9._-]{0,63}")) {
            throw new IllegalArgumentException("device id must be 1-64 of [A-Za-z0-9._-] starting with a letter or"
                    + " digit: " + deviceId);
        }
        if (storageNode == null || storageNode.isBlank()) {
            throw new IllegalArgumentException("storage node missing");
        }
        if (path == null || path.isBlank()) {
            throw new IllegalArgumentException("path missing");
        }
        if (mode == null) {
            throw new IllegalArgumentException("access mode missing: use ro, rw or migration");
        }
    }

    public MapSpec withTransport(String t) {
        return new MapSpec(deviceId, storageNode, path, mode, t);
    }
}
