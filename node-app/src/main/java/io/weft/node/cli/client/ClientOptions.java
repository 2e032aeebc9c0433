package io.weft.node.cli.client;

import java.time.Duration;
import picocli.CommandLine.Option;

/** Options every command that talks to a node shares. */
public final class ClientOptions {
    public static final String DEFAULT_NODE = "127.0.0.1:7626";

    @Option(names = "--node", paramLabel = "HOST:PORT", defaultValue = "${env:WEFT_NODE:-" + DEFAULT_NODE + "}",
            description = "Management HTTP address of the node to talk to (default ${DEFAULT-VALUE}; env WEFT_NODE).")
    String node;

    @Option(names = "--token", paramLabel = "TOKEN", defaultValue = "${env:WEFT_TOKEN}",
            description = "Bearer token for changes, when the node has weft.management.http.token (env WEFT_TOKEN).")
    String token;

    @Option(names = "--json", description = "Print the node's JSON answer instead of a table (for scripts).")
    boolean json;

    @Option(names = "--timeout", paramLabel = "SECONDS", defaultValue = "60",
            description = "How long to wait for the node's answer (default ${DEFAULT-VALUE}).")
    long timeoutSeconds;

    NodeApi api() {
        return new NodeApi(node, token, Duration.ofSeconds(timeoutSeconds));
    }
}
