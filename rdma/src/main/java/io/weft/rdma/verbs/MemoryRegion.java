package io.weft.rdma.verbs;

import java.nio.ByteBuffer;

/**
 * A registered memory region. {@link #address()} is the virtual address peers put into write requests, {@link #rkey()}
 * the key that authorises them; a remote write must fall entirely inside {@code [address, address + length)}.
 */
public interface MemoryRegion extends AutoCloseable {

    /** The registered buffer (a view with position 0 and limit = capacity; callers must not move it). */
    ByteBuffer buffer();

    long address();

    int length();

    int lkey();

    int rkey();

    ProtectionDomain protectionDomain();

    /** Deregisters the region: later remote writes naming its key fail. */
    @Override
    void close();
}
