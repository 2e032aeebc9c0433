package io.weft.rdma.verbs.soft;

import io.weft.rdma.verbs.MemoryRegion;
import io.weft.rdma.verbs.ProtectionDomain;
import java.nio.ByteBuffer;
import org.agrona.BufferUtil;

/** A region of the software provider: the buffer's real address plus random keys, as an RNIC would hand out. */
final class SoftMemoryRegion implements MemoryRegion {
    private final ByteBuffer buffer;
    private final long address;
    private final int length;
    private final int key;
    private final int access;
    private final SoftProtectionDomain pd;
    private volatile boolean registered = true;

    SoftMemoryRegion(ByteBuffer directBuffer, int key, int access, SoftProtectionDomain pd) {
        this.buffer = directBuffer.duplicate().clear();
        this.address = BufferUtil.address(directBuffer);
        this.length = directBuffer.capacity();
        this.key = key;
        this.access = access;
        this.pd = pd;
    }

    @Override
    public ByteBuffer buffer() {
        return buffer;
    }

    @Override
    public long address() {
        return address;
    }

    @Override
    public int length() {
        return length;
    }

    @Override
    public int lkey() {
        return key;
    }

    @Override
    public int rkey() {
        return key;
    }

    int access() {
        return access;
    }

    boolean registered() {
        return registered;
    }

    @Override
    public ProtectionDomain protectionDomain() {
        return pd;
    }

    @Override
    public void close() {
        registered = false;
        pd.deregister(this);
    }

    /** True when {@code [remoteAddress, remoteAddress + len)} lies inside this region (no overflow possible). */
    boolean contains(long remoteAddress, int len) {
        long start = remoteAddress - address;
        return start >= 0 && start <= length && len >= 0 && len <= length - start;
    }
}
