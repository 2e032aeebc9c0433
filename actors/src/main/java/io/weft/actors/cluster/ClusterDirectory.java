package io.weft.actors.cluster;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.apache.pekko.actor.Address;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorRefResolver;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.cluster.ClusterEvent;
import org.apache.pekko.cluster.Member;
import org.apache.pekko.cluster.MemberStatus;
import org.apache.pekko.cluster.UniqueAddress;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Subscribe;
import org.apache.pekko.remote.FailureDetectorRegistry;

/**
 * Where the services of the other nodes are, from cluster membership alone (issue 12: Weft does not use Pekko's
 * Receptionist, whose distributed-data replicator gossiped twice a second on every idle node).
 *
 * <p>Every node runs its services at fixed paths ({@link Service}, the constants in
 * {@code io.weft.actors.NodeServices}, spawned under those names by {@code NodeGuardian} and {@code WeftRuntime}).
 * A service of member <i>m</i> is addressed by resolving <i>m's address + the service's path</i>; it is listed while
 * <i>m</i> is Up (or Leaving), reachable from here (below) and has the service's role. A member's Weft node name
 * travels as its internal cluster role {@value #NODE_NAME_ROLE_PREFIX}{@code <name>} (added by {@code PekkoConfig});
 * a member without one (a node started without {@code weft.node.name}) is named {@code host:port}, as
 * {@code NodeGuardian} names it.
 *
 * <p>Reachable from here: Pekko's {@code UnreachableMember} is the union of every member's observations, so a client
 * node cut off from the cluster makes every member look unreachable to everyone. A member this node's own failure
 * detector watches is judged by that detector alone (read at each {@link #find}); only a member it does not watch
 * (large clusters watch a ring of neighbours) is judged by the cluster's verdict.
 *
 * <p>What membership cannot say: whether the service actor has started yet. A member is Up after its guardian has
 * spawned its services (the guardian starts with the actor system, the node joins afterwards), and every caller
 * already treats an unanswered ask as "retry later" (a session's open timeout and backoff, the token actor's tick,
 * the console's describe timeout), so a message that meets no actor costs one retry, not correctness.
 *
 * <p>A restarted member at the same address has a new uid: its old incarnation leaves the listing when it is
 * removed, the new one enters when Up; entries carry the {@link UniqueAddress} so callers can tell them apart
 * (the resolved {@link ActorRef}s of two incarnations are equal, they name a path).
 *
 * <p>Not thread-safe, not an actor: an actor keeps one and folds its cluster events into it ({@link #subscribe},
 * {@link #apply}); {@link #snapshot} reads the cluster's current state once, for a one-off lookup.
 */
public final class ClusterDirectory {
    /** The cluster role carrying a member's Weft node name; internal, not one of the user's {@code weft.node.roles}. */
    public static final String NODE_NAME_ROLE_PREFIX = "weft-node:";

    /**
     * A service every node with {@code role} (every node: null) runs at {@code /guardian/name}, accepting {@code T}.
     *
     * @param guardian "user" (spawned by the node's guardian) or "system" (a system actor)
     */
    public record Service<T>(String guardian, String name, String role) {
        public String path() {
            return "/" + guardian + "/" + name;
        }
    }

    /** Service {@code ref} of member {@code member}, whose Weft node name is {@code nodeName}. */
    public record Located<T>(String nodeName, UniqueAddress member, ActorRef<T> ref) {
    }

    /** This node's own failure detector, as far as the directory asks it. */
    public interface LocalReachability {
        /** Whether this node's failure detector watches {@code member} (sends it heartbeats). */
        boolean watches(Address member);

        /** Whether this node's failure detector hears {@code member} (its heartbeats answered in time). */
        boolean hears(Address member);

        /** The cluster's failure detector on {@code system}'s node. */
        static LocalReachability of(ActorSystem<?> system) {
            FailureDetectorRegistry<Address> detector =
                    org.apache.pekko.cluster.Cluster.get(Adapter.toClassic(system)).failureDetector();
            return new LocalReachability() {
                @Override
                public boolean watches(Address member) {
                    return detector.isMonitoring(member);
                }

                @Override
                public boolean hears(Address member) {
                    return detector.isAvailable(member);
                }
            };
        }
    }

    private static final Comparator<Member> OLDEST_FIRST = (a, b) -> a.isOlderThan(b) ? -1 : b.isOlderThan(a) ? 1 : 0;

    private final ActorRefResolver resolver;
    private final UniqueAddress self;
    private final LocalReachability fromHere;
    /**
     * This node is leaving, exiting or downed: the listing stays as it was. As Pekko's event publisher stops it
     * reports every other member removed, which says nothing about them (a session would close its mappings for it).
     */
    private boolean selfGoing;
    /** Members Up or Leaving, by uid-qualified address. */
    private final Map<UniqueAddress, Member> serving = new HashMap<>();
    /** Members some member's failure detector reported unreachable (the cluster's verdict, not this node's). */
    private final Set<UniqueAddress> unreachable = new HashSet<>();

    public ClusterDirectory(ActorSystem<?> system) {
        this(system, LocalReachability.of(system));
    }

    public ClusterDirectory(ActorSystem<?> system, LocalReachability fromHere) {
        this.resolver = ActorRefResolver.get(system);
        this.self = Cluster.get(system).selfMember().uniqueAddress();
        this.fromHere = fromHere;
    }

    /** The directory as the cluster's state is now: for one lookup, not to be kept up to date. */
    public static ClusterDirectory snapshot(ActorSystem<?> system) {
        ClusterDirectory directory = new ClusterDirectory(system);
        ClusterEvent.CurrentClusterState state = Cluster.get(system).state();
        for (Member m : state.getMembers()) {
            directory.update(m);
        }
        for (Member m : state.getUnreachable()) {
            directory.unreachable.add(m.uniqueAddress());
        }
        return directory;
    }

    /**
     * Subscribes {@code ctx}'s actor to the membership and reachability events {@link #apply} folds, wrapped by
     * {@code wrap}. The cluster sends the current state first, as events.
     */
    public static <C> void subscribe(ActorContext<C> ctx,
                                     java.util.function.Function<ClusterEvent.ClusterDomainEvent, C> wrap) {
        var cluster = Cluster.get(ctx.getSystem());
        ActorRef<ClusterEvent.MemberEvent> members = ctx.messageAdapter(ClusterEvent.MemberEvent.class, wrap::apply);
        ActorRef<ClusterEvent.ReachabilityEvent> reachability =
                ctx.messageAdapter(ClusterEvent.ReachabilityEvent.class, wrap::apply);
        cluster.subscriptions().tell(new Subscribe<>(members, ClusterEvent.MemberEvent.class));
        cluster.subscriptions().tell(new Subscribe<>(reachability, ClusterEvent.ReachabilityEvent.class));
    }

    /** Folds one cluster event in; true when it may have changed a listing. */
    public boolean apply(ClusterEvent.ClusterDomainEvent event) {
        if (selfGoing) {
            return false;
        }
        if (event instanceof ClusterEvent.MemberEvent changed && changed.member().uniqueAddress().equals(self)) {
            MemberStatus status = changed.member().status();
            selfGoing = status != MemberStatus.up() && status != MemberStatus.weaklyUp()
                    && status != MemberStatus.joining();
        }
        if (event instanceof ClusterEvent.MemberRemoved removed) {
            unreachable.remove(removed.member().uniqueAddress());
            return serving.remove(removed.member().uniqueAddress()) != null;
        }
        if (event instanceof ClusterEvent.MemberEvent changed) {
            return update(changed.member());
        }
        if (event instanceof ClusterEvent.UnreachableMember u) {
            return unreachable.add(u.member().uniqueAddress());
        }
        if (event instanceof ClusterEvent.ReachableMember r) {
            return unreachable.remove(r.member().uniqueAddress());
        }
        return false;
    }

    private boolean update(Member m) {
        MemberStatus status = m.status();
        if (status == MemberStatus.up() || status == MemberStatus.leaving()) {
            return serving.put(m.uniqueAddress(), m) == null;
        }
        return serving.remove(m.uniqueAddress()) != null;
    }

    private boolean unreachableFromHere(Member m) {
        if (!unreachable.contains(m.uniqueAddress())) {
            return false;
        }
        Address address = m.address();
        return !fromHere.watches(address) || !fromHere.hears(address);
    }

    private boolean offers(Member m, Service<?> service) {
        return service.role() == null || m.hasRole(service.role());
    }

    /** Service {@code service} on every serving member with its role reachable from here, oldest member first. */
    public <T> List<Located<T>> find(Service<T> service) {
        List<Member> members = new ArrayList<>();
        for (Member m : serving.values()) {
            if (offers(m, service) && !unreachableFromHere(m)) {
                members.add(m);
            }
        }
        members.sort(OLDEST_FIRST);
        List<Located<T>> out = new ArrayList<>(members.size());
        for (Member m : members) {
            out.add(new Located<>(nodeName(m), m.uniqueAddress(), at(m.address(), service)));
        }
        return out;
    }

    /** Service {@code service} on the reachable serving members named {@code nodeName} (normally one). */
    public <T> List<Located<T>> find(Service<T> service, String nodeName) {
        return find(service).stream().filter(l -> l.nodeName().equals(nodeName)).toList();
    }

    /**
     * Whether a member named {@code nodeName} serves {@code service} but is unreachable from here: no event may
     * announce its return (another member's verdict can outlast this node's), so a caller waiting for it polls.
     */
    public boolean hidden(Service<?> service, String nodeName) {
        for (Member m : serving.values()) {
            if (offers(m, service) && nodeName(m).equals(nodeName) && unreachableFromHere(m)) {
                return true;
            }
        }
        return false;
    }

    /** The first of {@link #find(Service, String)}, if any. */
    public <T> Optional<Located<T>> findOne(Service<T> service, String nodeName) {
        return find(service, nodeName).stream().findFirst();
    }

    /** Service {@code service} at the node {@code address}, listed or not. */
    public <T> ActorRef<T> at(Address address, Service<T> service) {
        return resolver.resolveActorRef(address + service.path());
    }

    /** A member's Weft node name: its {@value #NODE_NAME_ROLE_PREFIX} role, else {@code host:port}. */
    public static String nodeName(Member m) {
        for (String role : m.getRoles()) {
            if (role.startsWith(NODE_NAME_ROLE_PREFIX)) {
                return role.substring(NODE_NAME_ROLE_PREFIX.length());
            }
        }
        Address a = m.address();
        return (a.host().isDefined() ? a.host().get() : "") + ":" + (a.port().isDefined() ? a.port().get() : "");
    }

    /** Whether {@code role} is an internal one (Pekko's data-centre role, the node-name role), not a Weft role. */
    public static boolean isInternalRole(String role) {
        return role.startsWith("dc-") || role.startsWith(NODE_NAME_ROLE_PREFIX);
    }
}
