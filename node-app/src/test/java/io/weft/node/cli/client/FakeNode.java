package io.weft.node.cli.client;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;

/**
 * A stand-in for a node's management HTTP API: answers "METHOD /path" with canned JSON, in turn (the last answer
 * repeats), and records every request. Binds an ephemeral loopback port.
 */
final class FakeNode implements AutoCloseable {
    record Answer(int status, String body) {
    }

    record Request(String method, String path, String body, String authorization) {
    }

    private final HttpServer server;
    private final Map<String, Deque<Answer>> answers = new ConcurrentHashMap<>();
    final List<Request> requests = new CopyOnWriteArrayList<>();
    /** Runs on every request before its answer is sent: what the node does meanwhile (e.g. change its token). */
    private volatile Consumer<Request> beforeAnswer = r -> { };

    FakeNode() throws IOException {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.createContext("/", this::handle);
        server.start();
    }

    /** Adds answers to "METHOD /path", given in turn; the last one repeats. */
    FakeNode on(String methodAndPath, int status, String... bodies) {
        Deque<Answer> queue = answers.computeIfAbsent(methodAndPath, k -> new ArrayDeque<>());
        synchronized (queue) {
            for (String body : bodies) {
                queue.add(new Answer(status, body));
            }
        }
        return this;
    }

    FakeNode beforeEachAnswer(Consumer<Request> action) {
        this.beforeAnswer = action;
        return this;
    }

    String address() {
        return "127.0.0.1:" + server.getAddress().getPort();
    }

    List<Request> requests(String method, String path) {
        return requests.stream().filter(r -> r.method().equals(method) && r.path().equals(path)).toList();
    }

    private void handle(HttpExchange exchange) throws IOException {
        String body = new String(exchange.getRequestBody().readAllBytes(), StandardCharsets.UTF_8);
        String method = exchange.getRequestMethod();
        String path = exchange.getRequestURI().getPath();
        Request request = new Request(method, path, body, exchange.getRequestHeaders().getFirst("Authorization"));
        requests.add(request);
        beforeAnswer.accept(request);
        Deque<Answer> queue = answers.get(method + " " + path);
        Answer answer;
        if (queue == null) {
            answer = new Answer(404, "{\"error\":\"no route " + method + " " + path + " in the fake node\"}");
        } else {
            synchronized (queue) {
                answer = queue.size() > 1 ? queue.poll() : queue.peek();
            }
        }
        byte[] bytes = answer.body().getBytes(StandardCharsets.UTF_8);
        exchange.getResponseHeaders().add("Content-Type", "application/json");
        exchange.sendResponseHeaders(answer.status(), bytes.length == 0 ? -1 : bytes.length);
        try (OutputStream out = exchange.getResponseBody()) {
            out.write(bytes);
        }
    }

    @Override
    public void close() {
        server.stop(0);
    }
}
