package io.weft.node.cli;

import io.weft.node.StartupException;
import io.weft.node.cli.client.DrillCommand;
import io.weft.node.cli.client.LegCommand;
import io.weft.node.cli.client.MapCommand;
import io.weft.node.cli.client.RemapCommand;
import io.weft.node.cli.client.ResizeCommand;
import io.weft.node.cli.client.StatusCommand;
import io.weft.node.cli.client.UnmapCommand;
import io.weft.node.cli.client.VolumeCommand;
import io.weft.node.config.InvalidSettingException;
import java.util.List;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * The {@code weft} command. Sub-commands are listed in {@link #SUBCOMMANDS}: {@code node} runs a node; the
 * client-side commands ({@code status}, {@code map}, {@code unmap}, ...) talk to a running node's HTTP API.
 *
 * <p>Exit codes: 0 success, 1 the command failed (e.g. a port in use, a refused map), 2 invalid usage or setting,
 * 3 no node answered at the given address.
 */
@Command(name = "weft",
        mixinStandardHelpOptions = true,
        versionProvider = WeftMain.Version.class,
        description = "Weft: a block-storage fabric for the JVM. Devices are served over NBD.",
        synopsisSubcommandLabel = "COMMAND",
        commandListHeading = "%nCommands:%n")
public final class WeftMain implements Runnable {
    /** Exit code of a command that failed at run time. */
    public static final int EXIT_FAILURE = 1;
    /** Exit code of invalid usage or an invalid setting. */
    public static final int EXIT_USAGE = 2;

    /** Every sub-command of {@code weft}; add new ones here. */
    static final Class<?>[] SUBCOMMANDS = {NodeCommand.class, StatusCommand.class, MapCommand.class,
        UnmapCommand.class, RemapCommand.class, ResizeCommand.class, VolumeCommand.class, LegCommand.class,
        DrillCommand.class, DemoCommand.class, CxlCommand.class, CertsCommand.class};

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }

    /** The configured picocli command line with every sub-command (also used by tests). */
    public static CommandLine commandLine() {
        return commandLine(null);
    }

    /**
     * The command line for running {@code weft FIRST ...}: when {@code first} names a sub-command, only that one is
     * built, because picocli builds each sub-command's model by reflection at start and that was a good part of a
     * client command's start-up time (docs/BENCHMARKS.md). Anything else ({@code --help}, {@code help}, a typo, no
     * argument) gets every sub-command, so help, suggestions and errors are the same as before.
     */
    static CommandLine commandLine(String first) {
        CommandLine cli = new CommandLine(new WeftMain());
        Class<?> only = first == null ? null : subcommandNamed(first);
        for (Class<?> sub : SUBCOMMANDS) {
            if (only == null || sub == only) {
                cli.addSubcommand(sub);
            }
        }
        cli.addSubcommand(new CommandLine.HelpCommand());
        cli.setExecutionExceptionHandler((ex, line, parseResult) -> {
            if (ex instanceof InvalidSettingException) {
                line.getErr().println("weft " + line.getCommandName() + ": " + ex.getMessage());
                return EXIT_USAGE;
            }
            if (ex instanceof StartupException) {
                line.getErr().println("weft " + line.getCommandName() + ": " + ex.getMessage());
                return EXIT_FAILURE;
            }
            throw ex;
        });
        return cli;
    }

    public static void main(String[] args) {
        System.exit(commandLine(args.length == 0 ? null : args[0]).execute(args));
    }

    /** The sub-command class whose {@code @Command} name or alias is {@code name}, or null. */
    static Class<?> subcommandNamed(String name) {
        for (Class<?> sub : SUBCOMMANDS) {
            Command command = sub.getAnnotation(Command.class);
            if (command != null && (command.name().equals(name) || List.of(command.aliases()).contains(name))) {
                return sub;
            }
        }
        return null;
    }

    /** Version from the jar manifest (absent when running from classes). */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = WeftMain.class.getPackage().getImplementationVersion();
            return new String[] {"weft " + (v == null ? "(development build)" : v),
                    "Java " + System.getProperty("java.version") + " (" + System.getProperty("java.vm.name") + ")"};
        }
    }
}
