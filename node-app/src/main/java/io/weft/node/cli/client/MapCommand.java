package io.weft.node.cli.client;

import com.fasterxml.jackson.databind.node.ObjectNode;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code weft map}: maps a device on the node (its client role) from a storage node's backing store. */
@Command(name = "map", mixinStandardHelpOptions = true,
        description = {"Maps a device on the node you talk to: it opens PATH on the storage node and exports",
            "the device over NBD under DEVICE. Answers when the device is ready."})
public final class MapCommand extends ClientCommand {
    @Parameters(index = "0", paramLabel = "DEVICE", description = "Device id and NBD export name ([A-Za-z0-9._-]).")
    String device;

    @Option(names = "--path", paramLabel = "PATH",
            description = "Backing store on the storage node: absolute, or relative to its first export root.")
    String path;

    @Option(names = "--leg", paramLabel = "NODE:PATH",
            description = {"A mirror leg (give 2 or 3, on different storage nodes, all the same size) instead of",
                "--path/--storage: the device writes every leg and survives the loss of all but one."})
    java.util.List<String> legs = new java.util.ArrayList<>();

    @Option(names = "--storage", paramLabel = "NODE",
            description = "Storage node name (weft.node.name); default: the node you talk to.")
    String storage;

    @Option(names = "--mode", paramLabel = "MODE", defaultValue = "rw",
            description = "Access mode: ro, rw or migration (default ${DEFAULT-VALUE}).")
    String mode;

    @Option(names = "--transport", paramLabel = "NAME",
            description = "Transport (default: the node's weft.transport.default).")
    String transport;

    @Override
    void run(NodeApi api) {
        ObjectNode body = NodeApi.object().put("id", device).put("mode", mode);
        if (!legs.isEmpty()) {
            if (path != null || storage != null) {
                throw new picocli.CommandLine.ParameterException(spec.commandLine(),
                        "give either --leg (mirrored device) or --path/--storage, not both");
            }
            var array = body.putArray("legs");
            for (String leg : legs) {
                int colon = leg.indexOf(':');
                if (colon <= 0 || colon == leg.length() - 1) {
                    throw new picocli.CommandLine.ParameterException(spec.commandLine(),
                            "--leg is NODE:PATH, e.g. a:x.img; got '" + leg + "'");
                }
                array.addObject().put("storage", leg.substring(0, colon)).put("path", leg.substring(colon + 1));
            }
        } else if (path == null) {
            throw new picocli.CommandLine.ParameterException(spec.commandLine(),
                    "missing --path (or --leg NODE:PATH twice for a mirrored device)");
        } else {
            body.put("path", path).put("storageNode", storage != null ? storage : nodeName(api));
        }
        if (transport != null) {
            body.put("transport", transport);
        }
        printReply(api.post("/weft/devices", body));
    }
}
