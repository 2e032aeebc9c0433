package io.weft.node.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** {@code weft map --leg}: usage errors are caught before any request (no node is running here). */
class MapLegOptionTest {
    private final StringWriter out = new StringWriter();
    private final StringWriter err = new StringWriter();

    private int run(String... args) {
        CommandLine cli = WeftMain.commandLine();
        cli.setOut(new PrintWriter(out, true));
        cli.setErr(new PrintWriter(err, true));
        return cli.execute(args);
    }

    @Test
    void helpShowsTheLegOption() {
        assertEquals(0, run("map", "--help"));
        assertTrue(out.toString().contains("--leg=NODE:PATH"), out.toString());
    }

    @Test
    void legAndPathTogetherAreAUsageError() {
        assertEquals(WeftMain.EXIT_USAGE, run("map", "m", "--leg", "a:x.img", "--leg", "b:x.img", "--path", "y"));
        assertTrue(err.toString().contains("either --leg"), err.toString());
    }

    @Test
    void aLegWithoutNodeOrPathIsAUsageError() {
        assertEquals(WeftMain.EXIT_USAGE, run("map", "m", "--leg", "x.img", "--leg", "b:x.img"));
        assertTrue(err.toString().contains("--leg is NODE:PATH"), err.toString());
    }

    @Test
    void neitherPathNorLegIsAUsageError() {
        assertEquals(WeftMain.EXIT_USAGE, run("map", "m"));
        assertTrue(err.toString().contains("missing --path"), err.toString());
    }
}
