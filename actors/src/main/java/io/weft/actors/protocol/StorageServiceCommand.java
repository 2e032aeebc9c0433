package io.weft.actors.protocol;

/**
 * A message a storage node's storage service accepts; other nodes find the service at its well-known path on every
 * storage member ({@code io.weft.actors.NodeServices#STORAGE}, through
 * {@code io.weft.actors.cluster.ClusterDirectory}).
 */
public interface StorageServiceCommand {
}
