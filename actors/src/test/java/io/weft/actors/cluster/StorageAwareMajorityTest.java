package io.weft.actors.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.apache.pekko.actor.Address;
import org.apache.pekko.cluster.Member;
import org.apache.pekko.cluster.UniqueAddress;
import org.apache.pekko.cluster.sbr.DowningStrategy;
import org.apache.pekko.util.Version;
import org.junit.jupiter.api.Test;
import scala.jdk.javaapi.CollectionConverters;

/**
 * Weft's split-brain rule on the topologies the README and the issue name, decided by {@link StorageAwareMajority}
 * itself over real Pekko members (what each side of a split decides; both sides must agree on one survivor).
 * Ports give the address order: the lowest port is the lowest address (Pekko's last tie-break).
 */
class StorageAwareMajorityTest {
    private static final String DOWN_UNREACHABLE = "DownUnreachable";
    private static final String DOWN_REACHABLE = "DownReachable";

    private record Node(String name, int port, String... roles) {
        UniqueAddress address() {
            return new UniqueAddress(new Address("pekko", "weft", "127.0.0.1", port), (long) port);
        }

        Member member() {
            Set<String> roles = new java.util.HashSet<>(List.of(this.roles));
            roles.add("dc-default");
            return org.apache.pekko.cluster.Member$.MODULE$
                    .apply(address(), CollectionConverters.asScala(roles).toSet(), Version.Zero()).copyUp(port);
        }
    }

    /** What {@code self} decides when it can reach {@code reachable} (itself included) and not the rest. */
    private static String decision(Node self, List<Node> all, List<Node> reachable) {
        StorageAwareMajority s = new StorageAwareMajority("default", self.address());
        for (Node n : all) {
            if (reachable.contains(n)) {
                s.addReachable(n.member());
            } else {
                s.addUnreachable(n.member());
            }
        }
        DowningStrategy.Decision d = s.decide();
        return d.toString();
    }

    private static List<Node> others(List<Node> all, List<Node> side) {
        List<Node> rest = new ArrayList<>(all);
        rest.removeAll(side);
        return rest;
    }

    /** Asserts that {@code survivors} keep themselves and the other side downs itself. */
    private static void survivors(List<Node> all, List<Node> survivors) {
        for (Node n : survivors) {
            assertEquals(DOWN_UNREACHABLE, decision(n, all, survivors), n.name() + " keeps its side");
        }
        List<Node> rest = others(all, survivors);
        for (Node n : rest) {
            assertEquals(DOWN_REACHABLE, decision(n, all, rest), n.name() + " downs its own side");
        }
    }

    @Test
    void twoNodesTheStorageNodeDiesTheClientKeepsRunningEvenWithTheHigherAddress() {
        Node s = new Node("s", 25520, "storage");
        Node c = new Node("c", 25521, "client");
        List<Node> all = List.of(s, c);
        assertEquals(DOWN_UNREACHABLE, decision(c, all, List.of(c)));
        // A split of the two: the client's side survives on both sides' reckoning.
        survivors(all, List.of(c));
    }

    @Test
    void bothStorageNodesGoneTheLoneClientIsKept() {
        Node s1 = new Node("s1", 25520, "storage");
        Node s2 = new Node("s2", 25521, "storage");
        Node c = new Node("c", 25522, "client");
        survivors(List.of(s1, s2, c), List.of(c));
    }

    @Test
    void aPartitionedClientLosesToTheSideWithTheStorageNodeEvenWithTheLowestAddress() {
        Node c1 = new Node("c1", 25520, "client");
        Node s = new Node("s", 25521, "storage");
        Node c2 = new Node("c2", 25522, "client");
        survivors(List.of(c1, s, c2), List.of(s, c2));
    }

    @Test
    void theReadmeClusterOfNodesWithBothRolesIsPlainKeepMajority() {
        Node a = new Node("a", 25520, "storage", "client");
        Node b = new Node("b", 25521, "storage", "client");
        Node c = new Node("c", 25522, "storage", "client");
        List<Node> all = List.of(a, b, c);
        survivors(all, List.of(b, c));
        survivors(all, List.of(a, c));
        survivors(all, List.of(a, b));
    }

    @Test
    void evenClientsAndEvenStorageFallBackToTheLowestAddress() {
        Node s1 = new Node("s1", 25520, "storage");
        Node c1 = new Node("c1", 25521, "client");
        Node s2 = new Node("s2", 25522, "storage");
        Node c2 = new Node("c2", 25523, "client");
        survivors(List.of(s1, c1, s2, c2), List.of(s1, c1));
    }

    @Test
    void theRuleOrdersClientsThenStorageThenAddress() {
        var one = new StorageAwareMajority.Side(1, 0);
        var oneWithStorage = new StorageAwareMajority.Side(1, 1);
        var two = new StorageAwareMajority.Side(2, 0);
        assertEquals(true, StorageAwareMajority.keepThisSide(two, oneWithStorage, false));
        assertEquals(true, StorageAwareMajority.keepThisSide(oneWithStorage, one, false));
        assertEquals(false, StorageAwareMajority.keepThisSide(one, oneWithStorage, true));
        assertEquals(true, StorageAwareMajority.keepThisSide(one, one, true));
        assertEquals(false, StorageAwareMajority.keepThisSide(one, one, false));
    }
}
