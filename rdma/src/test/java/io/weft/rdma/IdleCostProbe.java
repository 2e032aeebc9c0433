package io.weft.rdma;

import io.weft.core.store.FileBackingStore;
import io.weft.core.store.StoreBlockDevice;
import io.weft.rdma.client.PathSpec;
import io.weft.rdma.client.RdmaClientConfig;
import io.weft.rdma.client.RdmaSession;
import io.weft.rdma.protocol.Grant;
import io.weft.rdma.server.RdmaServer;
import io.weft.rdma.server.RdmaServerConfig;
import io.weft.rdma.server.ServedDevice;
import io.weft.rdma.verbs.soft.SoftwareProvider;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * A measurement, not a test (nothing asserted): idle CPU (utime + stime of this JVM from /proc/self/stat over 20 s),
 * thread count, heap in use and RSS with 1 and with 100 devices open in one session, and for comparison with 100
 * single-device sessions (one per mapping, the shape before sessions were shared); storage and client in this JVM,
 * software provider on loopback. Run with {@code -Dweft.rdma.measureIdle=true -Dtest=IdleCostProbe}.
 */
@EnabledIfSystemProperty(named = "weft.rdma.measureIdle", matches = "true")
class IdleCostProbe {
    private static long cpuTicks() throws Exception {
        String stat = Files.readString(Path.of("/proc/self/stat"));
        String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        return Long.parseLong(f[11]) + Long.parseLong(f[12]); // utime, stime (fields 14, 15)
    }

    @Test
    void idleCostWithOneAndAHundredDevices() throws Exception {
        Path dir = Files.createTempDirectory("idle");
        Map<String, ServedDevice> served = new HashMap<>();
        for (int i = 0; i < 100; i++) {
            served.put("vol" + i, new ServedDevice(new StoreBlockDevice(FileBackingStore.createSparse(
                    dir.resolve("d" + i), 64L << 20)), Grant.issue("c", "c#1")));
        }
        try (SoftwareProvider provider = new SoftwareProvider();
             RdmaServer server = RdmaServer.start(provider, RdmaServerConfig.DEFAULTS, served,
                     List.of(new InetSocketAddress("127.0.0.1", 0)));
             RdmaSession session = RdmaSession.open(provider, "idle", server.sessionGrant("c", "c#1"),
                     List.of(PathSpec.to(server.listenAddresses().get(0))), RdmaClientConfig.DEFAULTS)) {
            session.openDevice("vol0", served.get("vol0").grant());
            measure("1 device");
            for (int i = 1; i < 100; i++) {
                session.openDevice("vol" + i, served.get("vol" + i).grant());
            }
            measure("100 devices in one session");
        }
        java.util.List<RdmaSession> perMapping = new java.util.ArrayList<>();
        try (SoftwareProvider provider = new SoftwareProvider();
             RdmaServer server = RdmaServer.start(provider, RdmaServerConfig.DEFAULTS, served,
                     List.of(new InetSocketAddress("127.0.0.1", 0)))) {
            for (int i = 0; i < 100; i++) {
                perMapping.add(RdmaSession.open(provider, "m" + i, "vol" + i, served.get("vol" + i).grant(),
                        List.of(PathSpec.to(server.listenAddresses().get(0))),
                        RdmaClientConfig.DEFAULTS.withQueueDepth(8))); // 100 default pools would pass 1 GiB
            }
            measure("100 single-device sessions (queue depth 8)");
            for (RdmaSession s : perMapping) {
                s.close();
            }
        }
    }

    private static void measure(String what) throws Exception {
        Thread.sleep(2000); // settle; a measurement window, not synchronisation
        long t0 = cpuTicks();
        long n0 = System.nanoTime();
        Thread.sleep(20_000);
        double seconds = (System.nanoTime() - n0) / 1e9;
        double cpu = (cpuTicks() - t0) / 100.0 / seconds * 100;
        System.gc();
        Runtime rt = Runtime.getRuntime();
        long heapKiB = (rt.totalMemory() - rt.freeMemory()) >> 10;
        String rss = Files.readAllLines(Path.of("/proc/self/status")).stream().filter(l -> l.startsWith("VmRSS"))
                .findFirst().orElse("VmRSS: ?").replaceAll("\\s+", " ");
        System.out.printf("IDLE %s: %.2f %% of a core (client + storage JVM), %d threads, heap in use %d KiB, %s%n",
                what, cpu, Thread.activeCount(), heapKiB, rss);
    }
}
