package io.weft.actors.management;

/** JMX view of one client device: {@code io.weft:type=Device,node=<node>,name=<device id>}. */
public interface DeviceMXBean {
    String getId();
    String getState();
    String getStorageNode();
    String getPath();
    String getMode();
    String getTransport();
    String getExport();
    String getLastError();
    long getSize();
    long getInFlight();
    long getReconnects();
    long getReads();
    long getWrites();
    long getBytesRead();
    long getBytesWritten();
    long getErrors();
    double getReadLatencyP50Micros();
    double getReadLatencyP99Micros();
    double getWriteLatencyP50Micros();
    double getWriteLatencyP99Micros();
    String getSessionState();
    long getLastHeartbeatAgoMillis();

    /** Mirror legs: 0 for a single-leg device. */
    int getLegCount();

    /** True while a mirrored device has a leg that is not in sync. */
    boolean isDegraded();

    /** The current or last resync of a mirrored device, 0-100 (100 when none ran). */
    int getResyncPercent();

    /** Unmaps; {@code force} fails in-flight IO with EIO. Returns what happened. */
    String unmap(boolean force);

    /** Drops the path and opens it again. */
    String remap();

    /** Mirrored devices: adds a leg ({@code storage} node, {@code path} there); full sync in the background. */
    String addLeg(String storage, String path);

    /** Mirrored devices: removes the leg at {@code index} (refused for the last in-sync leg). */
    String removeLeg(int index);

    /**
     * Mirrored devices: resyncs the leg at {@code index} from an in-sync leg in the background; {@code full} copies
     * every region, else only those the write-intent bitmap marks. Refused for the only in-sync leg (the source).
     */
    String resyncLeg(int index, boolean full);

    /** Reads the first block through the device; returns status and latency (waits up to the io-timeout). */
    String probe();
}
