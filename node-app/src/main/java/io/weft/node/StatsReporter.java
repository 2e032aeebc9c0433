package io.weft.node;

import io.weft.core.io.IoOp;
import io.weft.core.stats.IoStatsSnapshot;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Snapshots every volume's statistics at a fixed interval so all readers (HTTP, logs) see the same window, and
 * optionally logs a line per busy volume. Runs on one daemon thread, off the IO path.
 */
public final class StatsReporter implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(StatsReporter.class);

    private final List<Volume> volumes;
    private final boolean log;
    private final ScheduledExecutorService timer;
    private volatile Map<String, IoStatsSnapshot> latest;


    public StatsReporter(List<Volume> volumes, Duration interval, boolean log) {
        this.volumes = List.copyOf(volumes);
        this.log = log;
        this.latest = snapshotAll();
        this.timer = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "weft-stats");
            t.setDaemon(true);
            return t;
        });
        long millis = interval.toMillis();
        timer.scheduleAtFixedRate(this::tick, millis, millis, TimeUnit.MILLISECONDS);
    }

    /** The most recent interval snapshot per volume name. */
    public Map<String, IoStatsSnapshot> latest() {
        return latest;
    }

    /** Current counters with the latencies of the most recent interval, per volume in configuration order. */
    public Map<String, IoStatsSnapshot> current() {
        Map<String, IoStatsSnapshot> map = new LinkedHashMap<>();
        for (Volume v : volumes) {
            map.put(v.name(), v.stats().peek());
        }
        return map;
    }

    private Map<String, IoStatsSnapshot> snapshotAll() {
        Map<String, IoStatsSnapshot> map = new LinkedHashMap<>();
        for (Volume v : volumes) {
            map.put(v.name(), v.stats().snapshot());
        }
        return java.util.Collections.unmodifiableMap(map);
    }

    private void tick() {
        try {
            Map<String, IoStatsSnapshot> now = snapshotAll();
            latest = now;
            if (log) {
                for (Volume v : volumes) {
                    IoStatsSnapshot s = now.get(v.name());
                    if (s.ops().stream().anyMatch(o -> o.interval().count() > 0)) {
                        LOG.info(describe(s));
                    }
                }
            }
        } catch (RuntimeException e) {
            LOG.warn("statistics snapshot failed", e);
        }
    }

    /** One human line: ops, bytes and p50/p99 per busy operation. */
    public static String describe(IoStatsSnapshot s) {
        StringBuilder line = new StringBuilder(s.device()).append(':');
        for (IoStatsSnapshot.OpStats op : s.ops()) {
            if (op.ops() == 0) {
                continue;
            }
            line.append(' ').append(op.op().name().toLowerCase()).append(' ').append(op.ops()).append(" ops");
            if (op.op() == IoOp.READ || op.op() == IoOp.WRITE) {
                line.append(' ').append(op.bytes() >> 20).append(" MiB");
            }
            if (op.errors() > 0) {
                line.append(' ').append(op.errors()).append(" errors");
            }
            IoStatsSnapshot.Latency l = op.interval().count() > 0 ? op.interval() : op.total();
            line.append(String.format(" p50 %.1fus p99 %.1fus;", l.p50Nanos() / 1e3, l.p99Nanos() / 1e3));
        }
        line.append(" in flight ").append(s.inFlight());
        return line.toString();
    }

    @Override
    public void close() {
        timer.shutdownNow();
    }
}
