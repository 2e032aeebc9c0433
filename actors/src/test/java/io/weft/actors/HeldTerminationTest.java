package io.weft.actors;

import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.PostStop;
import org.apache.pekko.actor.typed.Props;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * A downed node whose old actor system does not finish terminating still comes back as a new incarnation, on the same
 * ports, once {@code weft.node.rejoin.termination-timeout} has passed (over Artery TLS a connection to a live peer can
 * hold the old system up for good; here an actor that does not stop holds it up, deterministically).
 */
class HeldTerminationTest {
    private static final Duration WAIT = Duration.ofSeconds(30);
    private final CountDownLatch release = new CountDownLatch(1);
    private WeftRuntime node;

    @AfterEach
    void stop() {
        release.countDown();
        if (node != null) {
            node.shutdown();
        }
    }

    /** An actor that, when stopped, holds its system's termination up until the test releases it. */
    private Behavior<Object> holdsTermination() {
        return Behaviors.receive(Object.class)
                .onSignal(PostStop.class, signal -> {
                    release.await(WAIT.toMillis() * 4, TimeUnit.MILLISECONDS);
                    return Behaviors.same();
                })
                .build();
    }

    @Test
    void aDownedIncarnationWhoseSystemDoesNotTerminateIsReplacedAfterTheTerminationTimeout() {
        node = WeftRuntime.start(TestNodes.config("solo", List.of("client"), null, List.of(),
                Map.of("weft.node.rejoin.min-backoff", "200ms", "weft.node.rejoin.termination-timeout", "2s")));
        assertTrue(node.awaitUp(WAIT), "the first incarnation is up");
        ActorSystem<?> first = node.system();
        var address = node.clusterAddress();
        int httpPort = node.httpUri().orElseThrow().getPort();
        first.systemActorOf(holdsTermination(), "holds-termination", Props.empty());

        org.apache.pekko.cluster.typed.Cluster.get(first).manager()
                .tell(new org.apache.pekko.cluster.typed.Down(address));
        // Its management HTTP is bound last: the incarnation has started when it is there.
        await("the downed node's second incarnation", WAIT,
                () -> node.incarnation() == 2 && node.httpUri().isPresent());
        assertTrue(node.awaitUp(WAIT), "the second incarnation is up");
        assertFalse(first.getWhenTerminated().toCompletableFuture().isDone(),
                "the first incarnation's system is still held up (else this test proves nothing)");
        assertEquals(address.port(), node.clusterAddress().port(), "same cluster port");
        assertEquals(httpPort, node.httpUri().orElseThrow().getPort(), "same management HTTP port");
    }
}
