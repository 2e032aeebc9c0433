package io.weft.node.cli.client;

import io.weft.node.cli.WeftMain;
import java.io.PrintWriter;
import java.io.StringWriter;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;

/**
 * The fixture shared by the client commands' tests: a fresh {@link FakeNode} per test and {@link #weft} running the
 * real command line with its output and errors captured in {@link #out} and {@link #err}.
 */
abstract class CommandAgainstFakeNode {
    FakeNode node;
    final StringWriter out = new StringWriter();
    final StringWriter err = new StringWriter();

    @BeforeEach
    void startNode() throws Exception {
        node = new FakeNode();
    }

    @AfterEach
    void stopNode() {
        node.close();
    }

    int weft(String... args) {
        var cli = WeftMain.commandLine();
        cli.setOut(new PrintWriter(out, true));
        cli.setErr(new PrintWriter(err, true));
        return cli.execute(args);
    }
}
