package io.weft.node.cli.client;

import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

/** {@code weft leg}: adds, removes or resyncs a leg of a mirrored device at run time. */
@Command(name = "leg", mixinStandardHelpOptions = true,
        subcommands = {LegCommand.Add.class, LegCommand.Remove.class, LegCommand.Resync.class},
        description = "Adds, removes or resyncs a leg of a mirrored device mapped on the node you talk to.")
public final class LegCommand implements Runnable {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    /** {@code weft leg add DEVICE NODE:PATH}. */
    @Command(name = "add", mixinStandardHelpOptions = true,
            description = {"Adds a leg on storage node NODE (file PATH there, the device's size) to mirrored DEVICE.",
                "It is fully synced in the background and serves no reads until in sync; weft status shows",
                "the progress."})
    public static final class Add extends ClientCommand {
        @Parameters(index = "0", paramLabel = "DEVICE", description = "A mirrored device mapped on the node.")
        String device;

        @Parameters(index = "1", paramLabel = "NODE:PATH",
                description = "Storage node name and path there (create it first with weft volume create).")
        String leg;

        @Override
        void run(NodeApi api) {
            int colon = leg.indexOf(':');
            if (colon <= 0 || colon == leg.length() - 1) {
                throw new CommandLine.ParameterException(spec.commandLine(),
                        "the leg is NODE:PATH, e.g. c:m0.img; got '" + leg + "'");
            }
            var body = NodeApi.object().put("storage", leg.substring(0, colon)).put("path", leg.substring(colon + 1));
            printReply(api.post("/weft/devices/" + device + "/legs", body));
        }
    }

    /** {@code weft leg remove DEVICE INDEX}. */
    @Command(name = "remove", mixinStandardHelpOptions = true,
            description = {"Removes leg INDEX (as weft status lists it) of mirrored DEVICE and closes its session.",
                "The last in-sync leg cannot be removed."})
    public static final class Remove extends ClientCommand {
        @Parameters(index = "0", paramLabel = "DEVICE", description = "A mirrored device mapped on the node.")
        String device;

        @Parameters(index = "1", paramLabel = "INDEX", description = "Leg index (the LEG column of weft status).")
        int index;

        @Override
        void run(NodeApi api) {
            if (index < 0) {
                throw new CommandLine.ParameterException(spec.commandLine(), "INDEX is 0, 1 or 2; got " + index);
            }
            printReply(api.post("/weft/devices/" + device + "/legs/" + index + "/remove", NodeApi.object()));
        }
    }

    /** {@code weft leg resync DEVICE INDEX [--full]}. */
    @Command(name = "resync", mixinStandardHelpOptions = true,
            description = {"Copies to leg INDEX of mirrored DEVICE from an in-sync leg, in the background: with --full",
                "every region (a leg whose contents are in doubt), else the regions the write-intent bitmap marks",
                "(a failed leg). The leg serves no reads until in sync; weft status shows the progress.",
                "Refused for the only in-sync leg: it is the source."})
    public static final class Resync extends ClientCommand {
        @Parameters(index = "0", paramLabel = "DEVICE", description = "A mirrored device mapped on the node.")
        String device;

        @Parameters(index = "1", paramLabel = "INDEX", description = "Leg index (the LEG column of weft status).")
        int index;

        @CommandLine.Option(names = "--full", description = "Copy the whole device, not just the marked regions.")
        boolean full;

        @Override
        void run(NodeApi api) {
            if (index < 0) {
                throw new CommandLine.ParameterException(spec.commandLine(), "INDEX is 0, 1 or 2; got " + index);
            }
            printReply(api.post("/weft/devices/" + device + "/legs/" + index + "/resync",
                    NodeApi.object().put("full", full)));
        }
    }
}
