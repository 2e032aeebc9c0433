package io.weft.core.layeringfixture;

import org.apache.pekko.actor.typed.ActorRef;

/**
 * Test fixture for {@code ArchitectureTest}: a class in a fabric-core package that uses Pekko, which the layering
 * rule must reject. Lives in node-app's test sources, so it is never part of the main classes the rules check.
 */
public final class CoreClassReachingIntoPekko {
    private final ActorRef<String> controlPlane;

    public CoreClassReachingIntoPekko(ActorRef<String> controlPlane) {
        this.controlPlane = controlPlane;
    }

    public void report(String event) {
        controlPlane.tell(event);
    }
}
