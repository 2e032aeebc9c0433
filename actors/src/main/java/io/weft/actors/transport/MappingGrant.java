package io.weft.actors.transport;

import io.weft.rdma.protocol.Capability;
import io.weft.rdma.protocol.Grant;
import java.util.Base64;
import org.apache.pekko.actor.Address;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.cluster.Member;
import org.apache.pekko.cluster.typed.Cluster;

/**
 * The storage node's grant of one mapping to one client node: an unguessable secret (32 bytes from SecureRandom)
 * bound to the client node's name and cluster incarnation and to the mapping. Made by the backend when it grants
 * the mapping, handed to the transport that serves it, and carried to that client only inside the open reply's
 * endpoint properties; the data-plane handshake proves it without sending it (RDMA: ControlMessage CHALLENGE/PROOF).
 * A new incarnation of the client node opens again and gets a new grant; the old one dies with its mapping.
 *
 * @param clientNode the client node's {@code weft.node.name}
 * @param identity   the client node's name, cluster address and incarnation uid ({@code name@address#uid})
 * @param capability the secret, base64url without padding
 */
public record MappingGrant(String clientNode, String identity, String capability) {

    /** A fresh grant for the node that owns {@code session}. */
    public static MappingGrant issue(String clientNode, ActorRef<?> session, ActorSystem<?> system) {
        return new MappingGrant(clientNode, identityOf(clientNode, session, system),
                Base64.getUrlEncoder().withoutPadding().encodeToString(Capability.generate()));
    }

    /** For tests and single-process tools: a grant for {@code clientNode} with a fixed identity. */
    public static MappingGrant issue(String clientNode, String identity) {
        return new MappingGrant(clientNode, identity,
                Base64.getUrlEncoder().withoutPadding().encodeToString(Capability.generate()));
    }

    /** The same grant for the RDMA protocol. */
    public Grant toRdma() {
        return Grant.decode(clientNode, identity, capability);
    }

    public byte[] capabilityBytes() {
        return Base64.getUrlDecoder().decode(capability);
    }

    /** Never prints the secret. */
    @Override
    public String toString() {
        return "MappingGrant[clientNode=" + clientNode + ", identity=" + identity + ", capability=<redacted>]";
    }

    private static String identityOf(String clientNode, ActorRef<?> session, ActorSystem<?> system) {
        Address address = session.path().address();
        try {
            Cluster cluster = Cluster.get(system);
            if (!address.hasGlobalScope()) {
                address = cluster.selfMember().address();
            }
            for (Member m : cluster.state().getMembers()) {
                if (m.address().equals(address)) {
                    return clientNode + "@" + address + "#" + m.uniqueAddress().longUid();
                }
            }
        } catch (RuntimeException e) {
            // Not a cluster actor system (unit tests): the session actor's own incarnation stands in.
        }
        return clientNode + "@" + address + "#a" + session.path().uid();
    }
}
