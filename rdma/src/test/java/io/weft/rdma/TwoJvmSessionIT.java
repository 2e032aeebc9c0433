package io.weft.rdma;

import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.rdma.client.PathPolicy;
import io.weft.rdma.client.PathSpec;
import io.weft.rdma.client.PathState;
import io.weft.rdma.client.PathStatus;
import io.weft.rdma.client.RdmaClientConfig;
import io.weft.rdma.client.RdmaSession;
import io.weft.rdma.verbs.soft.SoftwareProvider;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The session protocol between two JVMs over the software provider: storage in a child JVM serving a file, the
 * client here, two paths (127.0.0.1 and 127.0.0.2).
 */
class TwoJvmSessionIT {
    private static final long SIZE = 64L << 20;
    private static final int BLOCKS = 1024;

    @TempDir
    Path dir;

    private static List<PathSpec> specs(StorageProcess storage) {
        return storage.addresses().stream().map(PathSpec::to).toList();
    }

    private static String storageSessions(StorageProcess storage) {
        try {
            return storage.command("sessions", "SESSIONS");
        } catch (Exception e) {
            return "(no answer: " + e + ")";
        }
    }

    private static int heldOn(StorageProcess storage) {
        try {
            return Integer.parseInt(storage.command("held", "HOLDING").split(" ")[1]);
        } catch (Exception e) {
            throw new AssertionError("storage did not say how many answers it holds", e);
        }
    }

    private static long completedOn(RdmaSession s, int index) {
        return s.paths().get(index).completed();
    }

    @Test
    void verifiedIoOverTwoPaths() throws Exception {
        try (StorageProcess storage = StorageProcess.start(dir.resolve("vol"), SIZE, "127.0.0.1:0,127.0.0.2:0", 1,
                dir.resolve("storage.log"));
             SoftwareProvider provider = new SoftwareProvider();
             RdmaSession session = RdmaSession.open(provider, "two-paths", "vol0", TestGrants.GRANT, specs(storage),
                     RdmaClientConfig.DEFAULTS.withPolicy(PathPolicy.ROUND_ROBIN))) {
            await("both paths connected", Duration.ofSeconds(10), () -> session.paths().stream()
                    .allMatch(p -> p.state() == PathState.CONNECTED));
            VerifyingLoad load = new VerifyingLoad(session.device(), 32, BLOCKS);
            load.start();
            await("2000 verified IOs", Duration.ofSeconds(60), () -> load.completed() >= 2000);
            load.stop();
            load.verifyAll();
            assertTrue(load.failures().isEmpty(), () -> "failures: " + load.failures());
            assertTrue(completedOn(session, 0) > 0 && completedOn(session, 1) > 0,
                    () -> "round-robin must use both paths: " + session.paths());
            // Bytes reach the other JVM's file, not just a cache on this side.
            byte[] big = TestIo.pattern(4242, 7, 128 * 1024);
            TestIo.write(session.device(), 32L << 20, big);
            assertArrayEquals(big, TestIo.read(session.device(), 32L << 20, big.length));
            assertEquals(IoStatus.EOVERFLOW, TestIo.io(session.device(), IoOp.READ, SIZE, ByteBuffer.allocate(4096)));
        }
    }

    @Test
    void inFlightIoOfAKilledPathCompletesOnTheOtherPath() throws Exception {
        try (StorageProcess storage = StorageProcess.start(dir.resolve("vol"), SIZE, "127.0.0.1:0,127.0.0.2:0", 1,
                dir.resolve("storage.log"));
             SoftwareProvider provider = new SoftwareProvider();
             RdmaSession session = RdmaSession.open(provider, "failover", "vol0", TestGrants.GRANT, specs(storage),
                     RdmaClientConfig.DEFAULTS.withPolicy(PathPolicy.ROUND_ROBIN))) {
            await("both paths connected", Duration.ofSeconds(10), () -> session.paths().stream()
                    .allMatch(p -> p.state() == PathState.CONNECTED));
            VerifyingLoad load = new VerifyingLoad(session.device(), 32, BLOCKS);
            load.start();
            await("IO running", Duration.ofSeconds(30), () -> load.completed() >= 500);
            // Keep answers back so requests are provably in flight on both paths when one of them is cut.
            storage.command("hold", "HELD");
            // Once the storage side holds the answers of all 32 workers' requests, none is on its way back: the
            // split between the paths cannot change any more. (Waiting only for 32 in flight on this side left a
            // window: an answer sent just before 'hold' could still complete a request of the cut path, whose
            // worker then resubmitted, possibly on the other path.)
            await("every answer held on the storage side", Duration.ofSeconds(30),
                    () -> heldOn(storage) == 32);
            await("every request in flight, on both paths", Duration.ofSeconds(30), () -> {
                List<PathStatus> p = session.paths();
                return p.get(0).inflight() > 0 && p.get(1).inflight() > 0
                        && p.get(0).inflight() + p.get(1).inflight() == 32;
            });
            int stuckOnVictim = session.paths().get(0).inflight();
            InetSocketAddress victim = storage.addresses().get(0);
            String dropped = storage.command("drop " + victim.getAddress().getHostAddress() + ":"
                    + victim.getPort(), "DROPPED");
            assertTrue(Integer.parseInt(dropped.split(" ")[1]) >= 2, dropped); // admin + IO connection
            // Every request in flight on the cut path must move: no answer was on its way when the snapshot was taken.
            assertTrue(stuckOnVictim > 0);
            await("requests of the cut path moved over", Duration.ofSeconds(30),
                    () -> session.paths().get(0).failedOver() >= stuckOnVictim,
                    () -> "in flight on the cut path at the drop " + stuckOnVictim + ", " + dropped + ", paths "
                            + session.paths() + ", stats " + session.stats() + ", storage " + storageSessions(storage));
            storage.command("release", "RELEASED");
            long atDrop = load.completed();
            await("IO continuing after the drop", Duration.ofSeconds(30),
                    () -> load.completed() >= atDrop + 2000);
            await("dropped path reconnected", Duration.ofSeconds(30), () -> {
                PathStatus p = session.paths().get(0);
                return p.state() == PathState.CONNECTED && p.reconnects() >= 1;
            });
            load.stop();
            load.verifyAll();
            assertTrue(load.failures().isEmpty(), () -> "failures: " + load.failures());
        }
    }

    @Test
    void sessionSurvivesAStorageRestart() throws Exception {
        Path file = dir.resolve("vol");
        StorageProcess storage = StorageProcess.start(file, SIZE, "127.0.0.1:0,127.0.0.2:0", 1,
                dir.resolve("storage.log"));
        String listen = storage.listenSpec();
        try (SoftwareProvider provider = new SoftwareProvider();
             RdmaSession session = RdmaSession.open(provider, "restart", "vol0", TestGrants.GRANT, specs(storage),
                     RdmaClientConfig.DEFAULTS.withReconnect(Duration.ofMillis(20), Duration.ofMillis(500)))) {
            byte[] before = TestIo.pattern(1, 1, 64 * 1024);
            TestIo.write(session.device(), 0, before);
            storage.kill();
            await("paths down", Duration.ofSeconds(10), () -> session.paths().stream()
                    .noneMatch(p -> p.state() == PathState.CONNECTED));
            // Submitted while no storage exists: must wait for the restart, not fail.
            byte[] during = TestIo.pattern(2, 1, 4096);
            CompletableFuture<Integer> pending = new CompletableFuture<>();
            session.device().submit(IoOp.WRITE, 1 << 20, 4096, 0, ByteBuffer.wrap(during), 0,
                    (tag, status) -> pending.complete(status));
            storage = StorageProcess.start(file, SIZE, listen, 1, dir.resolve("storage2.log"));
            assertEquals(IoStatus.OK, pending.get(30, TimeUnit.SECONDS));
            assertArrayEquals(before, TestIo.read(session.device(), 0, before.length));
            assertArrayEquals(during, TestIo.read(session.device(), 1 << 20, 4096));
            await("both paths back", Duration.ofSeconds(10), () -> session.paths().stream()
                    .allMatch(p -> p.state() == PathState.CONNECTED));
        } finally {
            storage.close();
        }
    }

    @Test
    void frozenStorageIsDetectedByHeartbeatsAndIoResumesWithoutLoss() throws Exception {
        try (StorageProcess storage = StorageProcess.start(dir.resolve("vol"), SIZE, "127.0.0.1:0,127.0.0.2:0", 1,
                dir.resolve("storage.log"));
             SoftwareProvider provider = new SoftwareProvider();
             RdmaSession session = RdmaSession.open(provider, "frozen", "vol0", TestGrants.GRANT, specs(storage),
                     RdmaClientConfig.DEFAULTS.withReconnect(Duration.ofMillis(20), Duration.ofMillis(300)))) {
            VerifyingLoad load = new VerifyingLoad(session.device(), 32, BLOCKS);
            load.start();
            await("IO running", Duration.ofSeconds(30), () -> load.completed() >= 500);
            storage.signal("STOP"); // sockets stay open: only heartbeats can tell
            try {
                await("heartbeat timeout fails both paths", Duration.ofSeconds(20), () -> session.paths()
                        .stream().allMatch(p -> p.state() != PathState.CONNECTED));
                assertTrue(session.paths().stream().anyMatch(p -> String.valueOf(p.lastError()).contains("heartbeat")),
                        () -> "paths should have failed on heartbeats: " + session.paths());
            } finally {
                storage.signal("CONT");
            }
            long atResume = load.completed();
            await("IO resumed", Duration.ofSeconds(30), () -> load.completed() >= atResume + 2000);
            load.stop();
            load.verifyAll();
            assertTrue(load.failures().isEmpty(), () -> "failures: " + load.failures());
        }
    }
}
