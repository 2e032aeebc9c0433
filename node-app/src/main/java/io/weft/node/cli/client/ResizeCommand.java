package io.weft.node.cli.client;

import com.fasterxml.jackson.databind.JsonNode;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code weft resize}: changes a backing store's size; mapped devices and their NBD exports follow. */
@Command(name = "resize", mixinStandardHelpOptions = true,
        description = {"Resizes the backing store of a device (or, with --path, any backing store) on its storage",
            "node; every device mapping it learns the new size, and new NBD connections see it."})
public final class ResizeCommand extends ClientCommand {
    @Parameters(index = "0", arity = "0..1", paramLabel = "DEVICE",
            description = "A device mapped on the node you talk to (its storage node and path are used).")
    String device;

    @Option(names = "--size", required = true, paramLabel = "SIZE",
            description = "New size: bytes or with a unit, e.g. 2GiB, 512MiB.")
    String size;

    @Option(names = "--path", paramLabel = "PATH", description = "Backing store path instead of a DEVICE.")
    String path;

    @Option(names = "--storage", paramLabel = "NODE",
            description = "Storage node of --path (default: the node you talk to).")
    String storage;

    @Override
    void run(NodeApi api) {
        String storageNode;
        String backing;
        if (device != null) {
            if (path != null) {
                throw new CliException(CliException.USAGE, "give a DEVICE or --path, not both");
            }
            JsonNode d = api.get("/weft/devices/" + device);
            storageNode = d.path("storageNode").asText();
            backing = d.path("path").asText();
        } else if (path != null) {
            storageNode = storage != null ? storage : nodeName(api);
            backing = path;
        } else {
            throw new CliException(CliException.USAGE, "name a DEVICE (weft status lists them) or a --path");
        }
        printReply(api.post("/weft/backends/resize", NodeApi.object().put("storageNode", storageNode)
                .put("path", backing).put("size", size)));
    }
}
