package io.weft.rdma.protocol;

import java.nio.charset.StandardCharsets;
import java.util.Base64;

/**
 * What the storage node's control plane hands one client node for one served device: the right to open sessions on
 * it over RDMA. Both sides hold the same grant; the handshake proves it ({@link Capability}) without sending it.
 *
 * @param clientNode the client node's name, sent in OPEN (at most {@link ControlMessage#MAX_NAME} UTF-8 bytes); the
 *                   storage side refuses an OPEN naming another node before it spends anything on it
 * @param identity   the client node's full identity as the control plane knows it (name and cluster incarnation),
 *                   never sent on the data wire but mixed into every proof: a grant made for one incarnation proves
 *                   nothing for the next one
 * @param capability {@link Capability#LENGTH} random bytes (SecureRandom), the shared secret
 */
public record Grant(String clientNode, String identity, byte[] capability) {
    public Grant {
        int nameBytes = clientNode.getBytes(StandardCharsets.UTF_8).length;
        if (nameBytes == 0 || nameBytes > ControlMessage.MAX_NAME) {
            throw new IllegalArgumentException("client node name must be 1.." + ControlMessage.MAX_NAME
                    + " UTF-8 bytes: " + clientNode);
        }
        if (identity.isEmpty()) {
            throw new IllegalArgumentException("grant identity is empty");
        }
        if (capability.length != Capability.LENGTH) {
            throw new IllegalArgumentException("capability must be " + Capability.LENGTH + " bytes");
        }
        capability = capability.clone();
    }

    /** A fresh grant with a new random capability. */
    public static Grant issue(String clientNode, String identity) {
        return new Grant(clientNode, identity, Capability.generate());
    }

    @Override
    public byte[] capability() {
        return capability.clone();
    }

    /** The capability as text, for carrying it in a control-plane message. */
    public String encodedCapability() {
        return Base64.getUrlEncoder().withoutPadding().encodeToString(capability);
    }

    public static Grant decode(String clientNode, String identity, String encodedCapability) {
        return new Grant(clientNode, identity, Base64.getUrlDecoder().decode(encodedCapability));
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Grant g && g.clientNode.equals(clientNode) && g.identity.equals(identity)
                && java.security.MessageDigest.isEqual(g.capability, capability);
    }

    @Override
    public int hashCode() {
        return clientNode.hashCode() * 31 + identity.hashCode();
    }

    /** Never prints the secret. */
    @Override
    public String toString() {
        return "Grant[clientNode=" + clientNode + ", identity=" + identity + ", capability=<" + Capability.LENGTH
                + " bytes>]";
    }
}
