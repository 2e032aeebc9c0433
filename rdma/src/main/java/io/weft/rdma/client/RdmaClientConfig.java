package io.weft.rdma.client;

import java.time.Duration;

/**
 * Client-side session settings. Defaults: 64 permits of 128 KiB (an 8 MiB pool per session on each side, far below
 * RTRS's 64 MiB), one IO connection per path, min-inflight path choice, heartbeats every 250 ms.
 *
 * @param queueDepth         permits = chunks in the storage side's pool
 * @param maxIoSize          largest READ/WRITE payload per request
 * @param queuesPerPath      IO connections per path; each has its own agent thread on the client
 * @param policy             how a request picks a path
 * @param heartbeatInterval  admin-connection heartbeat period (RTT measurement)
 * @param heartbeatTimeout   a path without heartbeat answers this long is failed over and reconnected
 * @param connectTimeout     connect + session open budget per attempt
 * @param reconnectInitial   first reconnect delay; doubles per failed attempt, with jitter
 * @param reconnectMax       ceiling of the reconnect delay
 * @param ioTimeout          a request not answered this long after submission completes with ETIMEDOUT
 */
public record RdmaClientConfig(int queueDepth, int maxIoSize, int queuesPerPath, PathPolicy policy,
                               Duration heartbeatInterval, Duration heartbeatTimeout, Duration connectTimeout,
                               Duration reconnectInitial, Duration reconnectMax, Duration ioTimeout) {

    public static final RdmaClientConfig DEFAULTS = new RdmaClientConfig(64, 128 * 1024, 1, PathPolicy.MIN_INFLIGHT,
            Duration.ofMillis(250), Duration.ofMillis(2000), Duration.ofSeconds(1), Duration.ofMillis(50),
            Duration.ofSeconds(5), Duration.ofSeconds(30));

    public RdmaClientConfig {
        if (queueDepth < 1 || queueDepth > io.weft.rdma.protocol.Immediate.MAX_CHUNKS) {
            throw new IllegalArgumentException("queueDepth out of range: " + queueDepth);
        }
        if (maxIoSize < 512 || queuesPerPath < 1 || queuesPerPath > 255 || queuesPerPath > queueDepth) {
            throw new IllegalArgumentException("maxIoSize >= 512 and 1 <= queuesPerPath <= min(255, queueDepth)");
        }
        if (heartbeatTimeout.compareTo(heartbeatInterval.multipliedBy(2)) < 0) {
            throw new IllegalArgumentException("heartbeatTimeout must be at least two heartbeat intervals");
        }
    }

    public RdmaClientConfig withQueueDepth(int n) {
        return new RdmaClientConfig(n, maxIoSize, queuesPerPath, policy, heartbeatInterval, heartbeatTimeout,
                connectTimeout, reconnectInitial, reconnectMax, ioTimeout);
    }

    public RdmaClientConfig withMaxIoSize(int n) {
        return new RdmaClientConfig(queueDepth, n, queuesPerPath, policy, heartbeatInterval, heartbeatTimeout,
                connectTimeout, reconnectInitial, reconnectMax, ioTimeout);
    }

    public RdmaClientConfig withQueuesPerPath(int n) {
        return new RdmaClientConfig(queueDepth, maxIoSize, n, policy, heartbeatInterval, heartbeatTimeout,
                connectTimeout, reconnectInitial, reconnectMax, ioTimeout);
    }

    public RdmaClientConfig withPolicy(PathPolicy p) {
        return new RdmaClientConfig(queueDepth, maxIoSize, queuesPerPath, p, heartbeatInterval, heartbeatTimeout,
                connectTimeout, reconnectInitial, reconnectMax, ioTimeout);
    }

    public RdmaClientConfig withIoTimeout(Duration d) {
        return new RdmaClientConfig(queueDepth, maxIoSize, queuesPerPath, policy, heartbeatInterval,
                heartbeatTimeout, connectTimeout, reconnectInitial, reconnectMax, d);
    }

    public RdmaClientConfig withReconnect(Duration initial, Duration max) {
        return new RdmaClientConfig(queueDepth, maxIoSize, queuesPerPath, policy, heartbeatInterval,
                heartbeatTimeout, connectTimeout, initial, max, ioTimeout);
    }
}
