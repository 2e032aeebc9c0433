package io.weft.rdma.verbs;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * A protection domain: memory registered here may be the target of remote writes arriving on connections created
 * with this domain, and nowhere else. A session gets its own domain, so one session's keys never open another's
 * memory.
 */
public interface ProtectionDomain extends AutoCloseable {

    /**
     * Registers a direct buffer (its whole capacity) and returns the region with its keys.
     *
     * @param access {@link Access} bits
     */
    MemoryRegion register(ByteBuffer directBuffer, int access) throws IOException;

    /** Deregisters every region and releases the domain. */
    @Override
    void close();
}
