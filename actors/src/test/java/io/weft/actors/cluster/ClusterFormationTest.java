package io.weft.actors.cluster;

import static io.weft.actors.cluster.ClusterFormation.Decision.FORM_CLUSTER;
import static io.weft.actors.cluster.ClusterFormation.Decision.JOIN_RUNNING_CLUSTER;
import static io.weft.actors.cluster.ClusterFormation.Decision.WAIT;
import static io.weft.actors.cluster.ClusterFormation.SeedState.DOWN;
import static io.weft.actors.cluster.ClusterFormation.SeedState.LISTENING;
import static io.weft.actors.cluster.ClusterFormation.SeedState.MEMBER;
import static io.weft.actors.cluster.ClusterFormation.SeedState.NOT_MEMBER;
import static io.weft.actors.cluster.ClusterFormation.SeedState.UNKNOWN;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The first seed's rule: join a running cluster, form one, or wait. */
class ClusterFormationTest {
    private static final Duration TIMEOUT = Duration.ofSeconds(5);
    private static final Duration EARLY = Duration.ofSeconds(1);
    private static final Duration LATE = Duration.ofSeconds(6);

    @Test
    void anyOtherSeedInAClusterMeansJoinItAtOnce() {
        assertEquals(JOIN_RUNNING_CLUSTER, ClusterFormation.decide(List.of(DOWN, MEMBER), EARLY, TIMEOUT));
        assertEquals(JOIN_RUNNING_CLUSTER, ClusterFormation.decide(List.of(LISTENING, MEMBER), LATE, TIMEOUT));
    }

    @Test
    void everyOtherSeedStartingTooMeansFormAtOnce() {
        assertEquals(FORM_CLUSTER, ClusterFormation.decide(List.of(NOT_MEMBER, NOT_MEMBER), EARLY, TIMEOUT));
    }

    @Test
    void noAnswerFormsOnlyAfterTheTimeoutAndOnlyWhenNobodyListens() {
        assertEquals(WAIT, ClusterFormation.decide(List.of(DOWN, DOWN), EARLY, TIMEOUT));
        assertEquals(FORM_CLUSTER, ClusterFormation.decide(List.of(DOWN, DOWN), LATE, TIMEOUT));
        assertEquals(FORM_CLUSTER, ClusterFormation.decide(List.of(DOWN, NOT_MEMBER), LATE, TIMEOUT));
    }

    @Test
    void aSeedThatListensButDoesNotAnswerIsWaitedFor() {
        // The restarted first seed of a running cluster: the others' answers are slow, not absent; or a seed cut off
        // at the cluster protocol only. Forming a cluster then could make an island.
        assertEquals(WAIT, ClusterFormation.decide(List.of(LISTENING, DOWN), LATE, TIMEOUT));
        assertEquals(WAIT, ClusterFormation.decide(List.of(UNKNOWN, NOT_MEMBER), LATE, TIMEOUT));
        assertEquals(WAIT, ClusterFormation.decide(List.of(LISTENING), TIMEOUT.multipliedBy(100), TIMEOUT));
    }

    @Test
    void seedsParseAsHostPortOrFullAddress() {
        assertEquals("pekko://weft@10.0.0.1:2552", ClusterFormation.parse("10.0.0.1:2552", "weft").toString());
        assertEquals("pekko://weft@h:1", ClusterFormation.parse("pekko://weft@h:1", "weft").toString());
    }
}
