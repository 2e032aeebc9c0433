package io.weft.rdma.server;

import io.weft.core.io.BlockDevice;
import io.weft.rdma.verbs.MemoryRegion;
import io.weft.rdma.verbs.ProtectionDomain;
import java.nio.ByteBuffer;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * One client session on the storage side: its protection domain and the chunk pool registered once in it. Chunk i
 * is {@code [i * chunkSize, (i + 1) * chunkSize)} of the pool: request header, then payload.
 */
final class ServerSession {
    final String name;
    final String deviceName;
    /** The client node that proved the device's capability when the session was created; only it may join. */
    final String clientNode;
    final BlockDevice device;
    final long token;
    final int chunkCount;
    final int chunkSize;
    final int maxIoSize;
    final ProtectionDomain pd;
    final ByteBuffer pool;
    /** Direct memory of the pool, counted against weft.rdma.max-memory-per-client. */
    long poolBytes() {
        return pool.capacity();
    }

    final MemoryRegion poolRegion;
    /** Admin state per path id; control thread only. */
    final Map<Integer, ServerControl.AdminState> paths = new HashMap<>();
    final Set<ServerIoConnection> ioConnections = ConcurrentHashMap.newKeySet();
    final AtomicLong requests = new AtomicLong();
    final AtomicLong rejected = new AtomicLong();

    ServerSession(String name, String deviceName, String clientNode, BlockDevice device, long token, int chunkCount,
                  int chunkSize, int maxIoSize, ProtectionDomain pd, ByteBuffer pool, MemoryRegion poolRegion) {
        this.name = name;
        this.deviceName = deviceName;
        this.clientNode = clientNode;
        this.device = device;
        this.token = token;
        this.chunkCount = chunkCount;
        this.chunkSize = chunkSize;
        this.maxIoSize = maxIoSize;
        this.pd = pd;
        this.pool = pool;
        this.poolRegion = poolRegion;
    }
}
