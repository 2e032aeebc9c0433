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

    @Option(names = "--path", required = true, paramLabel = "PATH",
            description = "Backing store on the storage node: absolute, or relative to its first export root.")
    String path;

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
        ObjectNode body = NodeApi.object().put("id", device).put("path", path).put("mode", mode)
                .put("storageNode", storage != null ? storage : nodeName(api));
        if (transport != null) {
            body.put("transport", transport);
        }
        printReply(api.post("/weft/devices", body));
    }
}
