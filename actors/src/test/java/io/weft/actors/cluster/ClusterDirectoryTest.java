package io.weft.actors.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import io.weft.actors.NodeServices;
import io.weft.actors.PekkoConfig;
import io.weft.actors.protocol.StorageServiceCommand;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.pekko.actor.Address;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.cluster.ClusterEvent;
import org.apache.pekko.cluster.Member;
import org.apache.pekko.cluster.Member$;
import org.apache.pekko.cluster.MemberStatus;
import org.apache.pekko.cluster.UniqueAddress;
import org.apache.pekko.util.Version;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import scala.jdk.javaapi.CollectionConverters;

/**
 * {@link ClusterDirectory} folds membership events into "which member runs which service, under which Weft name":
 * members are made up here (no cluster forms), the resolved references are checked by their paths.
 */
class ClusterDirectoryTest {
    private static ActorTestKit testKit;
    private ClusterDirectory directory;

    @BeforeAll
    static void start() {
        testKit = ActorTestKit.create(PekkoConfig.build(ConfigFactory.parseMap(Map.of(
                "weft.cluster.port", 0, "weft.management.http.enabled", false))));
    }

    @AfterAll
    static void stop() {
        testKit.shutdownTestKit();
    }

    @BeforeEach
    void fresh() {
        directory = new ClusterDirectory(testKit.system());
    }

    /** A member at 127.0.0.1:{@code port}, incarnation {@code uid}, with these cluster roles; Joining. */
    private static Member member(int port, long uid, String... roles) {
        Set<String> all = new HashSet<>(List.of(roles));
        all.add("dc-default");
        return Member$.MODULE$.apply(new UniqueAddress(new Address("pekko", "weft", "127.0.0.1", port), uid),
                CollectionConverters.asScala(all).toSet(), Version.Zero());
    }

    private static Member up(Member joining, int upNumber) {
        return joining.copyUp(upNumber);
    }

    private static String storagePath(int port) {
        return "pekko://weft@127.0.0.1:" + port + "/user/storage";
    }

    private List<String> storagePaths() {
        return directory.find(NodeServices.STORAGE).stream().map(l -> l.ref().path().toString()).toList();
    }

    @Test
    void aMemberIsListedFromUpUntilRemoved() {
        Member joining = member(2601, 1, "storage", "weft-node:s1");
        assertFalse(directory.apply(new ClusterEvent.MemberJoined(joining)), "joining changes no listing");
        assertEquals(List.of(), storagePaths(), "not listed before Up: it may not serve yet");

        Member s1 = up(joining, 1);
        assertTrue(directory.apply(new ClusterEvent.MemberUp(s1)));
        var found = directory.find(NodeServices.STORAGE, "s1");
        assertEquals(1, found.size(), found.toString());
        assertEquals(storagePath(2601), found.get(0).ref().path().toString());
        assertEquals(s1.uniqueAddress(), found.get(0).member());
        assertEquals("s1", found.get(0).nodeName());

        Member leaving = s1.copy(MemberStatus.leaving());
        directory.apply(new ClusterEvent.MemberLeft(leaving));
        assertEquals(List.of(storagePath(2601)), storagePaths(), "a leaving member still serves");

        Member exiting = leaving.copy(MemberStatus.exiting());
        assertTrue(directory.apply(new ClusterEvent.MemberExited(exiting)));
        assertEquals(List.of(), storagePaths(), "an exiting member is shutting down");
        assertFalse(directory.apply(new ClusterEvent.MemberRemoved(exiting.copy(MemberStatus.removed()),
                MemberStatus.exiting())), "already out of the listing");
    }

    @Test
    void rolesFilterTheServices() {
        Member storage = up(member(2611, 1, "storage", "weft-node:s1"), 1);
        Member client = up(member(2612, 1, "client", "weft-node:c1"), 2);
        directory.apply(new ClusterEvent.MemberUp(client));
        directory.apply(new ClusterEvent.MemberUp(storage));

        assertEquals(List.of(storagePath(2611)), storagePaths(), "a storage service only on storage members");
        assertEquals(List.of(), directory.find(NodeServices.STORAGE, "c1"));
        var directories = directory.find(NodeServices.NODE_DIRECTORY).stream()
                .map(l -> l.nodeName() + "=" + l.ref().path()).toList();
        assertEquals(List.of("s1=pekko://weft@127.0.0.1:2611/user/directory",
                "c1=pekko://weft@127.0.0.1:2612/user/directory"), directories, "every member, oldest first");
        assertEquals("pekko://weft@127.0.0.1:2612/system/management-token",
                directory.at(client.address(), NodeServices.MANAGEMENT_TOKEN).path().toString());
    }

    @Test
    void anUnreachableMemberIsHiddenUntilReachableAgain() {
        Member s1 = up(member(2621, 1, "storage", "weft-node:s1"), 1);
        directory.apply(new ClusterEvent.MemberUp(s1));
        assertTrue(directory.apply(new ClusterEvent.UnreachableMember(s1)));
        assertEquals(List.of(), storagePaths());
        assertTrue(directory.apply(new ClusterEvent.ReachableMember(s1)));
        assertEquals(List.of(storagePath(2621)), storagePaths());
    }

    /**
     * Pekko's reachability is the union of every member's observations: when one client node is cut off, it reports
     * every other member unreachable, storage nodes included. A storage node this node's own failure detector watches
     * and hears must stay listed, or one partitioned client stops every other client's maps and sessions
     * (PartitionIT: "map of s:v.img timed out after 10000 ms: storage node s is unreachable or gone").
     */
    @Test
    void aMemberOnlyAnotherNodeCannotReachStaysListedWhileThisNodeHearsIt() {
        Set<Address> silentHere = new HashSet<>();
        directory = new ClusterDirectory(testKit.system(), new ClusterDirectory.LocalReachability() {
            @Override
            public boolean watches(Address member) {
                return member.port().get().equals(2661);
            }

            @Override
            public boolean hears(Address member) {
                return !silentHere.contains(member);
            }
        });
        Member watched = up(member(2661, 1, "storage", "weft-node:s1"), 1);
        Member notWatched = up(member(2662, 1, "storage", "weft-node:s2"), 2);
        directory.apply(new ClusterEvent.MemberUp(watched));
        directory.apply(new ClusterEvent.MemberUp(notWatched));
        directory.apply(new ClusterEvent.UnreachableMember(watched));
        directory.apply(new ClusterEvent.UnreachableMember(notWatched));

        assertEquals(List.of(storagePath(2661)), storagePaths(),
                "s1 is heard here: another member's verdict does not hide it; s2 is not watched: the cluster's does");
        silentHere.add(watched.address());
        assertEquals(List.of(), storagePaths(), "once this node's own detector stops hearing s1, it is hidden");
        assertTrue(directory.hidden(NodeServices.STORAGE, "s1"), "listed as serving but unreachable from here");
        directory.apply(new ClusterEvent.ReachableMember(watched));
        assertEquals(List.of(storagePath(2661)), storagePaths());
        assertFalse(directory.hidden(NodeServices.STORAGE, "s1"));
    }

    @Test
    void aRestartedMemberAtTheSameAddressIsANewEntry() {
        Member old = up(member(2631, 1, "storage", "weft-node:s1"), 1);
        directory.apply(new ClusterEvent.MemberUp(old));
        directory.apply(new ClusterEvent.UnreachableMember(old));
        Member downed = old.copy(MemberStatus.down());
        directory.apply(new ClusterEvent.MemberDowned(downed));
        assertTrue(directory.find(NodeServices.STORAGE, "s1").isEmpty(), "a downed member serves no more");
        directory.apply(new ClusterEvent.MemberRemoved(downed.copy(MemberStatus.removed()), MemberStatus.down()));

        Member restarted = up(member(2631, 2, "storage", "weft-node:s1"), 2);
        assertTrue(directory.apply(new ClusterEvent.MemberUp(restarted)));
        var found = directory.find(NodeServices.STORAGE, "s1");
        assertEquals(1, found.size(), found.toString());
        assertEquals(2L, found.get(0).member().longUid(), "the new incarnation, told apart by its uid");
        // Its reference is the same path: only the member's uid tells a holder of the old one that it changed.
        assertEquals(storagePath(2631), found.get(0).ref().path().toString());
        // The old incarnation's unreachability does not hide the new one.
        assertFalse(directory.apply(new ClusterEvent.ReachableMember(old)));
        assertEquals(1, directory.find(NodeServices.STORAGE, "s1").size());
    }

    @Test
    void aMemberWithoutANameRoleIsNamedByHostAndPort() {
        Member unnamed = up(member(2641, 1, "storage"), 1);
        directory.apply(new ClusterEvent.MemberUp(unnamed));
        List<ClusterDirectory.Located<StorageServiceCommand>> found =
                directory.find(NodeServices.STORAGE, "127.0.0.1:2641");
        assertEquals(1, found.size(), directory.find(NodeServices.STORAGE).toString());
    }

    /**
     * When this node leaves (or is downed), Pekko's event publisher reports every other member removed as it stops:
     * the other nodes are no more gone than before, and a session must not close its mappings for it.
     */
    @Test
    void theListingStaysAsItWasOnceThisNodeLeaves() {
        Member s1 = up(member(2651, 1, "storage", "weft-node:s1"), 1);
        directory.apply(new ClusterEvent.MemberUp(s1));
        UniqueAddress self = org.apache.pekko.cluster.typed.Cluster.get(testKit.system()).selfMember().uniqueAddress();
        Member selfUp = up(Member$.MODULE$.apply(self, CollectionConverters.asScala(Set.of("client", "dc-default"))
                .toSet(), Version.Zero()), 2);
        directory.apply(new ClusterEvent.MemberUp(selfUp));
        directory.apply(new ClusterEvent.MemberLeft(selfUp.copy(MemberStatus.leaving())));

        assertFalse(directory.apply(new ClusterEvent.MemberRemoved(s1.copy(MemberStatus.removed()),
                MemberStatus.up())), "this node's own shutdown changes nothing");
        assertEquals(List.of(storagePath(2651)), storagePaths());
    }

    @Test
    void internalRolesAreTold() {
        assertTrue(ClusterDirectory.isInternalRole("weft-node:s1"));
        assertTrue(ClusterDirectory.isInternalRole("dc-default"));
        assertFalse(ClusterDirectory.isInternalRole("storage"));
    }
}
