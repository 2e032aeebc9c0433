package io.weft.node.cli.client;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.PrintWriter;
import java.util.concurrent.Callable;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/**
 * A command that talks to a running node over its management HTTP API. Prints a readable answer, or the node's JSON
 * with {@code --json}; a failure prints {@code weft COMMAND: what went wrong and what to do} on stderr and exits
 * non-zero ({@link CliException}).
 */
abstract class ClientCommand implements Callable<Integer> {
    @Mixin
    ClientOptions options;

    @Spec
    CommandSpec spec;

    /** Does the work; prints through {@link #out()}. */
    abstract void run(NodeApi api);

    @Override
    public final Integer call() {
        try {
            run(options.api());
            out().flush();
            return exitCode();
        } catch (CliException e) {
            if (options.json && e.body() != null) {
                printJson(e.body());
            }
            PrintWriter err = spec.commandLine().getErr();
            err.println("weft " + name() + ": " + e.getMessage());
            err.flush();
            out().flush();
            return exitCode(e);
        }
    }

    /** The exit code after {@link #run} returned normally (0; a command whose outcome is a verdict overrides it). */
    int exitCode() {
        return 0;
    }

    /** The exit code of a failure ({@link CliException#exitCode()}; a command with its own scheme overrides it). */
    int exitCode(CliException e) {
        return e.exitCode();
    }

    private String name() {
        String qualified = spec.qualifiedName(" ");
        return qualified.startsWith("weft ") ? qualified.substring("weft ".length()) : qualified;
    }

    PrintWriter out() {
        return spec.commandLine().getOut();
    }

    boolean json() {
        return options.json;
    }

    void printJson(JsonNode node) {
        out().println(JsonText.pretty(node));
    }

    /** Prints an operation's reply: its JSON, or its message. */
    void printReply(JsonNode reply) {
        if (json()) {
            printJson(reply);
        } else {
            out().println(reply.path("message").asText("done"));
        }
    }

    /** The called node's name: the default storage node of map, resize and volume create. */
    static String nodeName(NodeApi api) {
        return api.get("/weft/node").path("name").asText();
    }
}
