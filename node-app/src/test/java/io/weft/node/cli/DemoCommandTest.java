package io.weft.node.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code weft demo}'s usage errors (its cluster's plan and command lines: {@link LocalClusterTest}). */
class DemoCommandTest {
    @TempDir
    Path dir;

    @Test
    void usageErrorsExitTwoBeforeAnythingStarts() throws Exception {
        StringWriter err = new StringWriter();
        var cli = WeftMain.commandLine();
        cli.setErr(new PrintWriter(err, true));
        cli.setOut(new PrintWriter(new StringWriter(), true));
        Path kept = dir.resolve("kept");
        assertEquals(2, cli.execute("demo", "--transport", "tcp", "--dir", kept.toString()));
        assertTrue(err.toString().contains("--transport is cxl or rdma; got 'tcp'"), err.toString());
        assertEquals(2, cli.execute("demo", "--base-port", "65533", "--dir", kept.toString()));
        assertTrue(err.toString().contains("--base-port must leave room for 7 ports"), err.toString());
        assertFalse(Files.exists(kept), "nothing created");
    }
}
