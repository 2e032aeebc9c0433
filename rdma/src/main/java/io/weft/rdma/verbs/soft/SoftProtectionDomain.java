package io.weft.rdma.verbs.soft;

import io.weft.rdma.verbs.Access;
import io.weft.rdma.verbs.MemoryRegion;
import io.weft.rdma.verbs.ProtectionDomain;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Registered regions of one domain. Registration is rare (control path) and copies the array; lookups on the data
 * path read a volatile array without locking.
 */
final class SoftProtectionDomain implements ProtectionDomain {
    private volatile SoftMemoryRegion[] regions = new SoftMemoryRegion[0];
    private volatile boolean closed;

    @Override
    public synchronized MemoryRegion register(ByteBuffer directBuffer, int access) {
        if (closed) {
            throw new IllegalStateException("protection domain closed");
        }
        if (!directBuffer.isDirect()) {
            throw new IllegalArgumentException("only direct buffers can be registered");
        }
        int key;
        do {
            key = ThreadLocalRandom.current().nextInt();
        } while (key == 0 || find(key) != null);
        SoftMemoryRegion region = new SoftMemoryRegion(directBuffer, key, access | Access.LOCAL_WRITE, this);
        SoftMemoryRegion[] next = Arrays.copyOf(regions, regions.length + 1);
        next[next.length - 1] = region;
        regions = next;
        return region;
    }

    synchronized void deregister(SoftMemoryRegion region) {
        SoftMemoryRegion[] current = regions;
        for (int i = 0; i < current.length; i++) {
            if (current[i] == region) {
                SoftMemoryRegion[] next = new SoftMemoryRegion[current.length - 1];
                System.arraycopy(current, 0, next, 0, i);
                System.arraycopy(current, i + 1, next, i, current.length - i - 1);
                regions = next;
                return;
            }
        }
    }

    /** The region with this rkey, or null. */
    SoftMemoryRegion find(int rkey) {
        SoftMemoryRegion[] current = regions;
        for (SoftMemoryRegion r : current) {
            if (r.rkey() == rkey) {
                return r;
            }
        }
        return null;
    }

    boolean owns(MemoryRegion region) {
        return region instanceof SoftMemoryRegion && region.protectionDomain() == this
                && ((SoftMemoryRegion) region).registered();
    }

    @Override
    public synchronized void close() {
        closed = true;
        regions = new SoftMemoryRegion[0];
    }
}
