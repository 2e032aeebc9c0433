package io.weft.actors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.actors.transport.ChannelFailureListener;
import io.weft.actors.transport.DataChannel;
import java.io.IOException;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class ChannelActorTest {
    private static ActorTestKit testKit;

    @BeforeAll
    static void start() {
        testKit = ActorTestKit.create();
    }

    @AfterAll
    static void stop() {
        testKit.shutdownTestKit();
    }

    /** A fake agent that counts opens and closes and lets the test kill it. */
    static final class FakeAgents implements ChannelActor.Opener {
        final AtomicInteger opens = new AtomicInteger();
        final AtomicInteger closes = new AtomicInteger();
        final AtomicInteger failFirst;
        final AtomicReference<ChannelFailureListener> lastListener = new AtomicReference<>();

        FakeAgents(int failFirst) {
            this.failFirst = new AtomicInteger(failFirst);
        }

        @Override
        public DataChannel open(ChannelFailureListener onFailure) throws Exception {
            if (failFirst.getAndDecrement() > 0) {
                throw new IOException("peer not there yet");
            }
            opens.incrementAndGet();
            lastListener.set(onFailure);
            return closes::incrementAndGet;
        }
    }

    private ActorRef<ChannelActor.Command> spawn(FakeAgents agents, TestProbe<ChannelActor.Event> probe) {
        return testKit.spawn(ChannelActor.create("c1", agents, probe.getRef(), Duration.ofMillis(10),
                Duration.ofMillis(50)));
    }

    @Test
    void failedOpensAreRetriedWithBackoffUntilTheAgentRuns() {
        FakeAgents agents = new FakeAgents(2);
        TestProbe<ChannelActor.Event> probe = testKit.createTestProbe();
        spawn(agents, probe);
        assertInstanceOf(ChannelActor.Down.class, probe.receiveMessage());
        assertInstanceOf(ChannelActor.Down.class, probe.receiveMessage());
        ChannelActor.Event up = probe.receiveMessage();
        assertInstanceOf(ChannelActor.Up.class, up);
        assertEquals("c1", up.channelId());
        assertEquals(1, agents.opens.get());
    }

    @Test
    void aDeadAgentIsClosedAndReplacedAndAStaleListenerCannotKillItsSuccessor() {
        FakeAgents agents = new FakeAgents(0);
        TestProbe<ChannelActor.Event> probe = testKit.createTestProbe();
        ActorRef<ChannelActor.Command> channel = spawn(agents, probe);
        assertInstanceOf(ChannelActor.Up.class, probe.receiveMessage());
        ChannelFailureListener first = agents.lastListener.get();
        first.channelFailed(new IOException("connection reset"));
        ChannelActor.Event down = probe.receiveMessage();
        assertInstanceOf(ChannelActor.Down.class, down);
        assertTrue(((ChannelActor.Down) down).reason().contains("connection reset"));
        assertInstanceOf(ChannelActor.Up.class, probe.receiveMessage());
        assertEquals(2, agents.opens.get());
        assertEquals(1, agents.closes.get(), "the dead agent was closed before the restart");
        // The first agent's listener fires again: the new incarnation ignores it.
        first.channelFailed(new IOException("late"));
        probe.expectNoMessage(Duration.ofMillis(200));
        testKit.stop(channel);
        probe.awaitAssert(() -> {
            assertEquals(2, agents.closes.get(), "stopping closes the running agent");
            return null;
        });
    }
}
