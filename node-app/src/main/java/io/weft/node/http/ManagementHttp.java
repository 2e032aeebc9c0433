package io.weft.node.http;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.weft.core.io.DeviceInfo;
import io.weft.core.stats.IoStatsSnapshot;
import io.weft.node.StatsReporter;
import io.weft.node.Volume;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.function.BooleanSupplier;

/**
 * The node's small management HTTP endpoint (JDK HTTP server, read-only): {@code /alive}, {@code /ready},
 * {@code /metrics} (Prometheus text) and {@code /weft/volumes} (JSON). It stands in until the Pekko Management
 * routes arrive with the actor system; the paths are the ones those routes keep.
 */
public final class ManagementHttp implements AutoCloseable {
    private final HttpServer server;

    private ManagementHttp(HttpServer server) {
        this.server = server;
    }

    public static ManagementHttp start(String host, int port, List<Volume> volumes, StatsReporter stats,
                                       BooleanSupplier ready) throws IOException {
        HttpServer server = HttpServer.create(new InetSocketAddress(host, port), 16);
        server.setExecutor(Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "weft-http");
            t.setDaemon(true);
            return t;
        }));
        server.createContext("/alive", ex -> reply(ex, 200, "text/plain", "alive\n"));
        server.createContext("/ready", ex -> {
            boolean isReady = ready.getAsBoolean();
            reply(ex, isReady ? 200 : 503, "text/plain", isReady ? "ready\n" : "not ready\n");
        });
        server.createContext("/metrics", ex -> reply(ex, 200, "text/plain; version=0.0.4",
                prometheus(stats.current())));
        server.createContext("/weft/volumes", ex -> reply(ex, 200, "application/json",
                volumesJson(volumes, stats.current())));
        server.start();
        return new ManagementHttp(server);
    }

    public InetSocketAddress address() {
        return server.getAddress();
    }

    private static void reply(HttpExchange exchange, int status, String type, String body) throws IOException {
        try (exchange) {
            if (!"GET".equals(exchange.getRequestMethod()) && !"HEAD".equals(exchange.getRequestMethod())) {
                exchange.sendResponseHeaders(405, -1);
                return;
            }
            byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
            exchange.getResponseHeaders().set("Content-Type", type);
            if ("HEAD".equals(exchange.getRequestMethod())) {
                exchange.sendResponseHeaders(status, -1);
                return;
            }
            exchange.sendResponseHeaders(status, bytes.length);
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(bytes);
            }
        }
    }

    /** Prometheus text exposition of every volume's counters and last-interval latency percentiles. */
    static String prometheus(Map<String, IoStatsSnapshot> snapshots) {
        StringBuilder out = new StringBuilder();
        metric(out, "weft_volume_requests_total", "counter", "Requests completed, per volume and operation.",
                snapshots, op -> op.ops());
        metric(out, "weft_volume_bytes_total", "counter", "Bytes moved (or covered, for discard and write_zeroes) "
                + "by successful requests.", snapshots, op -> op.bytes());
        metric(out, "weft_volume_errors_total", "counter", "Requests completed with an error.", snapshots,
                op -> op.errors());
        out.append("# HELP weft_volume_in_flight Requests submitted and not yet completed.\n");
        out.append("# TYPE weft_volume_in_flight gauge\n");
        snapshots.forEach((name, s) -> out.append("weft_volume_in_flight{volume=\"").append(escape(name))
                .append("\"} ").append(s.inFlight()).append('\n'));
        out.append("# HELP weft_volume_latency_seconds Request latency over the last statistics interval.\n");
        out.append("# TYPE weft_volume_latency_seconds gauge\n");
        snapshots.forEach((name, s) -> {
            for (IoStatsSnapshot.OpStats op : s.ops()) {
                IoStatsSnapshot.Latency l = op.interval();
                quantile(out, name, op, "0.5", l.p50Nanos());
                quantile(out, name, op, "0.99", l.p99Nanos());
                quantile(out, name, op, "0.999", l.p999Nanos());
            }
        });
        return out.toString();
    }

    private interface Figure {
        long of(IoStatsSnapshot.OpStats op);
    }

    private static void metric(StringBuilder out, String name, String type, String help,
                               Map<String, IoStatsSnapshot> snapshots, Figure figure) {
        out.append("# HELP ").append(name).append(' ').append(help).append('\n');
        out.append("# TYPE ").append(name).append(' ').append(type).append('\n');
        snapshots.forEach((volume, s) -> {
            for (IoStatsSnapshot.OpStats op : s.ops()) {
                out.append(name).append("{volume=\"").append(escape(volume)).append("\",op=\"")
                        .append(op.op().name().toLowerCase()).append("\"} ").append(figure.of(op)).append('\n');
            }
        });
    }

    private static void quantile(StringBuilder out, String volume, IoStatsSnapshot.OpStats op, String q, long nanos) {
        out.append("weft_volume_latency_seconds{volume=\"").append(escape(volume)).append("\",op=\"")
                .append(op.op().name().toLowerCase()).append("\",quantile=\"").append(q).append("\"} ")
                .append(nanos / 1e9).append('\n');
    }

    private static String escape(String s) {
        return s.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n");
    }

    /** The volumes with geometry and statistics, as JSON. */
    static String volumesJson(List<Volume> volumes, Map<String, IoStatsSnapshot> snapshots) {
        StringBuilder out = new StringBuilder("[");
        for (int i = 0; i < volumes.size(); i++) {
            Volume v = volumes.get(i);
            DeviceInfo info = v.device().info();
            if (i > 0) {
                out.append(',');
            }
            out.append("{\"name\":").append(json(v.name()))
                    .append(",\"path\":").append(json(v.store().path()))
                    .append(",\"size\":").append(info.size())
                    .append(",\"logicalBlockSize\":").append(info.logicalBlockSize())
                    .append(",\"readOnly\":").append(info.readOnly())
                    .append(",\"canDiscard\":").append(info.canDiscard())
                    .append(",\"directIo\":").append(v.store().directIo())
                    .append(",\"blockDevice\":").append(v.store().isBlockDevice());
            IoStatsSnapshot s = snapshots.get(v.name());
            if (s != null) {
                out.append(",\"inFlight\":").append(s.inFlight()).append(",\"untracked\":").append(s.untracked())
                        .append(",\"intervalMillis\":").append(s.intervalNanos() / 1_000_000).append(",\"ops\":{");
                for (int k = 0; k < s.ops().size(); k++) {
                    IoStatsSnapshot.OpStats op = s.ops().get(k);
                    if (k > 0) {
                        out.append(',');
                    }
                    IoStatsSnapshot.Latency l = op.interval();
                    out.append(json(op.op().name().toLowerCase())).append(":{\"ops\":").append(op.ops())
                            .append(",\"bytes\":").append(op.bytes()).append(",\"errors\":").append(op.errors())
                            .append(",\"p50Nanos\":").append(l.p50Nanos()).append(",\"p99Nanos\":")
                            .append(l.p99Nanos()).append(",\"p999Nanos\":").append(l.p999Nanos()).append('}');
                }
                out.append('}');
            }
            out.append('}');
        }
        return out.append("]\n").toString();
    }

    private static String json(String s) {
        StringBuilder out = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') {
                out.append('\\').append(c);
            } else if (c < 0x20) {
                out.append(String.format("\\u%04x", (int) c));
            } else {
                out.append(c);
            }
        }
        return out.append('"').toString();
    }

    @Override
    public void close() {
        server.stop(0);
        ((java.util.concurrent.ExecutorService) server.getExecutor()).shutdownNow();
    }
}
