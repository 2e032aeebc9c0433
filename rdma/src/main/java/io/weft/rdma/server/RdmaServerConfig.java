package io.weft.rdma.server;

import java.time.Duration;

/**
 * Storage-side limits.
 *
 * @param maxQueueDepth     most chunks one session may ask for
 * @param maxIoSize         largest IO payload per chunk (a session's pool is queue depth x this, plus headers)
 * @param agents            IO agent threads polling the sessions' IO connections
 * @param heartbeatTimeout  an admin connection silent this long is closed with its path
 * @param handshakeTimeout  an admin connection that has not proven a capability (OPEN_OK) this long after it was
 *                          accepted is closed ({@code weft.rdma.handshake-timeout})
 * @param maxUnauthenticatedPerAddress admin connections from one remote address that have not authenticated yet;
 *                          more are rejected at connect ({@code weft.rdma.max-unauthenticated-per-address})
 * @param maxSessionsPerClient sessions one client node may hold open ({@code weft.rdma.max-sessions-per-client})
 * @param maxMemoryPerClient bytes of chunk pools (direct memory, registered) one client node's sessions may hold
 *                          together ({@code weft.rdma.max-memory-per-client})
 */
public record RdmaServerConfig(int maxQueueDepth, int maxIoSize, int agents, Duration heartbeatTimeout,
                               Duration handshakeTimeout, int maxUnauthenticatedPerAddress, int maxSessionsPerClient,
                               long maxMemoryPerClient) {
    public static final RdmaServerConfig DEFAULTS = new RdmaServerConfig(512, 128 * 1024, 1, Duration.ofSeconds(3),
            Duration.ofSeconds(5), 16, 128, 1L << 30);

    public RdmaServerConfig {
        if (maxQueueDepth < 1 || maxQueueDepth > io.weft.rdma.protocol.Immediate.MAX_CHUNKS) {
            throw new IllegalArgumentException("maxQueueDepth out of range: " + maxQueueDepth);
        }
        if (maxIoSize < 512 || agents < 1) {
            throw new IllegalArgumentException("maxIoSize >= 512 and agents >= 1 required");
        }
        if (handshakeTimeout.isNegative() || handshakeTimeout.isZero()) {
            throw new IllegalArgumentException("weft.rdma.handshake-timeout must be positive");
        }
        if (maxUnauthenticatedPerAddress < 1) {
            throw new IllegalArgumentException("weft.rdma.max-unauthenticated-per-address must be at least 1");
        }
        if (maxSessionsPerClient < 1) {
            throw new IllegalArgumentException("weft.rdma.max-sessions-per-client must be at least 1");
        }
        if (maxMemoryPerClient < 1) {
            throw new IllegalArgumentException("weft.rdma.max-memory-per-client must be positive");
        }
    }

    public RdmaServerConfig withAgents(int n) {
        return new RdmaServerConfig(maxQueueDepth, maxIoSize, n, heartbeatTimeout, handshakeTimeout,
                maxUnauthenticatedPerAddress, maxSessionsPerClient, maxMemoryPerClient);
    }

    public RdmaServerConfig withHeartbeatTimeout(Duration d) {
        return new RdmaServerConfig(maxQueueDepth, maxIoSize, agents, d, handshakeTimeout,
                maxUnauthenticatedPerAddress, maxSessionsPerClient, maxMemoryPerClient);
    }

    /** The per-peer limits ({@code weft.rdma.*}, see docs/configuration.md). */
    public RdmaServerConfig withPeerLimits(Duration handshake, int unauthenticatedPerAddress, int sessionsPerClient,
                                           long memoryPerClient) {
        return new RdmaServerConfig(maxQueueDepth, maxIoSize, agents, heartbeatTimeout, handshake,
                unauthenticatedPerAddress, sessionsPerClient, memoryPerClient);
    }
}
