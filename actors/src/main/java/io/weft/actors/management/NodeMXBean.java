package io.weft.actors.management;

/** JMX view of a node: {@code io.weft:type=Node,name=<node>}. */
public interface NodeMXBean {
    String getName();
    String[] getRoles();
    String[] getDeviceIds();
    String[] getBackendPaths();

    /** Maps a device (mode ro, rw or migration; transport empty for the default). */
    String map(String deviceId, String storageNode, String path, String mode, String transport);

    String createVolume(String storageNode, String path, long sizeBytes);

    String resize(String storageNode, String path, long newSizeBytes);
}
