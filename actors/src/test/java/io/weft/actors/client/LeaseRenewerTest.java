package io.weft.actors.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.actors.NodeState;
import io.weft.actors.protocol.BackendCommand;
import io.weft.actors.protocol.Lease;
import io.weft.actors.protocol.LeaseRenewerCommand;
import io.weft.actors.protocol.LeaseUnknown;
import io.weft.actors.protocol.LeasesRenewed;
import io.weft.actors.protocol.MappingRevoked;
import io.weft.actors.protocol.RenewLeases;
import io.weft.actors.protocol.SessionCommand;
import io.weft.actors.protocol.StorageServiceCommand;
import io.weft.core.io.DeviceInfo;
import java.time.Duration;
import java.util.Set;
import java.util.function.Predicate;
import java.util.stream.Collectors;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The client side of batched lease renewal (issue 12): one batch per storage node per interval, every mapping in it.
 */
class LeaseRenewerTest {
    private static final DeviceInfo INFO = new DeviceInfo(1 << 20, 512, 4096, 1 << 16, false, true, true, false,
            true, false, false, true);
    private static final Duration INTERVAL = Duration.ofMillis(100);
    private static final int MISSES = 3;
    private static final Duration AUDIT = Duration.ofSeconds(1);
    private static ActorTestKit testKit;

    @BeforeAll
    static void start() {
        testKit = ActorTestKit.create();
    }

    @AfterAll
    static void stop() {
        testKit.shutdownTestKit();
    }

    private final TestProbe<BackendCommand> backend = testKit.createTestProbe();

    private LeaseRenewer.Register lease(String id, TestProbe<StorageServiceCommand> storage,
                                        ActorRef<SessionCommand> session) {
        return new LeaseRenewer.Register(id, storage.getRef(), backend.getRef(), INFO.size(), session,
                new NodeState.SessionView(id, "s"));
    }

    private LeaseRenewer.Register carried(String id, TestProbe<StorageServiceCommand> storage,
                                          ActorRef<SessionCommand> session) {
        return new LeaseRenewer.Register(id, storage.getRef(), backend.getRef(), INFO.size(), session,
                new NodeState.SessionView(id, "s"), true);
    }

    /** Receives batches (answering each when {@code answer}) until one satisfies {@code until}; returns it. */
    private static RenewLeases batchUntil(TestProbe<StorageServiceCommand> storage, boolean answer,
                                                         Predicate<Set<String>> until) {
        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (System.nanoTime() < deadline) {
            var batch = storage.expectMessageClass(RenewLeases.class, Duration.ofSeconds(5));
            if (answer) {
                batch.replyTo().tell(new LeasesRenewed(batch.leases().size()));
            }
            if (until.test(ids(batch))) {
                return batch;
            }
        }
        throw new AssertionError("no batch as expected within 10 s");
    }

    private static Set<String> ids(RenewLeases batch) {
        return batch.leases().stream().map(Lease::mappingId).collect(Collectors.toSet());
    }

    @Test
    void oneBatchPerStorageNodeCarriesEveryMappingAndAMappingLeftOutIsNoLongerRenewed() {
        ActorRef<LeaseRenewerCommand> renewer = testKit.spawn(LeaseRenewer.create("c", INTERVAL, MISSES, AUDIT));
        TestProbe<StorageServiceCommand> storageA = testKit.createTestProbe();
        TestProbe<StorageServiceCommand> storageB = testKit.createTestProbe();
        TestProbe<SessionCommand> a1 = testKit.createTestProbe();
        TestProbe<SessionCommand> a2 = testKit.createTestProbe();
        TestProbe<SessionCommand> a3 = testKit.createTestProbe();
        TestProbe<SessionCommand> b1 = testKit.createTestProbe();
        renewer.tell(lease("m1", storageA, a1.getRef()));
        renewer.tell(lease("m2", storageA, a2.getRef()));
        renewer.tell(lease("m3", storageA, a3.getRef()));
        renewer.tell(lease("m4", storageB, b1.getRef()));

        var batchA = batchUntil(storageA, true, ids -> ids.size() == 3);
        assertEquals(Set.of("m1", "m2", "m3"), ids(batchA), "one message renews every mapping on storage A");
        assertEquals("c", batchA.clientNode());
        assertEquals(INFO.size(), batchA.leases().get(0).knownSize());
        assertEquals(Set.of("m4"), ids(batchUntil(storageB, true, ids -> true)), "storage B gets its own batch");

        renewer.tell(new LeaseRenewer.Unregister("m2"));
        assertEquals(Set.of("m1", "m3"), ids(batchUntil(storageA, true, ids -> !ids.contains("m2"))));

        // The storage node forgot m3: its session is told to open again, and m3 leaves the batch.
        renewer.tell(new LeaseUnknown("m3"));
        var revoked = a3.expectMessageClass(MappingRevoked.class);
        assertEquals("m3", revoked.mappingId());
        assertEquals(Set.of("m1"), ids(batchUntil(storageA, true, ids -> !ids.contains("m3"))));

        a1.expectNoMessage(Duration.ZERO);
        a2.expectNoMessage(Duration.ZERO);
        b1.expectNoMessage(Duration.ZERO);
    }

    @Test
    void unansweredBatchesLoseThePathOfTheSessionsOnThatStorageNodeOnly() {
        ActorRef<LeaseRenewerCommand> renewer = testKit.spawn(LeaseRenewer.create("c", INTERVAL, MISSES, AUDIT));
        TestProbe<StorageServiceCommand> silent = testKit.createTestProbe();
        TestProbe<StorageServiceCommand> answering = testKit.createTestProbe();
        TestProbe<SessionCommand> onSilent1 = testKit.createTestProbe();
        TestProbe<SessionCommand> onSilent2 = testKit.createTestProbe();
        TestProbe<SessionCommand> onAnswering = testKit.createTestProbe();
        renewer.tell(lease("s1", silent, onSilent1.getRef()));
        renewer.tell(lease("s2", silent, onSilent2.getRef()));
        renewer.tell(lease("a1", answering, onAnswering.getRef()));

        for (int i = 0; i < MISSES; i++) {
            silent.expectMessageClass(RenewLeases.class, Duration.ofSeconds(5));
            batchUntil(answering, true, ids -> true);
        }
        var lost1 = onSilent1.expectMessageClass(SessionActor.RenewalsUnanswered.class, Duration.ofSeconds(5));
        var lost2 = onSilent2.expectMessageClass(SessionActor.RenewalsUnanswered.class, Duration.ofSeconds(5));
        assertEquals("s1", lost1.mappingId());
        assertEquals("s2", lost2.mappingId());
        assertTrue(lost1.missed() >= MISSES, String.valueOf(lost1.missed()));
        batchUntil(answering, true, ids -> true);
        onAnswering.expectNoMessage(Duration.ZERO);
    }

    @Test
    void aSessionThatStopsWithoutUnregisteringIsNoLongerRenewed() {
        ActorRef<LeaseRenewerCommand> renewer = testKit.spawn(LeaseRenewer.create("c", INTERVAL, MISSES, AUDIT));
        TestProbe<StorageServiceCommand> storage = testKit.createTestProbe();
        ActorRef<SessionCommand> crashing = testKit.spawn(Behaviors.ignore());
        TestProbe<SessionCommand> staying = testKit.createTestProbe();
        renewer.tell(lease("gone", storage, crashing));
        renewer.tell(lease("kept", storage, staying.getRef()));
        assertEquals(Set.of("gone", "kept"), ids(batchUntil(storage, true, ids -> ids.size() == 2)));

        testKit.stop(crashing);
        assertEquals(Set.of("kept"), ids(batchUntil(storage, true, ids -> !ids.contains("gone"))),
                "the lease of a stopped session must run out on the storage node");
    }

    @Test
    void aLeaseCarriedByTheDataPathIsOnlyAuditedAndTheAuditStillBringsBackUnknownMappingsAndSizes() {
        Duration audit = INTERVAL.multipliedBy(10);
        ActorRef<LeaseRenewerCommand> renewer = testKit.spawn(LeaseRenewer.create("c", INTERVAL, MISSES, audit));
        TestProbe<StorageServiceCommand> storage = testKit.createTestProbe();
        TestProbe<SessionCommand> byMessage = testKit.createTestProbe();
        TestProbe<SessionCommand> byDataPath = testKit.createTestProbe();
        renewer.tell(lease("msg", storage, byMessage.getRef()));
        renewer.tell(carried("dp", storage, byDataPath.getRef()));

        // The message-renewed lease goes in batches of its own every interval, the carried one in audit batches of
        // its own every audit interval (ten times longer): two audits come with many more renewals between them.
        int renewals = 0;
        int audits = 0;
        RenewLeases auditBatch = null;
        while (audits < 2) {
            var batch = storage.expectMessageClass(RenewLeases.class, Duration.ofSeconds(5));
            batch.replyTo().tell(new LeasesRenewed(batch.leases().size()));
            if (ids(batch).equals(Set.of("msg"))) {
                renewals++;
            } else {
                assertEquals(Set.of("dp"), ids(batch), "a carried lease never rides in a renewal batch");
                auditBatch = batch;
                audits++;
            }
        }
        assertTrue(renewals > audits, renewals + " renewals, " + audits + " audits");

        // The audit carries what a renewal carries: the storage node forgot the mapping → the session is told.
        auditBatch.renewer().tell(new LeaseUnknown("dp"));
        assertEquals("dp", byDataPath.expectMessageClass(MappingRevoked.class).mappingId());
        assertEquals(INFO.size(), auditBatch.leases().get(0).knownSize(), "the audit names the size the client knows");

        // Its data path went down: the session registers it again as message-renewed, and it rides every interval.
        renewer.tell(lease("dp2", storage, byDataPath.getRef()));
        assertEquals(Set.of("msg", "dp2"), ids(batchUntil(storage, true, ids -> ids.size() == 2)));
        byMessage.expectNoMessage(Duration.ZERO);
    }

    @Test
    void unansweredAuditsLoseThePathLikeUnansweredRenewals() {
        Duration audit = Duration.ofMillis(200);
        ActorRef<LeaseRenewerCommand> renewer = testKit.spawn(LeaseRenewer.create("c", INTERVAL, MISSES, audit));
        TestProbe<StorageServiceCommand> silent = testKit.createTestProbe();
        TestProbe<SessionCommand> session = testKit.createTestProbe();
        renewer.tell(carried("dp", silent, session.getRef()));
        for (int i = 0; i < MISSES; i++) {
            assertEquals(Set.of("dp"), ids(silent.expectMessageClass(RenewLeases.class, Duration.ofSeconds(5))));
        }
        var lost = session.expectMessageClass(SessionActor.RenewalsUnanswered.class, Duration.ofSeconds(5));
        assertEquals("dp", lost.mappingId());
        assertTrue(lost.missed() >= MISSES, String.valueOf(lost.missed()));
    }
}
