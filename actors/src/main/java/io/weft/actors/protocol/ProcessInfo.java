package io.weft.actors.protocol;

import io.weft.actors.WeftSerializable;

/**
 * @param node   the storage node's name
 * @param pid    the node's JVM process id
 * @param bootId the kernel's boot id ({@code /proc/sys/kernel/random/boot_id}), "" when unreadable: two nodes
 *               with the same non-empty boot id run on the same host
 */
public record ProcessInfo(String node, long pid, String bootId) implements WeftSerializable {
}
