package io.weft.node.cli.client;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.net.ConnectException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;
import io.weft.actors.management.ManagementToken;

/**
 * A running node's management HTTP API (docs/http-api.md) as the CLI uses it: JSON in, JSON out, and every failure
 * turned into a {@link CliException} that says what went wrong and what to do.
 *
 * <p>Every request carries the node's management token: the one given ({@code --token}, {@code WEFT_TOKEN}), else
 * the one a node on this host left for this address in the per-user runtime directory
 * ({@link ManagementToken#findForAddress}), read again for each request (a joining node gets the cluster's token a
 * moment after it starts).
 */
public final class NodeApi {
    static final ObjectMapper JSON = new ObjectMapper();

    private final String node;
    private final String token;
    private final HttpClient http;
    private final Duration timeout;
    private final Path runtimeDir;
    /** How long a request waits for a joining node to receive the cluster's token (its 503 "no token yet"). */
    private static final Duration TOKEN_WAIT = Duration.ofSeconds(15);

    public NodeApi(String node, String token, Duration timeout) {
        this(node, token, timeout, runtimeDir());
    }

    /** The node's setting as a system property (as {@code weft node -D...} takes it), else the per-user default. */
    private static Path runtimeDir() {
        String configured = System.getProperty("weft.management.http.runtime-dir", "");
        return configured.isBlank() || configured.equals("off") ? ManagementToken.defaultRuntimeDir(System.getenv())
                : Path.of(configured);
    }

    /** With the runtime directory to look for the node's token in (tests). */
    NodeApi(String node, String token, Duration timeout, Path runtimeDir) {
        // "http://127.0.0.1:7626" works as well as "127.0.0.1:7626" (people paste URLs)
        this.node = node.startsWith("http://") ? stripSlash(node.substring("http://".length())) : node;
        this.token = token == null ? "" : token;
        this.timeout = timeout;
        this.runtimeDir = runtimeDir;
        this.http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    }

    /** The token to send: the given one, else the one a node on this host left for this address. */
    Optional<String> token() {
        if (!token.isEmpty()) {
            return Optional.of(token);
        }
        int colon = node.lastIndexOf(':');
        if (colon <= 0) {
            return Optional.empty();
        }
        try {
            return ManagementToken.findForAddress(runtimeDir, node.substring(0, colon),
                    Integer.parseInt(node.substring(colon + 1)));
        } catch (NumberFormatException e) {
            return Optional.empty();
        }
    }

    public String node() {
        return node;
    }

    public JsonNode get(String path) {
        return send(() -> HttpRequest.newBuilder(uri(path)).GET(), "GET " + path);
    }

    public JsonNode post(String path, ObjectNode body) {
        return send(() -> HttpRequest.newBuilder(uri(path))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body.toString())), "POST " + path);
    }

    /**
     * Sends with the current token; while the node answers 503 because it has no token yet (it joined a moment ago
     * and waits for the cluster's), tries again for up to {@link #TOKEN_WAIT}.
     */
    private JsonNode send(java.util.function.Supplier<HttpRequest.Builder> request, String what) {
        long deadline = System.nanoTime() + TOKEN_WAIT.toNanos();
        while (true) {
            HttpRequest.Builder req = request.get();
            token().ifPresent(t -> req.header("Authorization", "Bearer " + t));
            try {
                return send(req, what);
            } catch (CliException e) {
                boolean waitingForToken = e.getMessage().contains("no management token yet");
                if (!waitingForToken || System.nanoTime() - deadline > 0) {
                    throw e;
                }
            }
            try {
                Thread.sleep(200);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new CliException(CliException.FAILED, "interrupted");
            }
        }
    }

    private static String stripSlash(String s) {
        return s.endsWith("/") ? s.substring(0, s.length() - 1) : s;
    }

    public static ObjectNode object() {
        return JSON.createObjectNode();
    }

    private URI uri(String path) {
        try {
            return URI.create("http://" + node + path);
        } catch (IllegalArgumentException e) {
            throw new CliException(CliException.USAGE, "--node " + node + " is not HOST:PORT");
        }
    }

    private JsonNode send(HttpRequest.Builder request, String what) {
        HttpResponse<String> response;
        try {
            response = http.send(request.timeout(timeout).build(), HttpResponse.BodyHandlers.ofString());
        } catch (ConnectException | HttpConnectTimeoutException e) {
            throw unreachable();
        } catch (HttpTimeoutException e) {
            throw new CliException(CliException.UNREACHABLE, "node " + node + " did not answer " + what + " within "
                    + timeout.toSeconds() + " s: it may be overloaded or stuck; check its log");
        } catch (IOException e) {
            if (e.getCause() instanceof ConnectException) {
                throw unreachable();
            }
            throw new CliException(CliException.UNREACHABLE, "talking to " + node + " failed (" + e
                    + "): is it a Weft node's management address (--http-listen of `weft node`)?");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CliException(CliException.FAILED, "interrupted");
        }
        JsonNode body;
        try {
            body = response.body().isBlank() ? JSON.createObjectNode() : JSON.readTree(response.body());
        } catch (IOException e) {
            if (response.statusCode() >= 500) {
                // e.g. Pekko HTTP's own 503 when a route did not answer in time: plain text, worth showing
                String first = response.body().strip().lines().findFirst().orElse("");
                throw new CliException(CliException.FAILED, node + " answered " + what + " with HTTP "
                        + response.statusCode() + (first.isEmpty() ? "" : ": " + first) + hint(response.statusCode()));
            }
            throw new CliException(CliException.FAILED, node + " answered " + what + " with HTTP "
                    + response.statusCode() + " and no JSON: is it a Weft node's management address?");
        }
        int status = response.statusCode();
        if (status == 401) {
            String why = token.isEmpty() && token().isEmpty()
                    ? "no token for " + node + " in " + runtimeDir + " (a node run by another user, or on another "
                    + "host, leaves it elsewhere)"
                    : "the token " + (token.isEmpty() ? "found in " + runtimeDir : "given") + " is not the node's";
            throw new CliException(CliException.FAILED, node + " refused " + what + ": it needs a token (the "
                    + "node's management token); " + why + ". Pass --token TOKEN or set WEFT_TOKEN (the token is in "
                    + "the node's <data-dir>/" + ManagementToken.FILE_NAME + ")");
        }
        // operations answer {"ok": false, "message": ...}; the drill and leg routes {"error": ...}
        String message = body.path("message").asText(body.path("error").asText(""));
        if (status == 404 && message.isEmpty()) {
            throw new CliException(CliException.FAILED, node + " has no " + what
                    + ": is it a Weft node's management address (not its NBD port)?");
        }
        if (status >= 400 || (body.has("ok") && !body.path("ok").asBoolean())) {
            throw new CliException(CliException.FAILED, (message.isEmpty() ? "HTTP " + status : message)
                    + hint(status), body);
        }
        return body;
    }

    private static String hint(int status) {
        return switch (status) {
            case 400 -> " (check the arguments: weft COMMAND --help)";
            case 403 -> " (the node accepts requests only under its own address: use --node with the address it "
                    + "listens on, or add this name to its weft.management.http.allowed-hosts)";
            case 404 -> " (weft status lists the devices of this node)";
            case 503 -> " (the node is starting, stopping or too busy to answer in time; try again in a moment, "
                    + "and see its log)";
            case 504 -> " (the node's actors did not answer in time; see its log)";
            default -> "";
        };
    }

    private CliException unreachable() {
        String start = node.equals(ClientOptions.DEFAULT_NODE) ? "./weft node" : "./weft node --http-listen " + node;
        return new CliException(CliException.UNREACHABLE, "no node answers at " + node
                + ": is `weft node` running? start it with " + start + " (or point --node at its management address)");
    }
}
