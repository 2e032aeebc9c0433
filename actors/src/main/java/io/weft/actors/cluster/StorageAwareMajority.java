package io.weft.actors.cluster;

import org.apache.pekko.cluster.Member;
import org.apache.pekko.cluster.UniqueAddress;
import org.apache.pekko.cluster.sbr.DowningStrategy;
import scala.Option;
import scala.collection.immutable.SortedSet;

/**
 * Weft's split-brain rule: keep-majority counted over the nodes that hold devices first.
 *
 * <p>When the cluster splits (or nodes die), each side compares itself with the unreachable side: the side with more
 * {@code client} members survives; on a tie, the side with more storage-only members; on a tie again, the side
 * holding the member with the lowest address (as Pekko's keep-majority). A storage node's death therefore never
 * downs a healthy client: storage-only members are not counted until the clients are even. Two nodes (one storage,
 * one client): the storage node dies → the client keeps running and the storage node is downed. A partitioned client
 * in {storage, client 1, client 2}: one client on each side, the storage node breaks the tie.
 *
 * <p>Correctness does not depend on this rule: a storage node never serves two {@code rw} holders of one backend
 * (the mapping lease, see {@code BackendActor}); the rule only decides which members the cluster keeps. A client
 * that is downed anyway (a real minority, or a client-only side) starts a new cluster incarnation and keeps its
 * devices.
 *
 * <p>Built on Pekko's Split Brain Resolver ({@link DowningStrategy}, an internal Pekko API: check it when Pekko is
 * upgraded) so that stable-after, down-all-when-unstable and indirectly-connected handling stay Pekko's.
 */
public final class StorageAwareMajority extends DowningStrategy {
    public static final String CLIENT_ROLE = "client";
    public static final String STORAGE_ROLE = "storage";

    private static final Decision DOWN_UNREACHABLE = DowningStrategy.DownUnreachable$.MODULE$;
    private static final Decision DOWN_REACHABLE = DowningStrategy.DownReachable$.MODULE$;
    private static final Decision DOWN_ALL = DowningStrategy.DownAll$.MODULE$;
    private static final Decision DOWN_INDIRECTLY_CONNECTED = DowningStrategy.DownIndirectlyConnected$.MODULE$;

    /** Member counts of one side of a split. */
    public record Side(int clients, int storageOnly) {
    }

    public StorageAwareMajority(String selfDc, UniqueAddress selfUniqueAddress) {
        super(selfDc, selfUniqueAddress);
    }

    /**
     * The rule itself: whether the side {@code here} survives against {@code there}.
     *
     * @param lowestAddressHere whether the member with the lowest address is on this side (last tie-break)
     */
    public static boolean keepThisSide(Side here, Side there, boolean lowestAddressHere) {
        if (here.clients() != there.clients()) {
            return here.clients() > there.clients();
        }
        if (here.storageOnly() != there.storageOnly()) {
            return here.storageOnly() > there.storageOnly();
        }
        return lowestAddressHere;
    }

    @Override
    public Option<String> role() {
        return Option.empty();
    }

    @Override
    public Decision decide() {
        if (hasIndirectlyConnected()) {
            return DOWN_INDIRECTLY_CONNECTED;
        }
        SortedSet<Member> all = members();
        if (all.isEmpty()) {
            return DOWN_ALL;
        }
        boolean keep = keepThisSide(count(reachableMembers()), count(unreachableMembers()), !unreachable(all.head()));
        if (!keep) {
            return DOWN_REACHABLE;
        }
        // As Pekko's keep-majority: a membership change during the split (a member Joining here may be Up on the
        // other side, one Leaving here may be Exiting there) must not flip the result, or both sides could survive.
        SortedSet<Member> cautious = members(false, true);
        if (cautious.isEmpty()) {
            return DOWN_ALL;
        }
        boolean stillKeep = keepThisSide(count(reachableMembers(false, true)), count(unreachableMembers(true, false)),
                !unreachable(cautious.head()));
        return stillKeep ? DOWN_UNREACHABLE : DOWN_ALL;
    }

    private static Side count(SortedSet<Member> members) {
        int clients = 0;
        int storageOnly = 0;
        scala.collection.Iterator<Member> it = members.iterator();
        while (it.hasNext()) {
            Member m = it.next();
            if (m.hasRole(CLIENT_ROLE)) {
                clients++;
            } else if (m.hasRole(STORAGE_ROLE)) {
                storageOnly++;
            }
        }
        return new Side(clients, storageOnly);
    }
}
