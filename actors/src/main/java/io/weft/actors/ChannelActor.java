package io.weft.actors;

import io.weft.actors.transport.ChannelFailureListener;
import io.weft.actors.transport.DataChannel;
import io.weft.actors.transport.TransportFullException;
import io.weft.actors.transport.UnreachableEndpointException;
import java.time.Duration;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.PostStop;
import org.apache.pekko.actor.typed.PreRestart;
import org.apache.pekko.actor.typed.SupervisorStrategy;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;

/**
 * Supervises one data agent: a served channel on a storage node, a connected channel on a client node.
 *
 * <p>Supervision: the agent is opened when the actor starts. If opening throws, or the agent later reports that it
 * died, the actor fails with {@link AgentFailedException} and is restarted with exponential backoff
 * ({@code weft.client.reconnect.*}), which opens a fresh agent. Each incarnation closes its agent on stop and before a
 * restart, so an agent never outlives its actor. The listener hears {@link Up} after every successful open and
 * {@link Down} when the agent dies; it never talks to the agent per IO.
 */
public final class ChannelActor extends AbstractBehavior<ChannelActor.Command> {

    /** Opens the agent; the listener is how the agent reports its own death. */
    @FunctionalInterface
    public interface Opener {
        DataChannel open(ChannelFailureListener onFailure) throws Exception;
    }

    public interface Command {
    }

    /** From the agent's own thread: it died. Carries the incarnation so a dead agent cannot fail its successor. */
    private record AgentDied(Object incarnation, Throwable cause) implements Command {
    }

    /** Events for the parent. */
    public interface Event {
        String channelId();
    }

    /** A fresh agent is running. */
    public record Up(String channelId, DataChannel channel) implements Event {
    }

    /**
     * The agent died, or could not be opened; a new one is being opened after backoff.
     *
     * @param unreachable retrying cannot help: the endpoint can never be reached from here
     *                    ({@link UnreachableEndpointException}) or the transport has no room for the channel
     *                    ({@link TransportFullException})
     */
    public record Down(String channelId, String reason, boolean unreachable) implements Event {
    }

    /** Thrown to make the supervisor restart the actor (and so the agent). */
    public static final class AgentFailedException extends RuntimeException {
        public AgentFailedException(String message, Throwable cause) {
            super(message, cause);
        }
    }

    public static Behavior<Command> create(String channelId, Opener opener, ActorRef<Event> listener,
                                           Duration minBackoff, Duration maxBackoff) {
        Behavior<Command> body = Behaviors.setup(ctx -> new ChannelActor(ctx, channelId, opener, listener));
        return Behaviors.supervise(body)
                .onFailure(AgentFailedException.class,
                        SupervisorStrategy.restartWithBackoff(minBackoff, maxBackoff, 0.2)
                                // An agent dying is an expected event (peer gone); the Down event carries the reason.
                                .withLogLevel(org.slf4j.event.Level.INFO));
    }

    private final String channelId;
    private final ActorRef<Event> listener;
    private final Object incarnation = new Object();
    private final DataChannel channel;

    private ChannelActor(ActorContext<Command> ctx, String channelId, Opener opener, ActorRef<Event> listener) {
        super(ctx);
        this.channelId = channelId;
        this.listener = listener;
        ActorRef<Command> self = ctx.getSelf();
        Object me = incarnation;
        try {
            this.channel = opener.open(cause -> self.tell(new AgentDied(me, cause)));
        } catch (Exception e) {
            listener.tell(new Down(channelId, "open failed: " + e.getMessage(),
                    e instanceof UnreachableEndpointException || e instanceof TransportFullException));
            throw new AgentFailedException("channel " + channelId + " could not open: " + e.getMessage(), e);
        }
        listener.tell(new Up(channelId, channel));
    }

    @Override
    public Receive<Command> createReceive() {
        return newReceiveBuilder()
                .onMessage(AgentDied.class, this::onAgentDied)
                .onSignal(PostStop.class, s -> closeAgent())
                .onSignal(PreRestart.class, s -> closeAgent())
                .build();
    }

    private Behavior<Command> onAgentDied(AgentDied died) {
        if (died.incarnation() != incarnation) {
            return this;
        }
        listener.tell(new Down(channelId, String.valueOf(died.cause().getMessage()), false));
        throw new AgentFailedException("channel " + channelId + " agent died", died.cause());
    }

    private Behavior<Command> closeAgent() {
        try {
            channel.close();
        } catch (RuntimeException e) {
            getContext().getLog().warn("channel {} did not close cleanly: {}", channelId, e.toString());
        }
        return this;
    }
}
