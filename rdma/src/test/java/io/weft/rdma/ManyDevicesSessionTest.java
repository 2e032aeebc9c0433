package io.weft.rdma;

import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.IoStatus;
import io.weft.core.store.FileBackingStore;
import io.weft.core.store.StoreBlockDevice;
import io.weft.rdma.client.PathSpec;
import io.weft.rdma.client.RdmaBlockDevice;
import io.weft.rdma.client.RdmaClientConfig;
import io.weft.rdma.client.RdmaSession;
import io.weft.rdma.protocol.Grant;
import io.weft.rdma.server.RdmaServer;
import io.weft.rdma.server.RdmaServerConfig;
import io.weft.rdma.server.ServedDevice;
import io.weft.rdma.verbs.soft.SoftwareProvider;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * One session per client and storage node, shared by a hundred devices (issue #12): each device opened inside the
 * session with its own grant, verified IO through several at once, one closed mid-load without failing the others,
 * every request landing in its own device's store, and the client's threads not growing with the device count.
 */
class ManyDevicesSessionTest {
    private static final int DEVICES = 100;
    private static final long SIZE = 2L << 20;
    private static final Duration WAIT = Duration.ofSeconds(30);
    private static final String CLIENT = "test-client";
    private static final String IDENTITY = "test-client#1";

    @TempDir
    Path dir;

    /** Threads of this JVM that belong to RDMA clients (sessions' control threads and queue agents). */
    private static long clientThreads() {
        return Thread.getAllStackTraces().keySet().stream()
                .filter(t -> t.isAlive() && t.getName().startsWith("weft-rdma-client")).count();
    }

    @Test
    void aHundredDevicesShareOneSession() throws Exception {
        List<StoreBlockDevice> stores = new ArrayList<>();
        Map<String, ServedDevice> served = new HashMap<>();
        for (int i = 0; i < DEVICES; i++) {
            StoreBlockDevice store = new StoreBlockDevice(FileBackingStore.createSparse(dir.resolve("d" + i), SIZE));
            stores.add(store);
            served.put("vol" + i, new ServedDevice(store, Grant.issue(CLIENT, IDENTITY)));
        }
        long threadsBefore = clientThreads();
        try (SoftwareProvider provider = new SoftwareProvider();
             RdmaServer server = RdmaServer.start(provider, RdmaServerConfig.DEFAULTS, served,
                     List.of(new InetSocketAddress("127.0.0.1", 0), new InetSocketAddress("127.0.0.2", 0)))) {
            List<PathSpec> paths = server.listenAddresses().stream().map(PathSpec::to).toList();
            try (RdmaSession session = RdmaSession.open(provider, "multi", server.sessionGrant(CLIENT, IDENTITY),
                    paths, RdmaClientConfig.DEFAULTS.withQueueDepth(32))) {
                List<RdmaBlockDevice> devices = new ArrayList<>();
                devices.add(session.openDevice("vol0", served.get("vol0").grant()));
                long threadsWithOne = clientThreads();
                for (int i = 1; i < DEVICES; i++) {
                    devices.add(session.openDevice("vol" + i, served.get("vol" + i).grant()));
                }
                assertEquals(threadsWithOne, clientThreads(), "client threads grew with the devices (before the"
                        + " session: " + threadsBefore + ", with one device: " + threadsWithOne + ")");
                List<RdmaServer.SessionStatus> sessions = server.sessions();
                assertEquals(1, sessions.size(), "one storage session for every device: " + sessions.size());
                assertEquals(DEVICES, sessions.get(0).devices().size());
                assertEquals(2, sessions.get(0).paths());

                // Verified load through five devices at once; one of them is closed while its load runs.
                int[] loaded = {0, 37, 50, 73, DEVICES - 1};
                int closing = 50;
                Map<Integer, VerifyingLoad> loads = new HashMap<>();
                for (int i : loaded) {
                    VerifyingLoad load = new VerifyingLoad(devices.get(i), 3, 192);
                    loads.put(i, load);
                    load.start();
                }
                for (int i : loaded) {
                    VerifyingLoad load = loads.get(i);
                    await("load on vol" + i + " going", WAIT, () -> load.completed() > 300);
                }
                devices.get(closing).close();
                assertTrue(session.devices().stream().noneMatch(d -> d.name().equals("vol" + closing)));
                await("vol" + closing + " closed on the storage side", WAIT, () -> !server.sessions().get(0)
                        .devices().contains("vol" + closing));
                long[] after = new long[loaded.length];
                for (int k = 0; k < loaded.length; k++) {
                    after[k] = loads.get(loaded[k]).completed();
                }
                for (int k = 0; k < loaded.length; k++) {
                    if (loaded[k] == closing) {
                        continue;
                    }
                    VerifyingLoad load = loads.get(loaded[k]);
                    long mark = after[k];
                    await("load on vol" + loaded[k] + " going after the close", WAIT,
                            () -> load.completed() > mark + 300);
                }
                for (int i : loaded) {
                    loads.get(i).stop();
                }
                for (int i : loaded) {
                    if (i == closing) {
                        // Its own load ends with ESHUTDOWN (closed under it), nothing else.
                        for (String f : loads.get(i).failures()) {
                            assertTrue(f.endsWith(IoStatus.name(IoStatus.ESHUTDOWN)), f);
                        }
                        continue;
                    }
                    loads.get(i).verifyAll();
                    assertTrue(loads.get(i).failures().isEmpty(), "vol" + i + ": " + loads.get(i).failures());
                }
                assertEquals(IoStatus.ESHUTDOWN, TestIo.io(devices.get(closing), io.weft.core.io.IoOp.FLUSH, 0,
                        null), "a closed device takes no more requests");

                // The storage node stops serving one device: its client is told (DEVICE_CLOSED), the others go on.
                int withdrawn = DEVICES - 1;
                server.removeDevice("vol" + withdrawn);
                RdmaBlockDevice gone = devices.get(withdrawn);
                await("vol" + withdrawn + " told it is no longer served", WAIT, () -> gone.failure() != null);
                assertEquals(IoStatus.ESHUTDOWN, TestIo.io(gone, io.weft.core.io.IoOp.FLUSH, 0, null));

                // Every device's requests land in its own store: a signature per device, read back from the stores.
                long signatureAt = SIZE - 4096;
                for (int i = 0; i < DEVICES; i++) {
                    if (i != closing && i != withdrawn) {
                        TestIo.write(devices.get(i), signatureAt, TestIo.pattern(i, 7, 4096));
                    }
                }
                for (int i = 0; i < DEVICES; i++) {
                    byte[] expected = i == closing || i == withdrawn ? new byte[4096] : TestIo.pattern(i, 7, 4096);
                    assertArrayEquals(expected, TestIo.read(stores.get(i), signatureAt, 4096), "store of vol" + i);
                }
                assertEquals(0, session.paths().get(0).reconnects() + session.paths().get(1).reconnects(),
                        "a device's close disturbed the session's paths");
                assertNull(devices.get(0).failure());
            }
            await("the storage session closed with the client's", WAIT, () -> server.sessions().isEmpty());
        } finally {
            for (StoreBlockDevice s : stores) {
                s.close();
            }
        }
        long threadsAfter = clientThreads();
        assertFalse(threadsAfter > threadsBefore, "client threads left behind: " + threadsAfter + " > "
                + threadsBefore);
    }

    @Test
    void everyDeviceIsOpenedAgainInANewStorageSessionAndOneRefusedFailsAlone() throws Exception {
        List<StoreBlockDevice> stores = new ArrayList<>();
        Map<String, ServedDevice> served = new HashMap<>();
        for (int i = 0; i < 3; i++) {
            StoreBlockDevice store = new StoreBlockDevice(FileBackingStore.createSparse(dir.resolve("r" + i), SIZE));
            stores.add(store);
            served.put("vol" + i, new ServedDevice(store, Grant.issue(CLIENT, IDENTITY)));
        }
        byte[] secret = io.weft.rdma.protocol.Capability.generate(); // the storage node's, kept across its restart
        try (SoftwareProvider provider = new SoftwareProvider()) {
            RdmaServer first = RdmaServer.start(provider, RdmaServerConfig.DEFAULTS, served,
                    List.of(new InetSocketAddress("127.0.0.1", 0)), secret);
            InetSocketAddress address = first.listenAddresses().get(0);
            try (RdmaSession session = RdmaSession.open(provider, "restart", first.sessionGrant(CLIENT, IDENTITY),
                    List.of(PathSpec.to(address)), RdmaClientConfig.DEFAULTS.withQueueDepth(8))) {
                List<RdmaBlockDevice> devices = new ArrayList<>();
                for (int i = 0; i < 3; i++) {
                    devices.add(session.openDevice("vol" + i, served.get("vol" + i).grant()));
                    TestIo.write(devices.get(i), 0, TestIo.pattern(i, 1, 4096));
                }
                first.close();
                // The storage node comes back on the same address serving two of the three devices: the session
                // reconnects into a new storage session, opens every device again, and vol2 alone fails.
                Map<String, ServedDevice> again = new HashMap<>(served);
                again.remove("vol2");
                try (RdmaServer second = RdmaServer.start(provider, RdmaServerConfig.DEFAULTS, again,
                        List.of(address), secret)) {
                    for (int i = 0; i < 2; i++) {
                        assertArrayEquals(TestIo.pattern(i, 1, 4096), TestIo.read(devices.get(i), 0, 4096),
                                "vol" + i + " after the storage restart");
                    }
                    await("vol2 refused when opened again", WAIT, () -> devices.get(2).failure() != null);
                    assertTrue(devices.get(2).failure().contains("refused"), devices.get(2).failure());
                    assertEquals(IoStatus.ESHUTDOWN, TestIo.io(devices.get(2), io.weft.core.io.IoOp.FLUSH, 0,
                            null));
                    assertEquals(List.of("vol0", "vol1"), second.sessions().get(0).devices().stream().sorted()
                            .toList());
                    TestIo.write(devices.get(1), 4096, TestIo.pattern(1, 2, 4096));
                    assertArrayEquals(TestIo.pattern(1, 2, 4096), TestIo.read(stores.get(1), 4096, 4096));
                }
            }
        } finally {
            for (StoreBlockDevice s : stores) {
                s.close();
            }
        }
    }
}
