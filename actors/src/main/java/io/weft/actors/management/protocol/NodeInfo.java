package io.weft.actors.management.protocol;

import io.weft.actors.WeftSerializable;
import java.util.List;

/**
 * What a member says about itself for the console's Cluster view (what cluster membership does not carry).
 *
 * @param name        its {@code weft.node.name}
 * @param address     its cluster address ({@code pekko://weft@host:port}), the key to the membership entry
 * @param roles       its Weft roles (storage, client)
 * @param transports  the data transports it offers (weft.transport.enabled that came up)
 * @param console     its management HTTP base URI ("" when HTTP is off)
 * @param incarnation its actor-system incarnation (1, one more per rejoin after being downed)
 */
public record NodeInfo(String name, String address, List<String> roles, List<String> transports, String console,
                       int incarnation) implements WeftSerializable {
}
