package io.weft.rdma;

import io.weft.core.io.BlockDevice;
import io.weft.rdma.protocol.Grant;
import io.weft.rdma.server.ServedDevice;
import java.util.Map;

/**
 * The grant the RDMA tests serve their devices under, as a storage node's control plane would make it. A storage
 * child process ({@link StorageProcess}) gets the parent's capability through {@link #ENV}, as a client node gets it
 * over the cluster.
 */
public final class TestGrants {
    static final String ENV = "WEFT_TEST_RDMA_CAPABILITY";
    public static final Grant GRANT = System.getenv(ENV) != null
            ? Grant.decode("test-client", "test-client#1", System.getenv(ENV))
            : Grant.issue("test-client", "test-client#1");

    private TestGrants() {
    }

    /** {@code name} served to {@link #GRANT}'s client. */
    public static Map<String, ServedDevice> served(String name, BlockDevice device) {
        return Map.of(name, new ServedDevice(device, GRANT));
    }
}
