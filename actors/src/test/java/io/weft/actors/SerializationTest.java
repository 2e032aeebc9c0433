package io.weft.actors;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.typesafe.config.ConfigFactory;
import io.weft.actors.client.SessionActor;
import io.weft.actors.storage.BackendActor;
import io.weft.actors.storage.StorageService;
import io.weft.actors.transport.TransportEndpoint;
import io.weft.core.io.DeviceInfo;
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
        var session = testKit.<SessionActor.Command>createTestProbe().getRef();
        var openReply = testKit.<StorageService.OpenReply>createTestProbe().getRef();
        var backend = testKit.<BackendActor.Command>createTestProbe().getRef();
        var reply = testKit.<Reply>createTestProbe().getRef();
        var hbReply = testKit.<BackendActor.HeartbeatReply>createTestProbe().getRef();
        var renewer = testKit.<io.weft.actors.client.LeaseRenewer.Command>createTestProbe().getRef();
        var renewedReply = testKit.<StorageService.LeasesRenewed>createTestProbe().getRef();
        DeviceInfo info = new DeviceInfo(1 << 20, 512, 4096, 1 << 25, false, true, true, false, true, false, false,
                true);
        TransportEndpoint endpoint = new TransportEndpoint("inprocess", Map.of("token", "t", "jvm", "1"));
        for (Object m : List.of(
                new StorageService.Open("c", "d", "p", AccessMode.MIGRATION, "inprocess", session, openReply),
                new StorageService.Opened("m", "/x", info, endpoint, backend),
                new StorageService.OpenRefused("no", true),
                new StorageService.CreateVolume("v", 4096, reply),
                new StorageService.Resize("v", 8192, reply),
                new StorageService.BackendList("n", List.of(new NodeState.BackendStatus("/x", 1,
                        List.of(new NodeState.MappingStatus("m", "c", "d", "rw", "inprocess", "a")),
                        io.weft.actors.management.IoFigures.EMPTY))),
                new StorageService.RenewLeases("c", List.of(new StorageService.Lease("m", backend, 1 << 20),
                        new StorageService.Lease("n", backend, 4096)), renewer, renewedReply),
                new StorageService.LeasesRenewed(2),
                new io.weft.actors.client.LeaseRenewer.MappingUnknown("m"),
                new BackendActor.Heartbeat("m", hbReply),
                new BackendActor.Alive("m", info),
                new BackendActor.UnknownMapping("m"),
                new BackendActor.CloseMapping("m", reply),
                new SessionActor.InfoChanged("m", info),
                new SessionActor.MappingRevoked("m", "why"),
                Reply.ok("fine"))) {
            roundTrip(m);
        }
    }

    @Test
    void formationMessagesRoundTrip() throws Exception {
        var answerTo = testKit.<io.weft.actors.cluster.ClusterFormation.Answer>createTestProbe().getRef();
        roundTrip(new io.weft.actors.cluster.ClusterFormation.Probe(answerTo));
        roundTrip(new io.weft.actors.cluster.ClusterFormation.Answer("127.0.0.1:25520", true));
    }

    @Test
    void drillMessagesRoundTrip() throws Exception {
        var processReply = testKit.<StorageService.ProcessInfo>createTestProbe().getRef();
        roundTrip(new StorageService.DescribeProcess(processReply));
        roundTrip(new StorageService.ProcessInfo("b", 4242, "0f0e-boot"));
    }
}
