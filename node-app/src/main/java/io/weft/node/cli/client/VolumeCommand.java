package io.weft.node.cli.client;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code weft volume}: volume files on storage nodes. */
@Command(name = "volume", mixinStandardHelpOptions = true, subcommands = VolumeCommand.Create.class,
        description = "Manages volume files on storage nodes.")
public final class VolumeCommand implements Runnable {
    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    /** {@code weft volume create}. */
    @Command(name = "create", mixinStandardHelpOptions = true,
            description = {"Creates a sparse volume file under an export root of a storage node.",
                "Map it afterwards with: weft map DEVICE --path PATH"})
    public static final class Create extends ClientCommand {
        @Parameters(index = "0", paramLabel = "PATH",
                description = "Relative to the storage node's first export root (or absolute, under a root).")
        String path;

        @Option(names = "--size", paramLabel = "SIZE",
                description = "Size, e.g. 1GiB (default: the node's weft.storage.default-volume-size).")
        String size;

        @Option(names = "--storage", paramLabel = "NODE",
                description = "Storage node name (default: the node you talk to).")
        String storage;

        @Override
        void run(NodeApi api) {
            var body = NodeApi.object().put("path", path).put("storageNode", storage != null ? storage
                    : nodeName(api));
            if (size != null) {
                body.put("size", size);
            }
            printReply(api.post("/weft/volumes", body));
        }
    }
}
