package io.weft.actors.management.protocol;

import io.weft.actors.WeftSerializable;
import io.weft.actors.management.NodeDirectory;
import org.apache.pekko.actor.typed.ActorRef;

/** Asks a node's {@link NodeDirectory} (on any member) what it is; it answers with {@link NodeInfo}. */
public record DescribeNode(ActorRef<NodeInfo> replyTo) implements NodeDirectory.Command, WeftSerializable {
}
