package io.weft.actors.publishfixture;

import io.weft.actors.DeviceState;
import io.weft.actors.NodeState;

/**
 * Test fixture for {@code ArchitectureTest}: a class that is not a device's actor but publishes the device's state,
 * which the ownership rule must reject. Lives in node-app's test sources, so it is never part of the main classes the
 * rules check.
 */
public final class StrayPublisher {
    private StrayPublisher() {
    }

    public static void markReady(NodeState.DeviceEntry entry) {
        entry.update(d -> d.withState(DeviceState.READY));
    }
}
