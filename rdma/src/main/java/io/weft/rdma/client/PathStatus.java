package io.weft.rdma.client;

import java.net.InetSocketAddress;

/**
 * A snapshot of one path for status tables, HTTP and JMX.
 *
 * @param rttMicros   smoothed heartbeat round-trip time, or -1 before the first answer
 * @param completed   requests answered on this path
 * @param failedOver  requests moved off this path after it failed
 * @param reconnects  successful connects after the first
 */
public record PathStatus(int id, InetSocketAddress remote, InetSocketAddress local, PathState state, long rttMicros,
                         int inflight, long completed, long failedOver, long reconnects, String lastError) {
}
