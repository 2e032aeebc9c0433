package io.weft.actors.management;

import io.weft.actors.MapSpec;
import io.weft.actors.NodeState;
import io.weft.actors.ProbeResult;
import io.weft.actors.Reply;
import io.weft.actors.WeftSettings;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.actor.typed.ActorSystem;

/**
 * What management front ends ({@link JmxPublisher}) read and do on a node, without depending on the runtime that
 * implements it ({@code io.weft.actors.WeftRuntime}, which starts them): the node's identity, settings and published
 * state, and its operations, each answered asynchronously.
 */
public interface NodeOperations {

    String nodeName();

    WeftSettings settings();

    NodeState state();

    /** The current incarnation's actor system (its settings and log). */
    ActorSystem<?> system();

    CompletionStage<Reply> map(MapSpec spec);

    CompletionStage<Reply> unmap(String deviceId, boolean force);

    CompletionStage<Reply> remap(String deviceId);

    CompletionStage<Reply> addLeg(String deviceId, MapSpec.Leg leg);

    CompletionStage<Reply> removeLeg(String deviceId, int index);

    CompletionStage<Reply> resyncLeg(String deviceId, int index, boolean full);

    CompletionStage<ProbeResult> probe(String deviceId);

    CompletionStage<Reply> resize(String storageNode, String path, long newSize);

    CompletionStage<Reply> createVolume(String storageNode, String path, long size);
}
