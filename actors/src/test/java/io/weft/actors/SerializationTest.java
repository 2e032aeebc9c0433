package io.weft.actors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import io.weft.actors.protocol.BackendCommand;
import io.weft.actors.protocol.BackendList;
import io.weft.actors.protocol.CloseMapping;
import io.weft.actors.protocol.CreateVolume;
import io.weft.actors.protocol.DescribeProcess;
import io.weft.actors.protocol.Heartbeat;
import io.weft.actors.protocol.HeartbeatReply;
import io.weft.actors.protocol.Lease;
import io.weft.actors.protocol.LeaseRenewerCommand;
import io.weft.actors.protocol.LeaseUnknown;
import io.weft.actors.protocol.LeasesRenewed;
import io.weft.actors.protocol.ListBackends;
import io.weft.actors.protocol.MappingAlive;
import io.weft.actors.protocol.MappingRevoked;
import io.weft.actors.protocol.OpenRefused;
import io.weft.actors.protocol.OpenReply;
import io.weft.actors.protocol.OpenStore;
import io.weft.actors.protocol.ProcessInfo;
import io.weft.actors.protocol.RenewLeases;
import io.weft.actors.protocol.ResizeStore;
import io.weft.actors.protocol.SessionCommand;
import io.weft.actors.protocol.StoreInfoChanged;
import io.weft.actors.protocol.StoreOpened;
import io.weft.actors.protocol.UnknownMapping;
import io.weft.actors.transport.TransportEndpoint;
import io.weft.core.io.DeviceInfo;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.serialization.Serialization;
import org.apache.pekko.serialization.SerializationExtension;
import org.apache.pekko.serialization.Serializers;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Every message that crosses nodes survives Pekko's Jackson serializer (bound through WeftSerializable). */
class SerializationTest {
    private static ActorTestKit testKit;

    @BeforeAll
    static void start() {
        testKit = ActorTestKit.create(PekkoConfig.build(ConfigFactory.parseMap(Map.of(
                "weft.cluster.port", 0, "weft.management.http.enabled", false))));
        // A member leaves quickly at shutdown; a node that never joined waits out the leave phase.
        var cluster = org.apache.pekko.cluster.typed.Cluster.get(testKit.system());
        cluster.manager().tell(org.apache.pekko.cluster.typed.Join.create(cluster.selfMember().address()));
    }

    @AfterAll
    static void stop() {
        testKit.shutdownTestKit();
    }

    private void roundTrip(Object message) throws Exception {
        Serialization serialization = SerializationExtension.get(Adapter.toClassic(testKit.system()));
        var serializer = serialization.findSerializerFor(message);
        assertEquals("org.apache.pekko.serialization.jackson.JacksonJsonSerializer", serializer.getClass().getName(),
                message.getClass() + " must be bound to jackson-json");
        // serialize() sets the transport information ActorRefs inside messages need, as remoting does.
        byte[] bytes = serialization.serialize(message).get();
        String manifest = Serializers.manifestFor(serializer, message);
        Object back = serialization.deserialize(bytes, serializer.identifier(), manifest).get();
        assertEquals(message, back);
    }

    @Test
    void crossNodeMessagesRoundTrip() throws Exception {
        var session = testKit.<SessionCommand>createTestProbe().getRef();
        var openReply = testKit.<OpenReply>createTestProbe().getRef();
        var backend = testKit.<BackendCommand>createTestProbe().getRef();
        var reply = testKit.<Reply>createTestProbe().getRef();
        var hbReply = testKit.<HeartbeatReply>createTestProbe().getRef();
        var renewer = testKit.<LeaseRenewerCommand>createTestProbe().getRef();
        var renewedReply = testKit.<LeasesRenewed>createTestProbe().getRef();
        var backendList = testKit.<BackendList>createTestProbe().getRef();
        DeviceInfo info = new DeviceInfo(1 << 20, 512, 4096, 1 << 25, false, true, true, false, true, false, false,
                true);
        TransportEndpoint endpoint = new TransportEndpoint("inprocess", Map.of("token", "t", "jvm", "1"));
        for (Object m : List.of(
                new OpenStore("c", "d", "p", AccessMode.MIGRATION, "inprocess", session, openReply),
                new StoreOpened("m", "/x", info, endpoint, backend, true),
                new OpenRefused("no", true),
                new CreateVolume("v", 4096, reply),
                new ResizeStore("v", 8192, reply),
                new ListBackends(backendList),
                new BackendList("n", List.of(new NodeState.BackendStatus("/x", 1,
                        List.of(new NodeState.MappingStatus("m", "c", "d", "rw", "inprocess", "a")),
                        io.weft.actors.management.IoFigures.EMPTY))),
                new RenewLeases("c", List.of(new Lease("m", backend, 1 << 20),
                        new Lease("n", backend, 4096)), renewer, renewedReply),
                new LeasesRenewed(2),
                new LeaseUnknown("m"),
                new Heartbeat("m", hbReply),
                new MappingAlive("m", info),
                new UnknownMapping("m"),
                new CloseMapping("m", reply),
                new StoreInfoChanged("m", info),
                new MappingRevoked("m", "why"),
                Reply.ok("fine"))) {
            roundTrip(m);
        }
    }

    /** A record added to the protocol package without the marker would fail only when it first crossed nodes. */
    @Test
    void everyProtocolRecordIsWeftSerializable() throws Exception {
        var dir = Path.of(OpenStore.class.getProtectionDomain().getCodeSource().getLocation().toURI())
                .resolve(OpenStore.class.getPackageName().replace('.', '/'));
        List<String> records = new ArrayList<>();
        try (var files = Files.list(dir)) {
            for (Path f : files.toList()) {
                String name = f.getFileName().toString();
                if (!name.endsWith(".class") || name.contains("$") || name.startsWith("package-info")) {
                    continue;
                }
                Class<?> c = Class.forName(OpenStore.class.getPackageName() + "." + name.replace(".class", ""));
                if (c.isRecord()) {
                    records.add(c.getSimpleName());
                    assertTrue(WeftSerializable.class.isAssignableFrom(c), c + " must implement WeftSerializable");
                }
            }
        }
        assertTrue(records.contains("OpenStore") && records.contains("RenewLeases"),
                "the scan found the protocol records: " + records);
    }

    @Test
    void formationMessagesRoundTrip() throws Exception {
        var answerTo = testKit.<io.weft.actors.cluster.ClusterFormation.Answer>createTestProbe().getRef();
        roundTrip(new io.weft.actors.cluster.ClusterFormation.Probe(answerTo));
        roundTrip(new io.weft.actors.cluster.ClusterFormation.Answer("127.0.0.1:25520", true));
    }

    @Test
    void drillMessagesRoundTrip() throws Exception {
        var processReply = testKit.<ProcessInfo>createTestProbe().getRef();
        roundTrip(new DescribeProcess(processReply));
        roundTrip(new ProcessInfo("b", 4242, "0f0e-boot"));
    }
}
