package io.weft.rdma.client;

import io.weft.rdma.protocol.AdminChannel;
import io.weft.rdma.protocol.ControlMessage;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The fences of a session: for every set of IO connections taken down while they carried IO, the storage side is
 * asked (FENCE on any connected path's admin channel) to stop executing what was posted on them, and the requests
 * posted there are posted again only once it acknowledged (FENCE_ACK). That is what keeps a retried WRITE from
 * landing after a newer one.
 *
 * <p>Threads: the session's control thread adds, asks and records acknowledgements; the queue agents read
 * {@link #acks()} (moves on every acknowledgement) and {@link #isFenced}; {@link #pendingCount()} is a snapshot for
 * stats. Grows by one generation per path failure (control path, not per request).
 */
final class SessionFences {
    /** A fence the storage side has not acknowledged yet, and the admin channel it was last asked on. */
    private static final class PendingFence {
        final int pathId;
        final long generation;
        AdminChannel askedOn;

        PendingFence(int pathId, long generation) {
            this.pathId = pathId;
            this.generation = generation;
        }
    }

    /** Control thread only. */
    private final List<PendingFence> pending = new ArrayList<>();
    private final Set<Long> fencedGenerations = ConcurrentHashMap.newKeySet();
    private final Runnable wakeAgents;
    private volatile long acks;
    private volatile int pendingSnapshot;

    /** @param wakeAgents rings every queue agent's doorbell (an acknowledgement may let their requests move) */
    SessionFences(Runnable wakeAgents) {
        this.wakeAgents = wakeAgents;
    }

    /** Control thread: the IO connections of {@code generation} on path {@code pathId} were taken down carrying IO. */
    void add(int pathId, long generation) {
        pending.add(new PendingFence(pathId, generation));
    }

    /** Control thread: {@code channel} is gone; fences asked on it are asked again on another one. */
    void channelLost(AdminChannel channel) {
        for (PendingFence f : pending) {
            if (f.askedOn == channel) {
                f.askedOn = null; // its answer cannot come on this channel any more
            }
        }
    }

    /**
     * Control thread: asks for every unacknowledged fence on {@code via} (any connected path's admin channel: the
     * failed one may be unreachable), unless already asked there; {@code via} null means no path is connected yet.
     */
    void ask(AdminChannel via) {
        pendingSnapshot = pending.size();
        if (pending.isEmpty() || via == null) {
            return; // asked as soon as a path (re)connects
        }
        for (PendingFence f : pending) {
            if (f.askedOn != via) {
                ControlMessage m = via.beginSend();
                if (via.send(m.encodeFence(ControlMessage.FENCE, f.pathId, (int) f.generation))) {
                    f.askedOn = via;
                }
            }
        }
    }

    /** Control thread: FENCE_ACK arrived. */
    void acknowledged(int pathId, int generation) {
        for (Iterator<PendingFence> it = pending.iterator(); it.hasNext(); ) {
            PendingFence f = it.next();
            if (f.pathId == pathId && (int) f.generation == generation) {
                it.remove();
                // Published before the agents may act on the ack: once a request retried after this fence has
                // completed, stats no longer count the fence (the control thread can be descheduled right here).
                pendingSnapshot = pending.size();
                fencedGenerations.add(f.generation);
                acks++;
                wakeAgents.run();
            }
        }
        pendingSnapshot = pending.size();
    }

    /** Agents: has the storage side acknowledged the fence of IO connections of {@code generation}? */
    boolean isFenced(long generation) {
        return fencedGenerations.contains(generation);
    }

    /** Agents: moves on every acknowledgement (a cheap check before scanning for fenced requests). */
    long acks() {
        return acks;
    }

    /** Any thread: fences not acknowledged yet, as of the control thread's last step. */
    int pendingCount() {
        return pendingSnapshot;
    }
}
