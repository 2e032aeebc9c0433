package io.weft.actors.client;

import static io.weft.actors.TestNodes.get;
import static io.weft.actors.TestNodes.io;
import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.actors.AccessMode;
import io.weft.actors.MapSpec;
import io.weft.actors.NodeState;
import io.weft.actors.Reply;
import io.weft.actors.TestNodes;
import io.weft.actors.WeftRuntime;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.locks.LockSupport;
import org.apache.pekko.actor.Address;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The client side of leases carried by the data path (issue 12), two nodes in this JVM over rdma (software provider):
 * once the data path is up the client stops sending renewal messages (its audit interval is an hour here), and the
 * storage node keeps the mapping anyway, for many leases, because the session's rdma heartbeats renew it.
 */
class CarriedLeaseTest {
    private static final Duration WAIT = Duration.ofSeconds(20);
    private static final Duration LEASE = Duration.ofMillis(800);
    @TempDir
    Path tmp;
    private WeftRuntime storage;
    private WeftRuntime client;

    @AfterEach
    void stop() {
        if (client != null) {
            client.shutdown();
        }
        if (storage != null) {
            storage.shutdown();
        }
    }

    private static WeftRuntime start(String name, String role, Path exports, List<String> seeds) {
        return WeftRuntime.start(TestNodes.config(name, List.of(role), exports, seeds, Map.of(
                "weft.rdma.provider", "software",
                "weft.rdma.listen", List.of("127.0.0.1:0"),
                "weft.storage.mapping-lease", LEASE.toMillis() + "ms",
                "weft.client.heartbeat-interval", "100ms",
                "weft.client.lease-audit-interval", "1h")));
    }

    private static String hostPort(Address a) {
        return a.host().get() + ":" + a.port().get();
    }

    @Test
    void anRdmaMappingIsKeptByItsDataPathWithoutRenewalMessages() throws Exception {
        Path exports = Files.createDirectories(tmp.resolve("exports"));
        storage = start("st", "storage", exports, List.of());
        client = start("cl", "client", null, List.of(hostPort(storage.clusterAddress())));
        await("client sees st", WAIT, () -> get(client.storageNodes()).contains("st"));
        assertTrue(get(client.createVolume("st", "r.img", 1 << 20)).ok());
        Reply mapped = get(client.map(new MapSpec("r", "st", "r.img", AccessMode.RW, "rdma")));
        assertTrue(mapped.ok(), mapped.message());
        NodeState.DeviceEntry dev = client.state().device("r");
        List<String> mapping = mappingIds();
        assertEquals(1, mapping.size(), "one mapping on the storage node: " + mapping);

        // Renewal messages stop once the data path is up: the last renewal answered stays where it is while the
        // mapping outlives many leases (a re-open would show as a new mapping id).
        holdsFor(mapping, LEASE.multipliedBy(2));
        long lastRenewal = dev.sessionView.lastHeartbeatMillis();
        holdsFor(mapping, LEASE.multipliedBy(4));
        assertEquals(lastRenewal, dev.sessionView.lastHeartbeatMillis(),
                "renewal messages went on every heartbeat-interval although the data path carries the lease");
        assertEquals(IoStatus.OK, io(dev.device, IoOp.WRITE, 0, 4096, ByteBuffer.allocateDirect(4096)));
    }

    /** The storage node's mappings stay {@code expected} at every look for {@code window} (looks 20 ms apart). */
    private void holdsFor(List<String> expected, Duration window) {
        long until = System.nanoTime() + window.toNanos();
        while (System.nanoTime() < until) {
            assertEquals(expected, mappingIds(), "the mapping was released or replaced");
            LockSupport.parkNanos(Duration.ofMillis(20).toNanos()); // the sampling interval, not a wait for an event
        }
    }

    private List<String> mappingIds() {
        return storage.state().backends().stream()
                .flatMap(b -> b.snapshot().mappings().stream())
                .map(NodeState.MappingStatus::mappingId).toList();
    }
}
