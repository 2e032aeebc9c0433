package io.weft.actors.transport;

import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * Turns a transport's health (polled, control-plane rate) into the one {@link ChannelFailureListener} call its
 * {@code ChannelActor} waits for. The RDMA session and the CXL blkdev keep retrying or waiting by themselves; the
 * control plane wants to know when a channel has had no working path for longer than a grace period, so it can close
 * it (its in-flight IO then completes with ESHUTDOWN and is retried on the next path) and open a fresh one.
 *
 * <p>One daemon thread per node polls every watched channel every {@code grace / 5} (at least 20 ms). Nothing here
 * runs per IO.
 */
final class ChannelWatcher implements AutoCloseable {
    /** Polled health: null while healthy, else why the channel is not working right now. */
    interface Probe extends Supplier<String> {
    }

    private final ScheduledExecutorService timer;
    private final long graceNanos;
    private final Map<Object, Watched> watched = new ConcurrentHashMap<>();

    ChannelWatcher(java.time.Duration grace) {
        this.graceNanos = grace.toNanos();
        this.timer = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "weft-transport-watcher");
            t.setDaemon(true);
            return t;
        });
        long periodMs = Math.max(20, grace.toMillis() / 5);
        timer.scheduleWithFixedDelay(this::poll, periodMs, periodMs, TimeUnit.MILLISECONDS);
    }

    /** Watches {@code key} until {@link #unwatch}; {@code onFailure} is called at most once. */
    void watch(Object key, Probe probe, ChannelFailureListener onFailure) {
        watched.put(key, new Watched(probe, onFailure));
    }

    void unwatch(Object key) {
        watched.remove(key);
    }

    int size() {
        return watched.size();
    }

    private void poll() {
        long now = System.nanoTime();
        for (Map.Entry<Object, Watched> e : watched.entrySet()) {
            Watched w = e.getValue();
            String problem;
            try {
                problem = w.probe.get();
            } catch (RuntimeException ex) {
                problem = "health probe failed: " + ex;
            }
            if (problem == null) {
                w.badSince = 0;
            } else if (w.badSince == 0) {
                w.badSince = now;
            } else if (now - w.badSince >= graceNanos && watched.remove(e.getKey(), w)) {
                w.onFailure.channelFailed(new java.io.IOException(problem));
            }
        }
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
