package io.weft.rdma.client;

import io.weft.core.retry.Backoff;
import io.weft.rdma.protocol.AdminChannel;
import io.weft.rdma.verbs.VerbsConnection;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAdder;

/**
 * One path of a client session. The control thread owns the connections and publishes them to the IO agents
 * through volatile fields, in this order: {@link #io}, {@link #pool}, {@link #generation}, then {@link #state}.
 */
final class ClientPath {
    /** The storage side's chunk pool as seen through this path's session open. */
    record RemotePool(long address, int rkey, int chunkSize, int chunkCount, int maxIoSize, long token, int epoch) {
    }

    /** Attached to each IO connection so completions find their path without a lookup. */
    record IoTag(int slot, long generation) {
    }

    final int id;
    final int slot;
    final PathSpec spec;
    volatile PathState state = PathState.CONNECTING;
    volatile VerbsConnection[] io;
    volatile RemotePool pool;
    volatile long generation = -1;
    /** Set by an IO agent that saw this generation's connection fail. */
    volatile long failedGeneration = -1;
    volatile String lastError;
    /**
     * The latest connect attempt was refused: nothing listens at the remote address (a TCP reset to the SYN, software
     * provider), so the storage process or its RDMA server is gone, not a link that flaps (that times out).
     */
    volatile boolean connectRefused;
    volatile long rttNanos = Long.MAX_VALUE;
    final AtomicInteger inflight = new AtomicInteger();
    final LongAdder completed = new LongAdder();
    final LongAdder failedOver = new LongAdder();
    volatile long reconnects;

    // operator requests, acted on by the control thread
    volatile boolean removeRequested;
    volatile boolean disconnectRequested;
    volatile boolean reconnectRequested;

    // control thread only
    AdminChannel admin;
    /** Consecutive connect attempts since the path last connected or failed. */
    int attempts;
    /** Wait before the next attempt (see {@link PathSupervisor}). */
    final Backoff backoff;
    long nextAttemptNanos;
    long nextHeartbeatNanos;
    long lastAckNanos;
    long heartbeatSequence;
    boolean everConnected;
    ClientSessionOpen openResult;
    String openError;
    /** The storage side's CHALLENGE to the OPEN in progress (nonce, proof), or null. */
    byte[] challengeNonce;
    byte[] challengeProof;

    ClientPath(int id, int slot, PathSpec spec, Backoff backoff) {
        this.id = id;
        this.slot = slot;
        this.spec = spec;
        this.backoff = backoff;
    }

    void reportFailure(long gen, String reason) {
        lastError = reason;
        failedGeneration = gen;
    }

    PathStatus status() {
        long rtt = rttNanos;
        return new PathStatus(id, spec.remote(), spec.local(), state, rtt == Long.MAX_VALUE ? -1 : rtt / 1000,
                inflight.get(), completed.sum(), failedOver.sum(), reconnects, lastError);
    }

    /** What OPEN_OK said (control path object). */
    record ClientSessionOpen(RemotePool pool, long deviceSize, int logicalBlock, int preferredBlock,
                             int capabilities) {
    }
}
