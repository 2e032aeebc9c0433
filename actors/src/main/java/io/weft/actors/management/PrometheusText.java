package io.weft.actors.management;

import io.weft.actors.BackendSnapshot;
import io.weft.actors.DeviceSnapshot;
import io.weft.actors.DeviceState;
import io.weft.actors.NodeState;
import io.weft.actors.WeftRuntime;
import java.util.Locale;

/** Renders a node's figures in the Prometheus text exposition format (version 0.0.4). */
final class PrometheusText {
    private PrometheusText() {
    }

    static String render(WeftRuntime rt) {
        StringBuilder out = new StringBuilder(4096);
        String node = rt.nodeName();
        header(out, "weft_device_state", "gauge", "1 for the state the device is in");
        header(out, "weft_device_ops_total", "counter", "completed requests by op (read, write, other) and errors");
        header(out, "weft_device_bytes_total", "counter", "bytes moved by direction");
        header(out, "weft_device_inflight", "gauge", "requests queued or in flight");
        header(out, "weft_device_reconnects_total", "counter", "times the device got a path back");
        header(out, "weft_device_size_bytes", "gauge", "device size");
        header(out, "weft_device_latency_seconds", "summary", "request latency since start");
        for (NodeState.DeviceEntry e : rt.state().devices()) {
            String labels = "node=\"" + esc(node) + "\",device=\"" + esc(e.spec.deviceId()) + "\",storage_node=\""
                    + esc(e.spec.storageNode()) + "\"";
            DeviceSnapshot now = e.snapshot();
            for (DeviceState s : DeviceState.values()) {
                line(out, "weft_device_state", labels + ",state=\"" + s.name().toLowerCase(Locale.ROOT) + "\"",
                        now.state() == s ? 1 : 0);
            }
            IoFigures io = IoFigures.of(e.device.stats().snapshot());
            ops(out, "weft_device", labels, io);
            line(out, "weft_device_inflight", labels, e.device.inFlight());
            line(out, "weft_device_reconnects_total", labels, now.reconnects());
            line(out, "weft_device_size_bytes", labels, e.device.info().size());
            latency(out, "weft_device_latency_seconds", labels, io);
        }
        header(out, "weft_session_heartbeat_age_seconds", "gauge", "time since the storage node last answered");
        for (NodeState.DeviceEntry e : rt.state().devices()) {
            long hb = e.sessionView.lastHeartbeatMillis();
            if (hb != 0) {
                line(out, "weft_session_heartbeat_age_seconds", "node=\"" + esc(node) + "\",device=\""
                        + esc(e.spec.deviceId()) + "\",storage_node=\"" + esc(e.spec.storageNode()) + "\"",
                        (System.currentTimeMillis() - hb) / 1000.0);
            }
        }
        header(out, "weft_backend_mappings", "gauge", "clients mapping the backing store");
        header(out, "weft_backend_size_bytes", "gauge", "backing store size");
        header(out, "weft_backend_ops_total", "counter", "requests served by op and errors");
        header(out, "weft_backend_bytes_total", "counter", "bytes served by direction");
        for (NodeState.BackendEntry b : rt.state().backends()) {
            String labels = "node=\"" + esc(node) + "\",path=\"" + esc(b.path) + "\"";
            BackendSnapshot published = b.snapshot();
            line(out, "weft_backend_mappings", labels, published.mappings().size());
            line(out, "weft_backend_size_bytes", labels, published.size());
            IoFigures io = IoFigures.of(b.stats.snapshot());
            ops(out, "weft_backend", labels, io);
        }
        return out.toString();
    }

    private static void ops(StringBuilder out, String prefix, String labels, IoFigures io) {
        line(out, prefix + "_ops_total", labels + ",op=\"read\"", io.reads());
        line(out, prefix + "_ops_total", labels + ",op=\"write\"", io.writes());
        line(out, prefix + "_ops_total", labels + ",op=\"other\"", io.otherOps());
        line(out, prefix + "_ops_total", labels + ",op=\"error\"", io.errors());
        line(out, prefix + "_bytes_total", labels + ",direction=\"read\"", io.bytesRead());
        line(out, prefix + "_bytes_total", labels + ",direction=\"write\"", io.bytesWritten());
    }

    private static void latency(StringBuilder out, String name, String labels, IoFigures io) {
        line(out, name, labels + ",op=\"read\",quantile=\"0.5\"", io.readP50Micros() / 1e6);
        line(out, name, labels + ",op=\"read\",quantile=\"0.99\"", io.readP99Micros() / 1e6);
        line(out, name, labels + ",op=\"read\",quantile=\"0.999\"", io.readP999Micros() / 1e6);
        line(out, name, labels + ",op=\"write\",quantile=\"0.5\"", io.writeP50Micros() / 1e6);
        line(out, name, labels + ",op=\"write\",quantile=\"0.99\"", io.writeP99Micros() / 1e6);
        line(out, name, labels + ",op=\"write\",quantile=\"0.999\"", io.writeP999Micros() / 1e6);
        line(out, name + "_count", labels + ",op=\"read\"", io.reads());
        line(out, name + "_count", labels + ",op=\"write\"", io.writes());
    }

    private static void header(StringBuilder out, String name, String type, String help) {
        out.append("# HELP ").append(name).append(' ').append(help).append('\n');
        out.append("# TYPE ").append(name).append(' ').append(type).append('\n');
    }

    private static void line(StringBuilder out, String name, String labels, double value) {
        out.append(name).append('{').append(labels).append("} ");
        if (value == Math.rint(value) && Math.abs(value) < 1e15) {
            out.append((long) value);
        } else {
            out.append(value);
        }
        out.append('\n');
    }

    private static String esc(String s) {
        return s.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n");
    }
}
