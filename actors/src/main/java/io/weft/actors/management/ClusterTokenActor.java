package io.weft.actors.management;

import io.weft.actors.NodeServices;
import io.weft.actors.WeftSerializable;
import io.weft.actors.cluster.ClusterDirectory;
import java.time.Duration;
import java.util.Optional;
import org.apache.pekko.actor.Address;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;
import org.apache.pekko.cluster.Member;
import org.apache.pekko.cluster.ClusterEvent;
import org.apache.pekko.cluster.MemberStatus;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Subscribe;

/**
 * Hands the cluster's management token to every member (ROADMAP "Tokens": one cluster token). The cluster's token is
 * its <em>oldest</em> Up member's: that member generates one if it has none; every other member asks the oldest's
 * {@code ClusterTokenActor} (at its well-known path on that member, {@link NodeServices#MANAGEMENT_TOKEN}) and
 * adopts the answer into its {@link ManagementToken} (data-dir file and runtime file). A member asks again
 * whenever the oldest member changes, so two clusters whose nodes had different token files end up with the token of
 * the oldest member. A member with an explicit {@code weft.management.http.token} keeps it (and hands it out when it is
 * the oldest).
 *
 * <p>The token travels in a cluster message: across hosts only with Artery TLS (docs/security.md); any member may ask
 * for it — membership is the trust boundary.
 *
 * <p>It ticks only while it has not settled with the oldest member: once settled it stays quiet (an idle node's CPU,
 * issue 12) until a membership change, which can change the oldest member, arms the tick again.
 *
 * <p>One per actor-system incarnation, a system actor started by {@code WeftRuntime}; restarted on failure (its state
 * is whom it asked last, rebuilt by the next tick).
 */
public final class ClusterTokenActor extends AbstractBehavior<ClusterTokenActor.Command> {
    /** While this member has not got the oldest member's token, it asks this often. */
    static final Duration TICK = Duration.ofMillis(250);

    public interface Command {
    }

    /** Cross-node: what is your token? */
    public record TokenQuery(ActorRef<TokenAnswer> replyTo) implements Command, WeftSerializable {
    }

    /** Cross-node: the token of member {@code from} (its cluster address), "" when it has none yet. */
    public record TokenAnswer(String token, String from) implements Command, WeftSerializable {
    }

    private enum Tick implements Command {
        INSTANCE
    }

    private record MembershipChanged(ClusterEvent.MemberEvent event) implements Command {
    }

    public static Behavior<Command> create(ManagementToken token) {
        return Behaviors.setup(ctx -> Behaviors.withTimers(timers -> new ClusterTokenActor(ctx, timers, token)));
    }

    private final ManagementToken token;
    private final TimerScheduler<Command> timers;
    private final Cluster cluster;
    private final ClusterDirectory directory;
    /** The oldest member whose token this member holds (or itself, when it is the oldest). */
    private Address settledWith;

    private ClusterTokenActor(ActorContext<Command> ctx, TimerScheduler<Command> timers, ManagementToken token) {
        super(ctx);
        this.token = token;
        this.timers = timers;
        this.cluster = Cluster.get(ctx.getSystem());
        this.directory = new ClusterDirectory(ctx.getSystem());
        cluster.subscriptions().tell(new Subscribe<>(
                ctx.messageAdapter(ClusterEvent.MemberEvent.class, MembershipChanged::new),
                ClusterEvent.MemberEvent.class));
        armTick();
    }

    /** Ticks until settled; a no-op while the tick runs. */
    private void armTick() {
        if (!timers.isTimerActive(Tick.INSTANCE)) {
            timers.startTimerWithFixedDelay(Tick.INSTANCE, TICK);
        }
    }

    @Override
    public Receive<Command> createReceive() {
        return newReceiveBuilder()
                .onMessageEquals(Tick.INSTANCE, this::onTick)
                .onMessage(MembershipChanged.class, m -> {
                    armTick();
                    return this;
                })
                .onMessage(TokenQuery.class, q -> {
                    q.replyTo().tell(new TokenAnswer(token.current().orElse(""), self().toString()));
                    return this;
                })
                .onMessage(TokenAnswer.class, this::onAnswer)
                .build();
    }

    private Address self() {
        return cluster.selfMember().address();
    }

    private Behavior<Command> onTick() {
        Optional<Member> oldest = oldestUp();
        if (oldest.isEmpty()) {
            return this;
        }
        if (oldest.get().address().equals(settledWith)) {
            timers.cancel(Tick.INSTANCE); // settled: quiet until the membership changes
            return this;
        }
        if (oldest.get().address().equals(self())) {
            token.generateIfMissing();
            settledWith = self();
            return this;
        }
        // Until the oldest member's token actor runs, the query meets no actor and the next tick asks again.
        directory.at(oldest.get().address(), NodeServices.MANAGEMENT_TOKEN)
                .tell(new TokenQuery(getContext().getSelf().narrow()));
        return this;
    }

    private Behavior<Command> onAnswer(TokenAnswer answer) {
        Optional<Member> oldest = oldestUp();
        if (answer.token().isEmpty() || oldest.isEmpty() || !oldest.get().address().toString().equals(answer.from())) {
            return this; // not yet generated, or no longer the oldest: the next tick asks again
        }
        token.adopt(answer.token(), answer.from());
        settledWith = oldest.get().address();
        return this;
    }

    private Optional<Member> oldestUp() {
        Member oldest = null;
        for (Member m : cluster.state().getMembers()) {
            if (m.status() == MemberStatus.up() && (oldest == null || m.isOlderThan(oldest))) {
                oldest = m;
            }
        }
        return Optional.ofNullable(oldest);
    }
}
