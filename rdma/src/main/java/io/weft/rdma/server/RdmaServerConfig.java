package io.weft.rdma.server;

import java.time.Duration;

/**
 * Storage-side limits.
 *
 * @param maxQueueDepth     most chunks one session may ask for
 * @param maxIoSize         largest IO payload per chunk (a session's pool is queue depth x this, plus headers)
 * @param agents            IO agent threads polling the sessions' IO connections
 * @param heartbeatTimeout  an admin connection silent this long is closed with its path
 */
public record RdmaServerConfig(int maxQueueDepth, int maxIoSize, int agents, Duration heartbeatTimeout) {
    public static final RdmaServerConfig DEFAULTS = new RdmaServerConfig(512, 128 * 1024, 1, Duration.ofSeconds(3));

    public RdmaServerConfig {
        if (maxQueueDepth < 1 || maxQueueDepth > io.weft.rdma.protocol.Immediate.MAX_CHUNKS) {
            throw new IllegalArgumentException("maxQueueDepth out of range: " + maxQueueDepth);
        }
        if (maxIoSize < 512 || agents < 1) {
            throw new IllegalArgumentException("maxIoSize >= 512 and agents >= 1 required");
        }
    }

    public RdmaServerConfig withAgents(int n) {
        return new RdmaServerConfig(maxQueueDepth, maxIoSize, n, heartbeatTimeout);
    }

    public RdmaServerConfig withHeartbeatTimeout(Duration d) {
        return new RdmaServerConfig(maxQueueDepth, maxIoSize, agents, d);
    }
}
