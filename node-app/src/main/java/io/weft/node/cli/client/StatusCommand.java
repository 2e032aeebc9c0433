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

    private static String join(JsonNode array) {
        StringBuilder s = new StringBuilder();
        array.forEach(v -> s.append(s.length() == 0 ? "" : ",").append(v.asText()));
        return s.toString();
    }
}
