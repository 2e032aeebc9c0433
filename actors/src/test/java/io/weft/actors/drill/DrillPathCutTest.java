package io.weft.actors.drill;

import static io.weft.actors.TestNodes.get;
import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.actors.AccessMode;
import io.weft.actors.DeviceState;
import io.weft.actors.MapSpec;
import io.weft.actors.NodeState;
import io.weft.actors.Reply;
import io.weft.actors.TestNodes;
import io.weft.actors.WeftRuntime;
import io.weft.actors.transport.RdmaTransport;
import io.weft.actors.drill.harness.DrillOptions;
import io.weft.rdma.server.RdmaServer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.apache.pekko.actor.Address;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A cut of ONE transport path: the storage node's RDMA server (software provider, loopback) listens on two
 * addresses, so the device's session has two paths; the drill takes path 1 down, IO moves to path 0 without an
 * error, and the path comes back when the drill recovers.
 */
class DrillPathCutTest {
    private static final Duration WAIT = Duration.ofSeconds(60);
    @TempDir
    Path tmp;
    private WeftRuntime storage;
    private WeftRuntime client;

    @AfterEach
    void stop() {
        for (WeftRuntime n : new WeftRuntime[] {client, storage}) {
            if (n != null) {
                n.shutdown();
            }
        }
    }

    private static String hostPort(Address a) {
        return a.host().get() + ":" + a.port().get();
    }

    private static int serverPaths(RdmaTransport rdma) {
        return rdma.serverSessions().stream().mapToInt(RdmaServer.SessionStatus::paths).sum();
    }

    @Test
    void cuttingOnePathOfAMultipathSessionKeepsIoFlowingOnTheOther() throws Exception {
        Path exports = Files.createDirectories(tmp.resolve("exports"));
        Map<String, Object> rdma = Map.of("weft.rdma.provider", "software",
                "weft.rdma.listen", List.of("127.0.0.1:0", "127.0.0.1:0"));
        storage = WeftRuntime.start(TestNodes.config("st", List.of("storage"), exports, List.of(), rdma));
        client = WeftRuntime.start(TestNodes.config("cl", List.of("client"), null,
                List.of(hostPort(storage.clusterAddress())), Map.of("weft.rdma.provider", "software",
                        "weft.client.io-timeout", "30s")));
        await("client sees st", WAIT, () -> get(client.storageNodes()).contains("st"));
        assertTrue(get(client.createVolume("st", "r.img", 8 << 20)).ok());
        Reply mapped = get(client.map(new MapSpec("r", "st", "r.img", AccessMode.RW, "rdma")));
        assertTrue(mapped.ok(), mapped.message());
        NodeState.DeviceEntry dev = client.state().device("r");
        await("two transport paths", WAIT, () -> dev.sessionView.snapshot().transportPaths() == 2);
        RdmaTransport served = storage.dataTransports().rdma();
        await("both paths up on the server", WAIT, () -> serverPaths(served) == 2);

        DrillOptions options = new DrillOptions(3, 8, 4096, 65536, 30, 4L << 20, 300, 2000, 300, 30_000);
        DrillService.StartReply reply = get(client.startDrill(new DrillRequest("r", DrillRequest.Fault.CUT, "st", 1,
                true, options)));
        assertTrue(reply instanceof DrillService.Started, reply.toString());
        String id = ((DrillService.Started) reply).status().id();
        await("the server lost the cut path", WAIT, () -> serverPaths(served) == 1);
        DrillStatus[] end = new DrillStatus[1];
        await(id + " done", WAIT, () -> {
            Optional<DrillStatus> s = get(client.drill(id));
            end[0] = s.orElseThrow();
            return end[0].phase().equals("done") || end[0].phase().equals("failed");
        });
        System.out.println(end[0].reportText());
        assertEquals("done", end[0].phase(), end[0].error());
        assertTrue(end[0].report().path("intact").asBoolean(), end[0].reportText());
        assertEquals(0, end[0].report().path("writesFailed").asLong(), "IO moved to the other path");
        assertEquals(0, end[0].report().path("readsFailed").asLong());
        assertEquals(DeviceState.READY, dev.snapshot().state(), "a path cut never takes the device down");
        assertEquals(0, dev.snapshot().reconnects(), "the session kept its channel");
        await("the cut path is back", WAIT, () -> serverPaths(served) == 2);
    }
}
