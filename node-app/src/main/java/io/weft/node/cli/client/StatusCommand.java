package io.weft.node.cli.client;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.PrintWriter;
import picocli.CommandLine.Command;

/** {@code weft status}: the node, its cluster, devices, backends and volumes. */
@Command(name = "status", mixinStandardHelpOptions = true,
        description = "Shows a node: cluster members, mapped devices (with their NBD exports and IO figures), "
                + "opened backing stores and the volume files under its export roots.")
public final class StatusCommand extends ClientCommand {
    @Override
    void run(NodeApi api) {
        JsonNode node = api.get("/weft/node");
        JsonNode devices = api.get("/weft/devices");
        JsonNode backends = api.get("/weft/backends");
        JsonNode volumes = api.get("/weft/volumes");
        if (json()) {
            ObjectNode all = NodeApi.object();
            all.set("node", node);
            all.set("devices", devices);
            all.set("backends", backends);
            all.set("volumes", volumes);
            printJson(all);
            return;
        }
        PrintWriter out = out();
        out.println("node " + node.path("name").asText() + "  " + node.path("status").asText() + "  roles "
                + join(node.path("roles")) + "  transports " + join(node.path("transports")) + "  (" + api.node()
                + ")");
        out.println();
        Table members = new Table("MEMBER", "STATUS", "ROLES", "REACHABLE");
        node.path("members").forEach(m -> members.row(m.path("address").asText(), m.path("status").asText(),
                m.path("roles").asText(), m.path("reachable").asText()));
        members.print(out);
        out.println();
        if (devices.isEmpty()) {
            out.println("no devices mapped on this node (map one with: weft map DEVICE --path PATH)");
        } else {
            Table t = new Table("DEVICE", "STATE", "SIZE", "MODE", "STORAGE", "PATH", "TRANSPORT", "READS", "WRITES",
                    "ERRORS", "EXPORT");
            devices.forEach(d -> t.row(d.path("id").asText(), d.path("state").asText(),
                    Table.bytes(d.path("size").asLong()), d.path("mode").asText(), d.path("storageNode").asText(),
                    d.path("path").asText(), d.path("transport").asText(), d.path("io").path("reads").asLong(),
                    d.path("io").path("writes").asLong(), d.path("io").path("errors").asLong(),
                    d.path("export").asText()));
            t.print(out);
            devices.forEach(d -> printMirror(out, d));
        }
        if (!backends.isEmpty()) {
            out.println();
            Table t = new Table("BACKEND", "SIZE", "MAPPINGS");
            backends.forEach(b -> {
                StringBuilder who = new StringBuilder();
                b.path("mappings").forEach(m -> who.append(who.length() == 0 ? "" : ", ")
                        .append(m.path("clientNode").asText()).append('/').append(m.path("deviceId").asText())
                        .append(" (").append(m.path("mode").asText()).append(')'));
                t.row(b.path("path").asText(), Table.bytes(b.path("size").asLong()), who);
            });
            t.print(out);
        }
        if (!volumes.isEmpty()) {
            out.println();
            Table t = new Table("VOLUME FILE", "SIZE", "OPEN");
            volumes.forEach(v -> t.row(v.path("path").asText(), Table.bytes(v.path("size").asLong()),
                    v.path("open").asBoolean() ? "yes" : "no"));
            t.print(out);
        }
    }

    /** A mirrored device's legs, with a progress bar on the leg being resynced. */
    static void printMirror(java.io.PrintWriter out, JsonNode device) {
        JsonNode mirror = device.path("mirror");
        if (!mirror.isObject()) {
            return;
        }
        out.println();
        out.println("mirror " + device.path("id").asText() + ": " + mirror.path("legCount").asInt() + " legs"
                + (mirror.path("degraded").asBoolean() ? ", DEGRADED" : "") + ", "
                + mirror.path("dirtyRegions").asLong() + " dirty region(s) of "
                + Table.bytes(mirror.path("regionSize").asLong()));
        JsonNode resync = mirror.path("resync");
        Table t = new Table("LEG", "STORAGE", "PATH", "STATE", "RESYNC");
        mirror.path("legs").forEach(leg -> {
            String progress = "";
            if (resync.path("leg").asInt(-1) == leg.path("index").asInt()) {
                progress = progressBar(resync);
            }
            t.row(leg.path("index").asInt(), leg.path("storageNode").asText(), leg.path("path").asText(),
                    leg.path("state").asText(), progress);
        });
        t.print(out);
    }

    /** {@code [#########-----------]  45%  9/20 regions, 9.0 MiB, 120.0 MiB/s, ETA 1s} (or "done ..." when over). */
    static String progressBar(JsonNode resync) {
        int percent = Math.max(0, Math.min(100, resync.path("percent").asInt()));
        int width = 20;
        int filled = percent * width / 100;
        StringBuilder bar = new StringBuilder("[");
        bar.append("#".repeat(filled)).append("-".repeat(width - filled)).append("] ");
        bar.append(String.format(java.util.Locale.ROOT, "%3d%%  %d/%d regions, %s", percent,
                resync.path("regionsDone").asLong(), resync.path("regionsTotal").asLong(),
                Table.bytes(resync.path("bytesCopied").asLong())));
        if (resync.path("running").asBoolean()) {
            bar.append(", ").append(Table.bytes(resync.path("bytesPerSecond").asLong())).append("/s");
            long eta = resync.path("etaMillis").asLong(-1);
            bar.append(eta < 0 ? ", ETA ?" : ", ETA " + (eta + 999) / 1000 + "s");
        } else {
            bar.append(resync.path("lastError").asText().isEmpty() ? ", done"
                    : ", failed: " + resync.path("lastError").asText());
        }
        return bar.toString();
    }

    private static String join(JsonNode array) {
        StringBuilder s = new StringBuilder();
        array.forEach(v -> s.append(s.length() == 0 ? "" : ",").append(v.asText()));
        return s.toString();
    }
}
