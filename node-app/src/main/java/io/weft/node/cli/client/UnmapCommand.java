package io.weft.node.cli.client;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code weft unmap}: removes a device and its NBD export. */
@Command(name = "unmap", mixinStandardHelpOptions = true,
        description = {"Unmaps a device: its NBD export goes away and the storage node releases the mapping.",
            "Waits for in-flight IO (weft.client.unmap-drain-timeout); --force fails it with EIO at once."})
public final class UnmapCommand extends ClientCommand {
    @Parameters(index = "0", paramLabel = "DEVICE", description = "Device id.")
    String device;

    @Option(names = "--force", description = "Do not wait: in-flight IO completes with EIO.")
    boolean force;

    @Override
    void run(NodeApi api) {
        printReply(api.post("/weft/devices/" + device + "/unmap", NodeApi.object().put("force", force)));
    }
}
