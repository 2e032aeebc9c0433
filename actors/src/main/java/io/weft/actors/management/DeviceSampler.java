package io.weft.actors.management;

import io.weft.actors.NodeState;
import io.weft.core.io.IoOp;
import io.weft.core.stats.IoStats;
import io.weft.core.stats.IoStatsSnapshot;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The console's memory of the last minutes: once per {@code weft.management.console.sample-interval} it reads every
 * mapped device's IO counters and latency histograms ({@link io.weft.core.stats.IoStats#sample()}, its own window,
 * whatever HTTP/JMX/Prometheus read meanwhile) and keeps the rates and percentiles of that interval in a ring of
 * {@code weft.management.console.samples} entries per device. A device with no request completed or in flight since
 * the last tick gets an empty sample from a counter read alone (no histogram copy), so idle devices cost next to
 * nothing (issue 12). Control plane only: one thread of its own, nothing on
 * the IO path; the data plane's recording is wait-free and does not see it.
 *
 * <p>Why it keeps ticking on an idle node: the rings are the console's time series, one sample per interval whether
 * anything happened or not (an idle minute is a flat line, not a gap), so the tick is the feature. It costs one
 * wake-up per interval (1/s by default; bench/scale measured it below 1/s of the node's ~300 wake-ups/s) and, per idle
 * device, a counter read.
 *
 * <p>A device unmapped loses its ring; one mapped again under the same id (a new {@link NodeState.DeviceEntry})
 * starts a new one. The sampler lives as long as the node (across actor-system incarnations: the devices do too).
 */
public final class DeviceSampler implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(DeviceSampler.class);

    /**
     * One interval of one device. Rates are per second over the interval; latencies (microseconds) are of the
     * requests completed in it (0 when none completed); {@code state} and {@code resyncPercent} (-1: not a mirror,
     * or no resync running) as at the end of it.
     */
    public record Sample(long atMillis, double intervalMillis, double readIops, double writeIops,
                         double readBytesPerSecond, double writeBytesPerSecond, double readP50Micros,
                         double readP99Micros, double writeP50Micros, double writeP99Micros, long inFlight,
                         long errors, String state, int resyncPercent) {
    }

    /** One device's ring; guarded by itself (the sampler thread writes, HTTP threads read). */
    private static final class Ring {
        final NodeState.DeviceEntry entry;
        final Sample[] slots;
        int next;
        int size;
        long reads;
        long writes;
        long bytesRead;
        long bytesWritten;
        long errors;
        /** {@link IoStats#completed()} when this ring last took a statistics sample. */
        long completed;
        /** False until the first sample set the counters' baseline (a device's counters start before its ring). */
        boolean primed;

        Ring(NodeState.DeviceEntry entry, int capacity) {
            this.entry = entry;
            this.slots = new Sample[capacity];
        }

        synchronized void add(Sample s) {
            slots[next] = s;
            next = (next + 1) % slots.length;
            size = Math.min(size + 1, slots.length);
        }

        synchronized List<Sample> since(long afterMillis) {
            List<Sample> out = new ArrayList<>(size);
            for (int i = 0; i < size; i++) {
                Sample s = slots[(next - size + i + slots.length) % slots.length];
                if (s.atMillis() > afterMillis) {
                    out.add(s);
                }
            }
            return out;
        }
    }

    private final NodeState state;
    private final int capacity;
    private final Duration interval;
    private final LongSupplier clock;
    private final Map<String, Ring> rings = new ConcurrentHashMap<>();
    private volatile ScheduledExecutorService timer;

    /**
     * @param capacity samples kept per device (the window is {@code capacity * interval})
     * @param clock    wall-clock milliseconds, the samples' {@code atMillis}
     */
    public DeviceSampler(NodeState state, int capacity, Duration interval, LongSupplier clock) {
        if (capacity < 1 || interval.isNegative() || interval.isZero()) {
            throw new IllegalArgumentException("weft.management.console: samples must be >= 1 and sample-interval"
                    + " > 0 (got " + capacity + ", " + interval + ")");
        }
        this.state = state;
        this.capacity = capacity;
        this.interval = interval;
        this.clock = clock;
    }

    /** Starts sampling on a daemon thread of its own, once per interval. */
    public DeviceSampler start() {
        ScheduledExecutorService t = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread thread = new Thread(r, "weft-console-sampler");
            thread.setDaemon(true);
            return thread;
        });
        long period = interval.toMillis();
        t.scheduleAtFixedRate(() -> {
            try {
                tick();
            } catch (RuntimeException e) {
                // A device closing under the sampler: the next tick sees the node as it is then.
                LOG.debug("console sampler: {}", e.toString());
            }
        }, period, period, TimeUnit.MILLISECONDS);
        timer = t;
        return this;
    }

    public Duration interval() {
        return interval;
    }

    public int capacity() {
        return capacity;
    }

    /** Takes one sample of every mapped device (the timer calls this; tests call it directly). */
    public void tick() {
        Set<String> live = new HashSet<>();
        for (NodeState.DeviceEntry e : state.devices()) {
            String id = e.spec.deviceId();
            live.add(id);
            Ring ring = rings.compute(id, (k, r) -> r != null && r.entry == e ? r : new Ring(e, capacity));
            record(ring, e);
        }
        rings.keySet().retainAll(live);
    }

    private void record(Ring ring, NodeState.DeviceEntry e) {
        IoStats stats = e.device.stats();
        int resync = resyncPercent(e);
        String state = e.snapshot().state().name().toLowerCase(java.util.Locale.ROOT);
        if (ring.primed && stats.completed() == ring.completed && stats.inFlight() == 0) {
            // Idle since the last tick: an empty sample without copying the device's histograms, so a node's idle
            // devices cost the sampler a counter read each rather than a statistics snapshot.
            stats.skipIdleSample();
            ring.add(new Sample(clock.getAsLong(), interval.toMillis(), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, state,
                    resync));
            return;
        }
        long completed = stats.completed();
        IoStatsSnapshot s = stats.sample();
        IoStatsSnapshot.OpStats read = s.op(IoOp.READ);
        IoStatsSnapshot.OpStats write = s.op(IoOp.WRITE);
        long errors = 0;
        for (IoStatsSnapshot.OpStats op : s.ops()) {
            errors += op.errors();
        }
        double seconds = Math.max(1, s.intervalNanos()) / 1e9;
        Sample sample;
        synchronized (ring) {
            sample = new Sample(clock.getAsLong(), seconds * 1000,
                    (read.ops() - ring.reads) / seconds, (write.ops() - ring.writes) / seconds,
                    (read.bytes() - ring.bytesRead) / seconds, (write.bytes() - ring.bytesWritten) / seconds,
                    read.interval().p50Nanos() / 1000.0, read.interval().p99Nanos() / 1000.0,
                    write.interval().p50Nanos() / 1000.0, write.interval().p99Nanos() / 1000.0,
                    s.inFlight(), errors - ring.errors, state, resync);
            ring.reads = read.ops();
            ring.writes = write.ops();
            ring.bytesRead = read.bytes();
            ring.bytesWritten = write.bytes();
            ring.errors = errors;
            ring.completed = completed;
            if (!ring.primed) {
                ring.primed = true;
                return;
            }
        }
        ring.add(sample);
    }

    private static int resyncPercent(NodeState.DeviceEntry e) {
        var mirror = e.mirrorStatus();
        return mirror != null && mirror.resync().running() ? mirror.resync().percent() : -1;
    }

    /** The samples of one device taken after {@code afterMillis}, oldest first; empty for an unknown device. */
    public List<Sample> samples(String deviceId, long afterMillis) {
        Ring ring = rings.get(deviceId);
        return ring == null ? List.of() : ring.since(afterMillis);
    }

    /** The devices that have a ring. */
    public Set<String> devices() {
        return Set.copyOf(rings.keySet());
    }

    @Override
    public void close() {
        ScheduledExecutorService t = timer;
        if (t != null) {
            t.shutdownNow();
        }
    }
}
