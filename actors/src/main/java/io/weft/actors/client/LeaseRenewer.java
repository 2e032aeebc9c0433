package io.weft.actors.client;

import io.weft.actors.NodeState;
import io.weft.actors.protocol.BackendCommand;
import io.weft.actors.protocol.Lease;
import io.weft.actors.protocol.LeaseRenewerCommand;
import io.weft.actors.protocol.LeaseUnknown;
import io.weft.actors.protocol.LeasesRenewed;
import io.weft.actors.protocol.MappingRevoked;
import io.weft.actors.protocol.RenewLeases;
import io.weft.actors.protocol.SessionCommand;
import io.weft.actors.protocol.StorageServiceCommand;
import io.weft.actors.protocol.StoreInfoChanged;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.Extension;
import org.apache.pekko.actor.typed.ExtensionId;
import org.apache.pekko.actor.typed.Props;
import org.apache.pekko.actor.typed.Terminated;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;

/**
 * Renews the mapping leases of every session of a client node, batched per storage node (issue 12): once per
 * {@code weft.client.heartbeat-interval} it sends each storage node's storage service ONE
 * {@link RenewLeases} naming every mapping this node holds there, instead of one heartbeat per device.
 * The storage side renews each named mapping's lease in its backend actor; a mapping left out of the batch (its
 * session stopped renewing) expires alone after {@code weft.storage.mapping-lease}, exactly as before.
 *
 * <p>What a per-device heartbeat told a session, the batch tells it too: a batch unanswered
 * {@code heartbeat-misses} times in a row tells every session on that storage node ({@link
 * SessionActor.RenewalsUnanswered}); a mapping the storage node no longer knows is reported back here
 * ({@link LeaseUnknown}) and passed to its session as {@link MappingRevoked}; a size that differs from
 * the one the session knows comes back to the session as {@link StoreInfoChanged}. The timer runs only while
 * some lease is registered.
 *
 * <p>Leases carried by the data path (issue 12): a mapping whose storage node counts its transport's own liveness as a
 * renewal (RDMA admin heartbeats, CXL blkdev heartbeats; {@link Register#carriedByDataPath}) is renewed by message
 * only as an audit, every {@code weft.client.lease-audit-interval}, in a batch of its own. The audit still brings back
 * what a renewal does (LeaseUnknown, a size mismatch) and still counts as unanswered; a dead storage node is noticed
 * first by the transport (the channel fails after {@code weft.transport.channel-grace}). The other mappings are
 * renewed every heartbeat interval as before; a session re-registers its mapping whenever its data path comes or goes.
 *
 * <p>One renewer per actor system and client settings ({@link #of}), a system actor like the Receptionist. Sessions
 * register on open and unregister when they drop their path; the renewer watches them, so a session that stops
 * without unregistering stops being renewed. Supervision: none needed beyond the default (stop on failure would lose
 * every lease; it holds no IO and throws nothing by design — a failure is a bug, and the leases then expire, which
 * the sessions see as unanswered renewals once they re-register after their path is lost).
 */
public final class LeaseRenewer extends AbstractBehavior<LeaseRenewerCommand> {

    /** Its own messages, from this node's sessions; the cross-node ones are in {@code io.weft.actors.protocol}. */
    public interface Command extends LeaseRenewerCommand {
    }

    /**
     * Renew {@code mappingId} on the storage node {@code storage} (its backend actor {@code backend}) every interval,
     * or every audit interval when {@code carriedByDataPath}, until {@link Unregister}; a newer Register of the same
     * mapping id replaces it (a changed size, a data path that came or went).
     */
    public record Register(String mappingId, ActorRef<StorageServiceCommand> storage,
                           ActorRef<BackendCommand> backend, long knownSize,
                           ActorRef<SessionCommand> session, NodeState.SessionView view,
                           boolean carriedByDataPath) implements Command {
        /** A lease renewed by message every heartbeat interval. */
        public Register(String mappingId, ActorRef<StorageServiceCommand> storage, ActorRef<BackendCommand> backend,
                        long knownSize, ActorRef<SessionCommand> session, NodeState.SessionView view) {
            this(mappingId, storage, backend, knownSize, session, view, false);
        }
    }

    public record Unregister(String mappingId) implements Command {
    }

    /** Renew the message-renewed leases ({@code audit} false) or audit the ones carried by the data path. */
    private record Tick(boolean audit) implements Command {
    }

    private static final String RENEW_TIMER = "renew";
    private static final String AUDIT_TIMER = "audit";

    private record BatchResult(ActorRef<StorageServiceCommand> storage, List<String> mappingIds,
                               LeasesRenewed reply, Throwable failure) implements Command {
    }

    /** The node's renewer for these settings, started on first use. */
    public static ActorRef<LeaseRenewerCommand> of(ActorSystem<?> system, String clientNode, Duration interval,
            int misses, Duration auditInterval) {
        return Renewers.ID.apply(system).renewer(system, clientNode, interval, misses, auditInterval);
    }

    public static Behavior<LeaseRenewerCommand> create(String clientNode, Duration interval, int misses,
            Duration auditInterval) {
        return Behaviors.setup(ctx -> Behaviors.withTimers(timers ->
                new LeaseRenewer(ctx, timers, clientNode, interval, misses, auditInterval)));
    }

    private final TimerScheduler<LeaseRenewerCommand> timers;
    private final String clientNode;
    private final Duration interval;
    private final int misses;
    private final Duration auditInterval;
    private final Map<String, Register> leases = new LinkedHashMap<>();
    /** Batches in a row without an answer, per storage node. */
    private final Map<ActorRef<StorageServiceCommand>, Integer> unanswered = new HashMap<>();

    private LeaseRenewer(ActorContext<LeaseRenewerCommand> ctx, TimerScheduler<LeaseRenewerCommand> timers,
                         String clientNode, Duration interval, int misses, Duration auditInterval) {
        super(ctx);
        this.timers = timers;
        this.clientNode = clientNode;
        this.interval = interval;
        this.misses = misses;
        this.auditInterval = auditInterval;
    }

    @Override
    public Receive<LeaseRenewerCommand> createReceive() {
        return newReceiveBuilder()
                .onMessage(Register.class, this::onRegister)
                .onMessage(Unregister.class, u -> {
                    leases.remove(u.mappingId());
                    adjustTimers();
                    return this;
                })
                .onMessage(Tick.class, this::onTick)
                .onMessage(BatchResult.class, this::onBatchResult)
                .onMessage(LeaseUnknown.class, this::onUnknown)
                .onSignal(Terminated.class, t -> {
                    leases.values().removeIf(r -> r.session().equals(t.getRef()));
                    adjustTimers();
                    return this;
                })
                .build();
    }

    private Behavior<LeaseRenewerCommand> onRegister(Register register) {
        leases.put(register.mappingId(), register);
        getContext().watch(register.session());
        adjustTimers();
        return this;
    }

    /** Each timer runs only while some lease of its kind is registered. */
    private void adjustTimers() {
        boolean renew = false;
        boolean audit = false;
        for (Register r : leases.values()) {
            renew |= !r.carriedByDataPath();
            audit |= r.carriedByDataPath();
        }
        adjustTimer(RENEW_TIMER, renew, false, interval);
        adjustTimer(AUDIT_TIMER, audit, true, auditInterval);
        if (leases.isEmpty()) {
            unanswered.clear();
        }
    }

    private void adjustTimer(String key, boolean needed, boolean audit, Duration every) {
        if (!needed) {
            timers.cancel(key);
        } else if (!timers.isTimerActive(key)) {
            timers.startTimerWithFixedDelay(key, new Tick(audit), every);
        }
    }

    private Behavior<LeaseRenewerCommand> onTick(Tick tick) {
        Map<ActorRef<StorageServiceCommand>, List<Lease>> batches = new HashMap<>();
        for (Register r : leases.values()) {
            if (r.carriedByDataPath() != tick.audit()) {
                continue;
            }
            batches.computeIfAbsent(r.storage(), s -> new ArrayList<>())
                    .add(new Lease(r.mappingId(), r.backend(), r.knownSize()));
        }
        ActorRef<LeaseRenewerCommand> self = getContext().getSelf();
        batches.forEach((storage, batch) -> {
            List<String> ids = batch.stream().map(Lease::mappingId).toList();
            getContext().ask(LeasesRenewed.class, storage, interval,
                    replyTo -> new RenewLeases(clientNode, List.copyOf(batch), self, replyTo),
                    (reply, failure) -> new BatchResult(storage, ids, reply, failure));
        });
        return this;
    }

    private Behavior<LeaseRenewerCommand> onBatchResult(BatchResult result) {
        if (result.failure() == null) {
            unanswered.remove(result.storage());
            long now = System.currentTimeMillis();
            for (String id : result.mappingIds()) {
                Register r = leases.get(id);
                if (r != null) {
                    r.view().leaseRenewed(now);
                }
            }
            return this;
        }
        int missed = unanswered.merge(result.storage(), 1, Integer::sum);
        if (missed >= misses) {
            unanswered.remove(result.storage());
            for (Register r : leases.values()) {
                if (r.storage().equals(result.storage())) {
                    r.session().tell(new SessionActor.RenewalsUnanswered(r.mappingId(), missed));
                }
            }
        }
        return this;
    }

    private Behavior<LeaseRenewerCommand> onUnknown(LeaseUnknown unknown) {
        Register r = leases.remove(unknown.mappingId());
        if (r != null) {
            r.session().tell(new MappingRevoked(r.mappingId(), "storage node no longer knows the"
                    + " mapping"));
        }
        adjustTimers();
        return this;
    }

    /** The renewers of one actor system, one per client settings (a node has one; tests may run several). */
    static final class Renewers implements Extension {
        static final ExtensionId<Renewers> ID = new ExtensionId<>() {
            @Override
            public Renewers createExtension(ActorSystem<?> system) {
                return new Renewers();
            }
        };

        private final Map<String, ActorRef<LeaseRenewerCommand>> renewers = new ConcurrentHashMap<>();
        private final AtomicInteger seq = new AtomicInteger();

        ActorRef<LeaseRenewerCommand> renewer(ActorSystem<?> system, String clientNode, Duration interval, int misses,
                                              Duration auditInterval) {
            String key = clientNode + "|" + interval.toNanos() + "|" + misses + "|" + auditInterval.toNanos();
            return renewers.computeIfAbsent(key, k -> system.systemActorOf(
                    create(clientNode, interval, misses, auditInterval),
                    "weft-lease-renewer-" + seq.incrementAndGet(), Props.empty()));
        }
    }
}
