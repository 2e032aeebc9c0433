package io.weft.rdma.client;

import java.net.InetSocketAddress;

/**
 * One route to the storage side.
 *
 * @param remote the storage listener for this path
 * @param local  local address to bind (picks the interface / port of the path), or {@code null}
 */
public record PathSpec(InetSocketAddress remote, InetSocketAddress local) {
    public static PathSpec to(InetSocketAddress remote) {
        return new PathSpec(remote, null);
    }
}
