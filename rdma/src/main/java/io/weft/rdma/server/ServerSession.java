package io.weft.rdma.server;

import io.weft.core.io.BlockDevice;
import io.weft.rdma.protocol.Grant;
import io.weft.rdma.verbs.MemoryRegion;
import io.weft.rdma.verbs.ProtectionDomain;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * One client session on the storage side: its protection domain, the chunk pool registered once in it, and the
 * devices the client opened inside it. Chunk i is {@code [i * chunkSize, (i + 1) * chunkSize)} of the pool: request
 * header, then payload. Every request names one of the session's devices by id (RequestHeader); the device table is
 * copy-on-write, written by the control thread only and read by the IO agents through one volatile read.
 */
final class ServerSession {
    /** Most devices one session holds open at once (the id's slot is 16 bits). */
    static final int MAX_DEVICES = 4096;

    final String name;
    /** The client node that proved the session's grant when the session was created; only it may join. */
    final String clientNode;
    /**
     * That node's identity (name and incarnation) the grant was bound to: devices opened here must be granted to it.
     */
    final String identity;
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
    /**
     * System.nanoTime when the control thread last heard any of this session's authenticated paths (a heartbeat or
     * any other admin message): the client's liveness on the data path, which the control plane counts as a lease
     * renewal of every device open here (issue 12). Written by the control thread, read by any.
     */
    volatile long lastHeardNanos = System.nanoTime();
    final AtomicLong rejected = new AtomicLong();
    /** Open devices by slot; replaced (never mutated) by the control thread. */
    private volatile SessionDevice[] devices = new SessionDevice[8];
    /** Reuse generation per slot (control thread only). */
    private int[] slotGenerations = new int[8];
    /** DEVICE_CLOSED notices not yet sent (control thread only): devices the storage node stopped serving. */
    final ArrayDeque<Integer> closedNotices = new ArrayDeque<>();

    ServerSession(String name, String clientNode, String identity, long token, int chunkCount, int chunkSize,
                  int maxIoSize, ProtectionDomain pd, ByteBuffer pool, MemoryRegion poolRegion) {
        this.name = name;
        this.clientNode = clientNode;
        this.identity = identity;
        this.token = token;
        this.chunkCount = chunkCount;
        this.chunkSize = chunkSize;
        this.maxIoSize = maxIoSize;
        this.pd = pd;
        this.pool = pool;
        this.poolRegion = poolRegion;
    }

    /** Agents: the device opened under {@code id}, or null (never opened, closed, or out of range). */
    SessionDevice device(int id) {
        SessionDevice[] table = devices;
        int slot = SessionDevice.slot(id);
        if (slot >= table.length) {
            return null;
        }
        SessionDevice d = table[slot];
        return d != null && d.id() == id ? d : null;
    }

    /** Control thread: the open device named {@code name}, or null. */
    SessionDevice deviceNamed(String name) {
        for (SessionDevice d : devices) {
            if (d != null && d.name().equals(name)) {
                return d;
            }
        }
        return null;
    }

    /** Control thread. @return the device opened, or null when the session already holds {@link #MAX_DEVICES} */
    SessionDevice open(String deviceName, BlockDevice device, Grant grant) {
        SessionDevice[] table = devices;
        int slot = -1;
        for (int i = 0; i < table.length; i++) {
            if (table[i] == null) {
                slot = i;
                break;
            }
        }
        if (slot < 0) {
            if (table.length >= MAX_DEVICES) {
                return null;
            }
            slot = table.length;
            table = java.util.Arrays.copyOf(table, Math.min(MAX_DEVICES, table.length * 2));
            slotGenerations = java.util.Arrays.copyOf(slotGenerations, table.length);
        } else {
            table = table.clone();
        }
        int generation = (slotGenerations[slot] + 1) & 0x7FFF; // keeps ids non-negative
        slotGenerations[slot] = generation;
        SessionDevice d = new SessionDevice((generation << 16) | slot, deviceName, device, grant);
        table[slot] = d;
        devices = table;
        return d;
    }

    /** Control thread: forgets the device; requests naming its id from now on are refused. @return it, or null */
    SessionDevice close(int id) {
        SessionDevice d = device(id);
        if (d == null) {
            return null;
        }
        SessionDevice[] table = devices.clone();
        table[SessionDevice.slot(id)] = null;
        devices = table;
        return d;
    }

    List<SessionDevice> openDevices() {
        List<SessionDevice> out = new ArrayList<>();
        for (SessionDevice d : devices) {
            if (d != null) {
                out.add(d);
            }
        }
        return out;
    }
}
