package io.weft.actors.protocol;

import io.weft.actors.NodeState;
import io.weft.actors.WeftSerializable;
import java.util.List;

/** A storage node's opened backing stores ({@link ListBackends}). */
public record BackendList(String node, List<NodeState.BackendStatus> backends) implements WeftSerializable {
}
