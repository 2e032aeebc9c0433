package io.weft.node.cli.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The CLI's one-request HTTP client: each framing a server may choose, the request it sends, and every bound on what
 * it reads (a line, a body, the deadline of a node that accepts but does not answer).
 */
class OneShotHttpTest {
    private static OneShotHttp.Response parse(String raw) throws IOException {
        return OneShotHttp.read(new ByteArrayInputStream(raw.getBytes(StandardCharsets.ISO_8859_1)));
    }

    @Test
    void contentLengthFramesTheBody() throws IOException {
        OneShotHttp.Response r = parse("HTTP/1.1 201 Created\r\nContent-Length: 5\r\n\r\n{\"a\"}trailing");
        assertEquals(201, r.status());
        assertEquals("{\"a\"}", r.body());
    }

    @Test
    void chunkedBodiesAreJoinedAndExtensionsAndTrailersSkipped() throws IOException {
        OneShotHttp.Response r = parse("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                + "3;ext=1\r\n[1,\r\na\r\n2,3,4,5,6]\r\n0\r\nX-Trailer: t\r\n\r\n");
        assertEquals(200, r.status());
        assertEquals("[1,2,3,4,5,6]", r.body());
    }

    @Test
    void withoutLengthTheBodyEndsWithTheConnectionAndIsUtf8() throws IOException {
        byte[] head = "HTTP/1.0 404 Not Found\n\n".getBytes(StandardCharsets.ISO_8859_1);
        byte[] body = "{\"error\":\"no volume \u00e9t\u00e9\"}".getBytes(StandardCharsets.UTF_8);
        byte[] all = new byte[head.length + body.length];
        System.arraycopy(head, 0, all, 0, head.length);
        System.arraycopy(body, 0, all, head.length, body.length);
        OneShotHttp.Response r = OneShotHttp.read(new ByteArrayInputStream(all));
        assertEquals(404, r.status());
        assertEquals("{\"error\":\"no volume \u00e9t\u00e9\"}", r.body());
    }

    @Test
    void malformedOrOversizedAnswersFailInsteadOfBeingTrusted() {
        String[] bad = {
            "SSH-2.0-OpenSSH_9.2\r\n",                                                // not HTTP
            "HTTP/1.1 2x0 OK\r\n\r\n",                                                // status not a number
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",                          // negative length
            "HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",                 // above the bound
            "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",                     // truncated body
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffff\r\n",     // chunk size above the bound
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",            // chunk size not hex
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n", // chunk without CRLF
            "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",                               // header without a name
            "HTTP/1.1 200 OK\r\nX: " + "a".repeat(OneShotHttp.MAX_LINE) + "\r\n\r\n", // endless header line
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n",                               // closed inside the head
        };
        for (String raw : bad) {
            IOException e = assertThrows(IOException.class, () -> parse(raw), raw);
            assertTrue(e.getMessage() != null && !e.getMessage().isEmpty(), raw);
        }
    }

    @Test
    void sendsOneRequestWithHostTokenAndBodyThenReadsTheAnswer() throws Exception {
        try (ServerSocket server = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            CompletableFuture<String> request = CompletableFuture.supplyAsync(() -> {
                try (Socket s = server.accept()) {
                    InputStream in = s.getInputStream();
                    StringBuilder head = new StringBuilder();
                    while (!head.toString().endsWith("\r\n\r\n")) {
                        head.append((char) in.read());
                    }
                    String body = new String(in.readNBytes(10), StandardCharsets.UTF_8);
                    OutputStream out = s.getOutputStream();
                    out.write("HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{\"ok\":true}".getBytes(
                            StandardCharsets.ISO_8859_1));
                    out.flush();
                    return head + body;
                } catch (IOException e) {
                    throw new RuntimeException(e);
                }
            });
            OneShotHttp.Response r = OneShotHttp.exchange("127.0.0.1", server.getLocalPort(),
                    "localhost:" + server.getLocalPort(), "POST", "/weft/devices/a%20b/map?x=1", "tok",
                    "{\"size\":1}", 5_000, TimeUnit.SECONDS.toNanos(10));
            assertEquals(200, r.status());
            assertEquals("{\"ok\":true}", r.body());
            String sent = request.get(10, TimeUnit.SECONDS);
            assertTrue(sent.startsWith("POST /weft/devices/a%20b/map?x=1 HTTP/1.1\r\n"), sent);
            assertTrue(sent.contains("\r\nHost: localhost:" + server.getLocalPort() + "\r\n"), sent);
            assertTrue(sent.contains("\r\nAuthorization: Bearer tok\r\n"), sent);
            assertTrue(sent.contains("\r\nContent-Length: 10\r\n") && sent.endsWith("\r\n\r\n{\"size\":1}"), sent);
        }
    }

    @Test
    void aNodeThatAcceptsButNeverAnswersRunsIntoTheDeadline() throws Exception {
        try (ServerSocket server = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            CountDownLatch done = new CountDownLatch(1);
            CompletableFuture<Void> silent = CompletableFuture.runAsync(() -> {
                try (Socket s = server.accept()) {
                    done.await(30, TimeUnit.SECONDS);   // holds the connection open, says nothing
                } catch (IOException | InterruptedException e) {
                    throw new RuntimeException(e);
                }
            });
            try {
                assertThrows(OneShotHttp.AnswerTimeoutException.class, () -> OneShotHttp.exchange("127.0.0.1",
                        server.getLocalPort(), "x", "GET", "/weft/node", null, null, 5_000,
                        TimeUnit.MILLISECONDS.toNanos(200)));
            } finally {
                done.countDown();
                silent.get(10, TimeUnit.SECONDS);
            }
        }
    }

    @Test
    void aClosedPortIsAConnectException() throws Exception {
        int port;
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            port = s.getLocalPort();
        }
        assertThrows(java.net.ConnectException.class, () -> OneShotHttp.exchange("127.0.0.1", port, "x", "GET", "/",
                null, null, 5_000, TimeUnit.SECONDS.toNanos(5)));
    }
}
