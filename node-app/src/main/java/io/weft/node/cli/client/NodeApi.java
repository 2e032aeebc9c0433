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
import java.time.Duration;

/**
 * A running node's management HTTP API (docs/http-api.md) as the CLI uses it: JSON in, JSON out, and every failure
 * turned into a {@link CliException} that says what went wrong and what to do.
 */
public final class NodeApi {
    static final ObjectMapper JSON = new ObjectMapper();

    private final String node;
    private final String token;
    private final HttpClient http;
    private final Duration timeout;

    public NodeApi(String node, String token, Duration timeout) {
        // "http://127.0.0.1:7626" works as well as "127.0.0.1:7626" (people paste URLs)
        this.node = node.startsWith("http://") ? stripSlash(node.substring("http://".length())) : node;
        this.token = token == null ? "" : token;
        this.timeout = timeout;
        // TLS set up only if a handshake needs it: SSLContext.getDefault() at build time cost ~0.4 s of start-up
        this.http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5))
                .sslContext(new LazyDefaultSslContext()).sslParameters(LazyDefaultSslContext.parameters()).build();
    }

    public String node() {
        return node;
    }

    public JsonNode get(String path) {
        return send(HttpRequest.newBuilder(uri(path)).GET(), "GET " + path);
    }

    public JsonNode post(String path, ObjectNode body) {
        HttpRequest.Builder req = HttpRequest.newBuilder(uri(path))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body.toString()));
        if (!token.isEmpty()) {
            req.header("Authorization", "Bearer " + token);
        }
        return send(req, "POST " + path);
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
            throw new CliException(CliException.FAILED, node + " refused the change: it needs a token "
                    + "(its weft.management.http.token); pass --token TOKEN or set WEFT_TOKEN");
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
