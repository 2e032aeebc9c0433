package io.weft.node.cli.client;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.weft.core.management.ManagementTokenFiles;
import java.io.IOException;
import java.net.ConnectException;
import java.net.URI;
import java.net.UnknownHostException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Optional;

/**
 * A running node's management HTTP API (docs/http-api.md) as the CLI uses it: JSON in, JSON out, and every failure
 * turned into a {@link CliException} that says what went wrong and what to do.
 *
 * <p>Every request carries the node's management token: the one given ({@code --token}, {@code WEFT_TOKEN}), else
 * the one a node on this host left for this address in the per-user runtime directory
 * ({@link ManagementTokenFiles#findForAddress}), read again for each request (a joining node gets the cluster's token
 * a moment after it starts).
 *
 * <p>Requests go through {@link OneShotHttp} (one connection each), not {@code java.net.http}: a client command is
 * a short-lived JVM and the JDK's client cost a quarter of its start-up (docs/BENCHMARKS.md, "CLI start-up time").
 */
public final class NodeApi {
    /** {@code ManagementToken.FILE_NAME} of the actors module, which a client command does not load. */
    static final String TOKEN_FILE_NAME = "management.token";

    private final String node;
    private final String token;
    private final Duration timeout;
    private final Path runtimeDir;
    /** How long a request waits for a joining node to receive the cluster's token (its 503 "no token yet"). */
    private static final Duration TOKEN_WAIT = Duration.ofSeconds(15);
    /** How long connecting may take (a node that drops packets is reported as unreachable after it). */
    private static final int CONNECT_TIMEOUT_MILLIS = 5_000;

    public NodeApi(String node, String token, Duration timeout) {
        this(node, token, timeout, runtimeDir());
    }

    /** The node's setting as a system property (as {@code weft node -D...} takes it), else the per-user default. */
    private static Path runtimeDir() {
        String configured = System.getProperty("weft.management.http.runtime-dir", "");
        return configured.isBlank() || configured.equals("off")
                ? ManagementTokenFiles.defaultRuntimeDir(System.getenv())
                : Path.of(configured);
    }

    /** With the runtime directory to look for the node's token in (tests). */
    NodeApi(String node, String token, Duration timeout, Path runtimeDir) {
        // "http://127.0.0.1:7626" works as well as "127.0.0.1:7626" (people paste URLs)
        this.node = node.startsWith("http://") ? stripSlash(node.substring("http://".length())) : node;
        this.token = token == null ? "" : token;
        this.timeout = timeout;
        this.runtimeDir = runtimeDir;
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
            return ManagementTokenFiles.findForAddress(runtimeDir, node.substring(0, colon),
                    Integer.parseInt(node.substring(colon + 1)));
        } catch (NumberFormatException e) {
            return Optional.empty();
        }
    }

    public String node() {
        return node;
    }

    public JsonNode get(String path) {
        return send("GET", path, null);
    }

    public JsonNode post(String path, ObjectNode body) {
        return send("POST", path, JsonText.compact(body));
    }

    /**
     * Sends with the current token; while the node answers 503 because it has no token yet (it joined a moment ago
     * and waits for the cluster's), tries again for up to {@link #TOKEN_WAIT}. Refused (401) with a token read from
     * the runtime file while the file now holds another one (the node adopted the cluster's token meanwhile; it
     * writes the file before it switches), it retries once with the new one; likewise when it sent none because the
     * file did not exist yet and it exists now (the node got its token after the file was looked up).
     */
    private JsonNode send(String method, String path, String body) {
        String what = method + " " + path;
        URI uri = uri(path);
        long deadline = System.nanoTime() + TOKEN_WAIT.toNanos();
        boolean retriedWithNewToken = false;
        while (true) {
            String sent = token().orElse(null);
            try {
                return send(uri, method, body, sent, what);
            } catch (Unauthorized e) {
                String now = token.isEmpty() ? token().orElse(null) : null;
                if (retriedWithNewToken || now == null || now.equals(sent)) {
                    throw e.refusal;
                }
                retriedWithNewToken = true;
                continue;
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

    /** A 401 on its way to the retry decision in {@link #send(String, String, String)}; thrown on as its cause. */
    private static final class Unauthorized extends RuntimeException {
        private final CliException refusal;

        Unauthorized(CliException refusal) {
            super(refusal.getMessage(), null, false, false);
            this.refusal = refusal;
        }
    }

    private static String stripSlash(String s) {
        return s.endsWith("/") ? s.substring(0, s.length() - 1) : s;
    }

    public static ObjectNode object() {
        return JsonText.object();
    }

    private URI uri(String path) {
        try {
            URI uri = URI.create("http://" + node + path);
            if (uri.getHost() == null) {
                throw new IllegalArgumentException("no host");
            }
            return uri;
        } catch (IllegalArgumentException e) {
            throw new CliException(CliException.USAGE, "--node " + node + " is not HOST:PORT");
        }
    }

    private JsonNode send(URI uri, String method, String requestBody, String bearer, String what) {
        String host = uri.getHost();
        if (host.startsWith("[") && host.endsWith("]")) {
            host = host.substring(1, host.length() - 1);   // an IPv6 literal: bracketed in URIs, not in addresses
        }
        String target = uri.getRawPath() + (uri.getRawQuery() == null ? "" : "?" + uri.getRawQuery());
        OneShotHttp.Response response;
        try {
            response = OneShotHttp.exchange(host, uri.getPort() < 0 ? 80 : uri.getPort(), uri.getRawAuthority(),
                    method, target, bearer, requestBody, CONNECT_TIMEOUT_MILLIS, timeout.toNanos());
        } catch (ConnectException | OneShotHttp.ConnectTimeoutException e) {
            throw unreachable();
        } catch (OneShotHttp.AnswerTimeoutException e) {
            throw new CliException(CliException.UNREACHABLE, "node " + node + " did not answer " + what + " within "
                    + timeout.toSeconds() + " s: it may be overloaded or stuck; check its log");
        } catch (UnknownHostException e) {
            throw new CliException(CliException.UNREACHABLE, "no host " + host + " (of --node " + node
                    + ") is known: check the name, or use the node's IP address");
        } catch (IOException e) {
            throw new CliException(CliException.UNREACHABLE, "talking to " + node + " failed (" + e
                    + "): is it a Weft node's management address (--http-listen of `weft node`)?");
        }
        JsonNode body;
        try {
            body = response.body().isBlank() ? JsonText.object() : JsonText.parse(response.body());
        } catch (IOException e) {
            if (response.status() >= 500) {
                // e.g. Pekko HTTP's own 503 when a route did not answer in time: plain text, worth showing
                String first = response.body().strip().lines().findFirst().orElse("");
                throw new CliException(CliException.FAILED, node + " answered " + what + " with HTTP "
                        + response.status() + (first.isEmpty() ? "" : ": " + first) + hint(response.status()));
            }
            throw new CliException(CliException.FAILED, node + " answered " + what + " with HTTP "
                    + response.status() + " and no JSON: is it a Weft node's management address?");
        }
        int status = response.status();
        if (status == 401) {
            // What this request carried, not what the file holds now (the node may have written it since).
            String why = bearer == null
                    ? "no token for " + node + " in " + runtimeDir + " (a node run by another user, or on another "
                    + "host, leaves it elsewhere)"
                    : "the token " + (token.isEmpty() ? "found in " + runtimeDir : "given") + " is not the node's";
            throw new Unauthorized(new CliException(CliException.FAILED, node + " refused " + what + ": it needs a "
                    + "token (the node's management token); " + why + ". Pass --token TOKEN or set WEFT_TOKEN (the "
                    + "token is in the node's <data-dir>/" + TOKEN_FILE_NAME + ")"));
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
