package io.weft.node.cli.client;

import com.fasterxml.jackson.databind.JsonNode;

/** A client command failed; the message says what went wrong and what to do. */
public final class CliException extends RuntimeException {
    /** The node refused or failed the operation. */
    public static final int FAILED = 1;
    /** Invalid usage. */
    public static final int USAGE = 2;
    /** No node answered at the given address. */
    public static final int UNREACHABLE = 3;

    private final int exitCode;
    private final transient JsonNode body;

    public CliException(int exitCode, String message) {
        this(exitCode, message, null);
    }

    public CliException(int exitCode, String message, JsonNode body) {
        super(message);
        this.exitCode = exitCode;
        this.body = body;
    }

    public int exitCode() {
        return exitCode;
    }

    /** The node's JSON answer, when it gave one (printed as is with --json). */
    public JsonNode body() {
        return body;
    }
}
