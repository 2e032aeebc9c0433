package io.weft.actors.cluster;

import com.typesafe.config.Config;
import io.weft.actors.WeftSerializable;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import org.apache.pekko.actor.ActorSelection;
import org.apache.pekko.actor.Address;
import org.apache.pekko.actor.AddressFromURIString;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.DispatcherSelector;
import org.apache.pekko.actor.typed.Props;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;
import org.apache.pekko.cluster.MemberStatus;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Join;
import org.apache.pekko.cluster.typed.JoinSeedNodes;
import org.apache.pekko.pattern.Patterns;

/**
 * How a node joins its cluster (Weft's seed procedure), and its answer when another node asks whether it is in one.
 *
 * <ul>
 *   <li>No seeds ({@code weft.cluster.seed-nodes} empty): the node forms a cluster of its own (a single node).</li>
 *   <li>Not the first seed of the list: it joins the cluster of whichever other seed lets it in (Pekko's join
 *       procedure, retried every {@code seed-node-timeout}); it never forms a cluster itself.</li>
 *   <li>The first seed asks every other seed, every half second, whether it is in a cluster. One that is: the node
 *       joins the running cluster (through the other seeds; a restarted first seed never forms an island). Every
 *       other seed answers that it is not: all are starting, the node forms the cluster and they join it. Otherwise
 *       it forms a cluster only when, for {@code weft.cluster.seed-node-timeout}, no seed said it is in one and
 *       every seed that did not answer at all is not even listening on its cluster port (a TCP connect fails). A
 *       seed that listens but does not answer (slow to handshake with a restarted address, frozen, or cut off at
 *       the cluster protocol only) is waited for as long as that lasts: forming then could make an island.</li>
 * </ul>
 *
 * <p>Why not Pekko's own first-seed procedure: it forms a new cluster when no answer came within the timeout, and a
 * restarted first seed's answers are slow to come (the other nodes still hold its old incarnation's address
 * quarantined and handshake anew): on a loaded machine the restarted seed formed a cluster of its own, an island.
 *
 * <p>Runs as a system actor ({@code /system/weft-formation}) of every incarnation of the actor system; answers
 * {@link Probe}s for as long as the system runs. Supervision: none needed (no failure modes beyond a lost probe,
 * which the next round repeats); a crash stops it, which only stops answering probes.
 */
public final class ClusterFormation extends AbstractBehavior<ClusterFormation.Command> {
    public static final String NAME = "weft-formation";
    private static final Duration ROUND = Duration.ofMillis(500);
    private static final Duration PROBE_TIMEOUT = Duration.ofSeconds(1);
    private static final int TCP_CONNECT_TIMEOUT_MILLIS = 500;
    private static final Duration WARN_EVERY = Duration.ofSeconds(10);

    public interface Command {
    }

    /** From a starting first seed: is this node a member of a cluster? */
    public record Probe(ActorRef<Answer> replyTo) implements Command, WeftSerializable {
    }

    /** @param member whether the answering node is Up (or WeaklyUp) in a cluster */
    public record Answer(String address, boolean member) implements WeftSerializable {
    }

    private record Round() implements Command {
    }

    private record Heard(Address seed, SeedState state) implements Command {
    }

    /** What the first seed knows about another seed. */
    public enum SeedState {
        /** Not heard of yet. */
        UNKNOWN,
        /** Answered: it is in a cluster. */
        MEMBER,
        /** Answered: it is not in a cluster (starting too). */
        NOT_MEMBER,
        /** No answer, but its cluster port accepts connections: alive, slow. */
        LISTENING,
        /** No answer and nothing listens on its cluster port. */
        DOWN
    }

    /** What the first seed does after a round. */
    public enum Decision {
        JOIN_RUNNING_CLUSTER, FORM_CLUSTER, WAIT
    }

    /**
     * The first seed's rule.
     *
     * @param others  the other seeds' last known states (empty: this node is the only seed)
     * @param elapsed time since the node started asking
     */
    public static Decision decide(Collection<SeedState> others, Duration elapsed, Duration timeout) {
        if (others.contains(SeedState.MEMBER)) {
            return Decision.JOIN_RUNNING_CLUSTER;
        }
        if (others.stream().allMatch(s -> s == SeedState.NOT_MEMBER)) {
            return Decision.FORM_CLUSTER;
        }
        if (elapsed.compareTo(timeout) < 0) {
            return Decision.WAIT;
        }
        boolean anyAliveUnanswered = others.stream()
                .anyMatch(s -> s == SeedState.LISTENING || s == SeedState.UNKNOWN);
        return anyAliveUnanswered ? Decision.WAIT : Decision.FORM_CLUSTER;
    }

    /** Starts the procedure for this actor system; {@code config} holds the {@code weft.cluster} keys. */
    public static void start(ActorSystem<?> system, Config config) {
        String systemName = system.name();
        List<Address> seeds = new ArrayList<>();
        for (String seed : config.getStringList("weft.cluster.seed-nodes")) {
            seeds.add(parse(seed, systemName));
        }
        Duration timeout = config.getDuration("weft.cluster.seed-node-timeout");
        system.systemActorOf(Behaviors.<Command>setup(ctx -> Behaviors.withTimers(timers ->
                new ClusterFormation(ctx, timers, seeds, timeout))), NAME, Props.empty());
    }

    /** A seed as configured: {@code host:port} or a full {@code pekko://system@host:port}. */
    public static Address parse(String seed, String systemName) {
        return AddressFromURIString.parse(seed.startsWith("pekko://") ? seed : "pekko://" + systemName + "@" + seed);
    }

    private final Cluster cluster;
    private final Address self;
    private final List<Address> others = new ArrayList<>();
    private final Map<Address, SeedState> states = new LinkedHashMap<>();
    private final Set<Address> asking = new HashSet<>();
    private final Duration timeout;
    private final Executor blocking;
    private final TimerScheduler<Command> timers;
    private long startedNanos;
    private long warnedNanos;
    private boolean decided;

    private ClusterFormation(ActorContext<Command> ctx, TimerScheduler<Command> timers, List<Address> seeds,
                             Duration timeout) {
        super(ctx);
        this.timers = timers;
        this.cluster = Cluster.get(ctx.getSystem());
        this.self = cluster.selfMember().address();
        this.timeout = timeout;
        this.blocking = ctx.getSystem().dispatchers().lookup(DispatcherSelector.blocking());
        for (Address seed : seeds) {
            if (!seed.equals(self) && !others.contains(seed)) {
                others.add(seed);
            }
        }
        if (seeds.isEmpty()) {
            ctx.getLog().info("no seed nodes: forming a cluster of its own");
            cluster.manager().tell(Join.create(self));
            decided = true;
        } else if (!seeds.get(0).equals(self)) {
            // Pekko's join procedure for a node that is not the first seed never forms a cluster by itself.
            cluster.manager().tell(new JoinSeedNodes(others));
            decided = true;
        } else if (others.isEmpty()) {
            ctx.getLog().info("the only seed: forming the cluster");
            cluster.manager().tell(Join.create(self));
            decided = true;
        } else {
            ctx.getLog().info("first seed: asking {} whether a cluster runs before forming one", others);
            for (Address seed : others) {
                states.put(seed, SeedState.UNKNOWN);
            }
            startedNanos = System.nanoTime();
            timers.startTimerWithFixedDelay(new Round(), Duration.ZERO, ROUND);
        }
    }

    @Override
    public Receive<Command> createReceive() {
        return newReceiveBuilder()
                .onMessage(Probe.class, this::onProbe)
                .onMessage(Round.class, r -> onRound())
                .onMessage(Heard.class, this::onHeard)
                .build();
    }

    private Behavior<Command> onProbe(Probe probe) {
        MemberStatus status = cluster.selfMember().status();
        boolean member = status == MemberStatus.up() || status == MemberStatus.weaklyUp();
        probe.replyTo().tell(new Answer(self.hostPort(), member));
        return this;
    }

    private Behavior<Command> onRound() {
        for (Address seed : others) {
            if (asking.add(seed)) {
                ask(seed);
            }
        }
        return this;
    }

    /** One probe of one seed; a missing answer is followed by a TCP check of its cluster port. */
    private void ask(Address seed) {
        ActorSelection target = Adapter.toClassic(getContext().getSystem())
                .actorSelection(seed + "/system/" + NAME);
        CompletableFuture<SeedState> state = Patterns.askWithReplyTo(target,
                        replyTo -> new Probe(Adapter.toTyped(replyTo)), PROBE_TIMEOUT)
                .toCompletableFuture()
                .handle((answer, failure) -> answer instanceof Answer a
                        ? (a.member() ? SeedState.MEMBER : SeedState.NOT_MEMBER) : null)
                .thenCompose(answered -> answered != null ? CompletableFuture.completedFuture(answered)
                        : CompletableFuture.supplyAsync(() -> listening(seed) ? SeedState.LISTENING
                                : SeedState.DOWN, blocking));
        getContext().pipeToSelf(state, (s, failure) -> new Heard(seed, s != null ? s : SeedState.DOWN));
    }

    private static boolean listening(Address seed) {
        if (seed.host().isEmpty() || seed.port().isEmpty()) {
            return false;
        }
        try (Socket socket = new Socket()) {
            socket.connect(new InetSocketAddress(seed.host().get(), (Integer) seed.port().get()),
                    TCP_CONNECT_TIMEOUT_MILLIS);
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    private Behavior<Command> onHeard(Heard heard) {
        asking.remove(heard.seed());
        if (decided) {
            return this;
        }
        states.put(heard.seed(), heard.state());
        Duration elapsed = Duration.ofNanos(System.nanoTime() - startedNanos);
        switch (decide(states.values(), elapsed, timeout)) {
            case JOIN_RUNNING_CLUSTER -> {
                getContext().getLog().info("first seed: {} is in a running cluster; joining it (seeds {})",
                        heard.seed(), states);
                cluster.manager().tell(new JoinSeedNodes(others));
                finish();
            }
            case FORM_CLUSTER -> {
                getContext().getLog().info("first seed: no other seed is in a cluster ({}); forming the cluster",
                        states);
                cluster.manager().tell(Join.create(self));
                finish();
            }
            case WAIT -> {
                if (elapsed.compareTo(timeout) >= 0 && System.nanoTime() - warnedNanos > WARN_EVERY.toNanos()) {
                    warnedNanos = System.nanoTime();
                    getContext().getLog().warn("first seed: still waiting after {} s for an answer from the seeds"
                            + " that listen but do not answer ({}); it forms no cluster while they may be in one",
                            elapsed.toSeconds(), states);
                }
            }
        }
        return this;
    }

    private void finish() {
        decided = true;
        timers.cancelAll();
    }
}
