package io.weft.actors.protocol;

import io.weft.actors.WeftSerializable;
import org.apache.pekko.actor.typed.ActorRef;

/** Drills: which process serves this storage node, so a client on the same host can signal it. */
public record DescribeProcess(ActorRef<ProcessInfo> replyTo) implements StorageServiceCommand, WeftSerializable {
}
