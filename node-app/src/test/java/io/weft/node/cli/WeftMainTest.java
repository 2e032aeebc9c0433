package io.weft.node.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

class WeftMainTest {
    private final StringWriter out = new StringWriter();
    private final StringWriter err = new StringWriter();

    private int run(String... args) {
        CommandLine cli = WeftMain.commandLine();
        cli.setOut(new PrintWriter(out, true));
        cli.setErr(new PrintWriter(err, true));
        return cli.execute(args);
    }

    @Test
    void helpListsTheNodeCommand() {
        assertEquals(0, run("--help"));
        assertTrue(out.toString().contains("node"), out.toString());
    }

    @Test
    void nodeHelpDocumentsEveryOption() {
        assertEquals(0, run("node", "--help"));
        for (String option : new String[] {"--config", "--data-dir", "--nbd-listen", "--nbd-unix", "--http-listen",
            "--token", "--name", "--roles", "--cluster-host", "--cluster-port", "--seed", "--export-root", "-D"}) {
            assertTrue(out.toString().contains(option), option + " in " + out);
        }
    }

    @Test
    void anInvalidSettingExitsWithTwoAndNamesTheKeyWithoutAStackTrace() {
        assertEquals(WeftMain.EXIT_USAGE, run("node", "--nbd-listen", "x"));
        assertEquals("weft node: weft.nbd.listen: expected HOST:PORT (or \"off\"), got \"x\"",
                err.toString().trim());
    }

    @Test
    void anInvalidDashDSettingIsNamedToo() {
        assertEquals(WeftMain.EXIT_USAGE, run("node", "-Dweft.management.http.port=lots"));
        assertTrue(err.toString().startsWith("weft node: weft.management.http.port: expected a whole number"),
                err.toString());
        assertFalse(err.toString().contains("\tat "), "no stack trace");
    }

    @Test
    void anUnknownOptionIsAUsageError() {
        assertEquals(WeftMain.EXIT_USAGE, run("node", "--nbd-lisen", "x"));
        assertTrue(err.toString().contains("--nbd-lisen"), err.toString());
    }

    /** Output and exit code of {@code weft ARGS} run on the given command line. */
    private static String outcome(CommandLine cli, String... args) {
        StringWriter o = new StringWriter();
        StringWriter e = new StringWriter();
        cli.setOut(new PrintWriter(o, true));
        cli.setErr(new PrintWriter(e, true));
        int exit = cli.execute(args);
        return "exit " + exit + "\nout:\n" + o + "\nerr:\n" + e;
    }

    /** main() builds only the named sub-command (start-up time); what a user sees must not change. */
    @Test
    void theCommandLineOfOneSubcommandAnswersLikeTheFullOne() {
        int checked = 0;
        for (Class<?> sub : WeftMain.SUBCOMMANDS) {
            String name = sub.getAnnotation(CommandLine.Command.class).name();
            assertEquals(sub, WeftMain.subcommandNamed(name));
            CommandLine lean = WeftMain.commandLine(name);
            assertEquals(java.util.Set.of(name, "help"), lean.getSubcommands().keySet(), name);
            for (String[] args : new String[][] {{name, "--help"}, {name, "--no-such-option"}}) {
                assertEquals(outcome(WeftMain.commandLine(), args), outcome(WeftMain.commandLine(name), args),
                        String.join(" ", args));
                checked++;
            }
        }
        assertEquals(2 * WeftMain.SUBCOMMANDS.length, checked);
        assertEquals(null, WeftMain.subcommandNamed("--help"));
        assertEquals(WeftMain.SUBCOMMANDS.length + 1, WeftMain.commandLine("stauts").getSubcommands().size(),
                "a typo gets every sub-command, so picocli can suggest the right one");
    }
}
