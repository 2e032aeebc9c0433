package io.weft.rdma.faults;

import io.weft.core.store.FileBackingStore;
import io.weft.core.store.StoreBlockDevice;
import io.weft.rdma.TestGrants;
import io.weft.rdma.client.PathSpec;
import io.weft.rdma.client.RdmaClientConfig;
import io.weft.rdma.client.RdmaSession;
import io.weft.rdma.server.RdmaServer;
import io.weft.rdma.server.RdmaServerConfig;
import io.weft.rdma.verbs.soft.SoftwareProvider;
import io.weft.testkit.Closing;
import io.weft.testkit.CompletionHoldingBlockDevice;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

/**
 * A software-RDMA server exporting {@code vol0} from a sparse 1 MiB file behind a
 * {@link CompletionHoldingBlockDevice} (so a test decides when the storage side's answers leave), and one session
 * to it over one path.
 */
public record HeldAnswerServer(SoftwareProvider provider, StoreBlockDevice store, CompletionHoldingBlockDevice holding,
                               RdmaServer server, RdmaSession session) implements AutoCloseable {

    public static HeldAnswerServer open(Path dir, String client, RdmaClientConfig config) throws Exception {
        SoftwareProvider provider = new SoftwareProvider();
        StoreBlockDevice store = null;
        CompletionHoldingBlockDevice holding = null;
        RdmaServer server = null;
        try {
            store = new StoreBlockDevice(FileBackingStore.createSparse(dir.resolve("d"), 1 << 20));
            holding = new CompletionHoldingBlockDevice(store);
            server = RdmaServer.start(provider, RdmaServerConfig.DEFAULTS, TestGrants.served("vol0", holding),
                    List.of(new InetSocketAddress("127.0.0.1", 0)));
            RdmaSession session = RdmaSession.open(provider, client, "vol0", TestGrants.GRANT,
                    List.of(PathSpec.to(server.listenAddresses().get(0))), config);
            return new HeldAnswerServer(provider, store, holding, server, session);
        } catch (Exception | Error e) {
            Closing.closeAfterFailure(e, Arrays.asList(provider, store, holding, server));
            throw e;
        }
    }

    /** In the order a try-with-resources over the five would close them: the session first. */
    @Override
    public void close() throws Exception {
        Closing.closeReversed(provider, store, holding, server, session);
    }
}
