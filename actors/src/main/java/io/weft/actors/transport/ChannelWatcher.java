package io.weft.actors.transport;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;

/**
 * Turns a transport's health (polled, control-plane rate) into the one {@link ChannelFailureListener} call its
 * {@code ChannelActor} waits for. The RDMA session and the CXL blkdev keep retrying or waiting by themselves; the
 * control plane wants to know when a channel has had no working path for longer than a grace period, so it can close
 * it (its in-flight IO then completes with ESHUTDOWN and is retried on the next path) and open a fresh one.
 *
 * <p>The grace is for a problem that may go away by itself (an RDMA path reconnecting after a flap). A transport
 * whose verdict is already debounced and final (a CXL backend whose heartbeat has been still past the dead timeout,
 * a queue failed for good) reports it {@link Problem#definite definite}: the channel is failed at that poll, not a
 * grace later, which is what keeps a killed storage process within DESIGN's 1 s (issue 17).
 *
 * <p>One daemon thread per node polls every watched channel every {@code grace / 5}, at most {@value #MAX_PERIOD_MS}
 * ms (so a definite verdict waits at most that long) and at least 20 ms: a channel that lost its path is closed
 * between {@code grace} and {@code grace} plus one period after. It polls only while a channel is
 * watched: a node with no data channel (a storage node, a client with no device mapped) has no timer at all
 * (issue 12). Why poll rather than wait for an event: the RDMA session's and CXL blkdev's health are states they
 * keep retrying in (no transition is reported), and a CXL peer's death shows only as a heartbeat that stops moving in
 * shared memory. Nothing here runs per IO.
 */
final class ChannelWatcher implements AutoCloseable {
    /** Polled health: null while healthy, else why the channel is not working right now. */
    interface Probe {
        Problem check();
    }

    /**
     * Why a channel is not working. {@code definite}: the transport's own verdict is already debounced and final (a
     * CXL backend whose heartbeat has been still past the dead timeout, a queue failed for good): no grace waits for
     * it to come back. Otherwise the problem may go away by itself (an RDMA path reconnecting) and gets the grace.
     */
    record Problem(String reason, boolean definite) {
        static Problem mayRecover(String reason) {
            return new Problem(reason, false);
        }

        static Problem definite(String reason) {
            return new Problem(reason, true);
        }
    }

    /** Longest poll period: how long a definite verdict can wait for the watcher, on top of the transport's own. */
    static final long MAX_PERIOD_MS = 100;

    private final ScheduledThreadPoolExecutor timer;
    private final long graceNanos;
    private final long periodMs;
    private final Map<Object, Watched> watched = new ConcurrentHashMap<>();
    /** The periodic poll while something is watched, else null; guarded by {@code this}. */
    private ScheduledFuture<?> polling;

    ChannelWatcher(java.time.Duration grace) {
        this.graceNanos = grace.toNanos();
        this.timer = new ScheduledThreadPoolExecutor(1, r -> {
            Thread t = new Thread(r, "weft-transport-watcher");
            t.setDaemon(true);
            return t;
        });
        timer.setRemoveOnCancelPolicy(true); // a stopped poll leaves no delayed task behind to wake the thread
        this.periodMs = Math.max(20, Math.min(MAX_PERIOD_MS, grace.toMillis() / 5));
    }

    /** Watches {@code key} until {@link #unwatch}; {@code onFailure} is called at most once. */
    void watch(Object key, Probe probe, ChannelFailureListener onFailure) {
        watched.put(key, new Watched(probe, onFailure));
        synchronized (this) {
            if (polling == null && !timer.isShutdown()) {
                polling = timer.scheduleWithFixedDelay(this::poll, periodMs, periodMs, TimeUnit.MILLISECONDS);
            }
        }
    }

    void unwatch(Object key) {
        watched.remove(key);
        stopPollingIfIdle();
    }

    int size() {
        return watched.size();
    }

    /** True while the periodic poll is scheduled (tests). */
    synchronized boolean polling() {
        return polling != null;
    }

    private synchronized void stopPollingIfIdle() {
        // Checked under the lock watch() takes after adding, so a channel watched meanwhile keeps the poll running.
        if (watched.isEmpty() && polling != null) {
            polling.cancel(false);
            polling = null;
        }
    }

    private void poll() {
        long now = System.nanoTime();
        for (Map.Entry<Object, Watched> e : watched.entrySet()) {
            Watched w = e.getValue();
            Problem problem;
            try {
                problem = w.probe.check();
            } catch (RuntimeException ex) {
                problem = Problem.mayRecover("health probe failed: " + ex);
            }
            if (problem == null) {
                w.badSince = 0;
                continue;
            }
            if (w.badSince == 0) {
                w.badSince = now;
            }
            boolean failed = problem.definite() || now - w.badSince >= graceNanos;
            if (failed && watched.remove(e.getKey(), w)) {
                w.onFailure.channelFailed(new java.io.IOException(problem.reason()));
            }
        }
        stopPollingIfIdle();
    }

    @Override
    public void close() {
        timer.shutdownNow();
        watched.clear();
    }

    private static final class Watched {
        final Probe probe;
        final ChannelFailureListener onFailure;
        long badSince; // watcher thread only

        Watched(Probe probe, ChannelFailureListener onFailure) {
            this.probe = probe;
            this.onFailure = onFailure;
        }
    }
}
