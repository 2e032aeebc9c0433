package io.weft.actors.protocol;

import io.weft.actors.WeftSerializable;

/** A {@link RenewLeases} batch of {@code count} leases arrived. */
public record LeasesRenewed(int count) implements WeftSerializable {
}
