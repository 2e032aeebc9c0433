package io.weft.node.cli.client;

import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

/** {@code weft remap}: drops a device's path and opens it again. */
@Command(name = "remap", mixinStandardHelpOptions = true,
        description = "Drops a device's path to its storage node and opens it again (IO waits meanwhile).")
public final class RemapCommand extends ClientCommand {
    @Parameters(index = "0", paramLabel = "DEVICE", description = "Device id.")
    String device;

    @Override
    void run(NodeApi api) {
        printReply(api.post("/weft/devices/" + device + "/remap", NodeApi.object()));
    }
}
