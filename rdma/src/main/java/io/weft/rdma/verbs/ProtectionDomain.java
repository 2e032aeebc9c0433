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
     * Registers a direct buffer (its whole capacity). With real verbs a domain belongs to one RDMA device, which is
     * known only once a connection of the domain exists or {@link #bindTo} names one: until then the region's keys
     * are not available (its address is).
     *
     * @param access {@link Access} bits
     */
    MemoryRegion register(ByteBuffer directBuffer, int access) throws IOException;

    /** Binds the domain to the device {@code connection} runs on (no-op for the software provider). */
    default void bindTo(VerbsConnection connection) throws IOException {
    }

    /** Deregisters every region and releases the domain. */
    @Override
    void close();
}
