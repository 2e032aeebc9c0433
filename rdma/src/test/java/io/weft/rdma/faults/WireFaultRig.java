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
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * A software-RDMA server exporting {@code vol0} from a sparse file, listening on 127.0.0.1, 127.0.0.2, … (one address
 * per path), and one session to it whose client side goes through a {@link WireFaultProvider}, so a test can hold or
 * drop each path's frames. The storage side's heartbeat timeout is far away (120 s): it keeps serving a path whose
 * frames a test holds back, which is the window these tests are about.
 */
public final class WireFaultRig implements AutoCloseable {
    public final SoftwareProvider serverProvider;
    public final WireFaultProvider clientProvider;
    public final StoreBlockDevice store;
    public final RdmaServer server;
    public final RdmaSession session;

    private WireFaultRig(SoftwareProvider serverProvider, WireFaultProvider clientProvider, StoreBlockDevice store,
                         RdmaServer server, RdmaSession session) {
        this.serverProvider = serverProvider;
        this.clientProvider = clientProvider;
        this.store = store;
        this.server = server;
        this.session = session;
    }

    /** Opens the rig: {@code paths} listen addresses, a session over all of them named {@code sessionName}. */
    public static WireFaultRig open(Path file, long size, int paths, String sessionName, RdmaClientConfig config)
            throws Exception {
        List<AutoCloseable> opened = new ArrayList<>();
        try {
            SoftwareProvider serverProvider = add(opened, new SoftwareProvider());
            WireFaultProvider clientProvider = add(opened, new WireFaultProvider(new SoftwareProvider()));
            StoreBlockDevice store = add(opened, new StoreBlockDevice(FileBackingStore.createSparse(file, size)));
            List<InetSocketAddress> listen = new ArrayList<>();
            for (int i = 1; i <= paths; i++) {
                listen.add(new InetSocketAddress("127.0.0." + i, 0));
            }
            RdmaServer server = add(opened, RdmaServer.start(serverProvider,
                    RdmaServerConfig.DEFAULTS.withHeartbeatTimeout(Duration.ofSeconds(120)),
                    TestGrants.served("vol0", store), listen));
            List<PathSpec> pathSpecs = server.listenAddresses().stream().map(PathSpec::to).toList();
            RdmaSession session = RdmaSession.open(clientProvider, sessionName, "vol0", TestGrants.GRANT, pathSpecs,
                    config);
            return new WireFaultRig(serverProvider, clientProvider, store, server, session);
        } catch (Exception | Error e) {
            Closing.closeAfterFailure(e, opened);
            throw e;
        }
    }

    /** Closes in the order a try-with-resources over the five would: the session first, the server's provider last. */
    @Override
    public void close() throws Exception {
        Closing.closeReversed(serverProvider, clientProvider, store, server, session);
    }

    private static <T extends AutoCloseable> T add(List<AutoCloseable> opened, T resource) {
        opened.add(resource);
        return resource;
    }
}
