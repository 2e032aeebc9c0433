package io.weft.node.cli.client;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.util.Locale;

/**
 * One HTTP/1.1 request per connection over a plain socket: what a client command needs to talk to a node's management
 * API, and nothing more. The JDK's {@code java.net.http.HttpClient} cost about a quarter of a second of start-up
 * (its selector thread, executor, TLS and flow classes) and {@code HttpURLConnection} loads the URL handler and
 * proxy machinery; this class loads a socket (docs/BENCHMARKS.md, "CLI start-up time").
 *
 * <p>Sends {@code Connection: close} and reads the answer framed by {@code Content-Length}, by
 * {@code Transfer-Encoding: chunked}, or by the end of the connection. Every length read from the peer is bounded:
 * a status or header line longer than {@link #MAX_LINE}, a body longer than {@link #MAX_BODY} or an unparsable
 * framing fails the request with an {@link IOException}. The whole exchange has one deadline (connect has its own):
 * each read waits at most for the time left.
 *
 * <p>Plain HTTP only, as the management API is today. If it ever speaks TLS, {@link #open} is the one place to wrap
 * the socket ({@code SSLSocketFactory.createSocket(socket, host, port, true)} with endpoint identification).
 */
final class OneShotHttp {
    /** Longest status or header line accepted. */
    static final int MAX_LINE = 16 * 1024;
    /** Largest body accepted: far above any management answer (a status of thousands of devices is a few MiB). */
    static final int MAX_BODY = 64 << 20;

    record Response(int status, String body) {
    }

    /** The connect attempt ran out of time (a node that drops SYNs): reported like a refused connection. */
    static final class ConnectTimeoutException extends IOException {
        ConnectTimeoutException(String message) {
            super(message);
        }
    }

    /** The node accepted the connection but did not answer in time. */
    static final class AnswerTimeoutException extends IOException {
        AnswerTimeoutException(String message) {
            super(message);
        }
    }

    private OneShotHttp() {
    }

    /**
     * Sends {@code method target} to {@code host:port} with the given {@code Host} header value, an optional bearer
     * token and an optional JSON body, and returns the answer.
     *
     * @param target the request target: an absolute path with its query, already percent-encoded
     */
    static Response exchange(String host, int port, String hostHeader, String method, String target, String token,
                             String jsonBody, int connectTimeoutMillis, long timeoutNanos) throws IOException {
        long deadline = System.nanoTime() + timeoutNanos;
        try (Socket socket = open(host, port, connectTimeoutMillis)) {
            byte[] body = jsonBody == null ? new byte[0] : jsonBody.getBytes(StandardCharsets.UTF_8);
            StringBuilder head = new StringBuilder(256).append(method).append(' ').append(target)
                    .append(" HTTP/1.1\r\nHost: ").append(hostHeader)
                    .append("\r\nAccept: application/json\r\nConnection: close\r\n");
            if (token != null) {
                head.append("Authorization: Bearer ").append(token).append("\r\n");
            }
            if (jsonBody != null) {
                head.append("Content-Type: application/json\r\nContent-Length: ").append(body.length).append("\r\n");
            }
            head.append("\r\n");
            OutputStream out = socket.getOutputStream();
            out.write(head.toString().getBytes(StandardCharsets.ISO_8859_1));
            out.write(body);
            out.flush();
            return read(new DeadlineInput(socket, deadline));
        }
    }

    private static Socket open(String host, int port, int connectTimeoutMillis) throws IOException {
        Socket socket = new Socket();
        try {
            socket.setTcpNoDelay(true);
            socket.connect(new InetSocketAddress(host, port), connectTimeoutMillis);
            return socket;
        } catch (SocketTimeoutException e) {
            socket.close();
            throw new ConnectTimeoutException("connect to " + host + ":" + port + " timed out");
        } catch (IOException | RuntimeException e) {
            socket.close();
            throw e;
        }
    }

    /** Parses one response; package-private for the framing tests. */
    static Response read(InputStream in) throws IOException {
        String statusLine = line(in);
        // "HTTP/1.1 200 OK": the code is the second token, three digits
        if (!statusLine.startsWith("HTTP/1.") || statusLine.length() < 12 || statusLine.charAt(8) != ' ') {
            throw new IOException("not an HTTP/1.x answer: " + printable(statusLine));
        }
        int status = parseDecimal(statusLine.substring(9, 12), 999, "status code");
        long contentLength = -1;
        boolean chunked = false;
        for (String header = line(in); !header.isEmpty(); header = line(in)) {
            int colon = header.indexOf(':');
            if (colon <= 0) {
                throw new IOException("malformed header line: " + printable(header));
            }
            String name = header.substring(0, colon).trim().toLowerCase(Locale.ROOT);
            String value = header.substring(colon + 1).trim();
            if (name.equals("content-length")) {
                contentLength = parseDecimal(value, MAX_BODY, "Content-Length");
            } else if (name.equals("transfer-encoding")) {
                chunked = value.toLowerCase(Locale.ROOT).contains("chunked");
            }
        }
        byte[] body;
        if (chunked) {
            body = chunkedBody(in);
        } else if (contentLength >= 0) {
            body = in.readNBytes((int) contentLength);
            if (body.length != contentLength) {
                throw new IOException("connection closed after " + body.length + " of " + contentLength
                        + " body bytes");
            }
        } else {
            body = untilClosed(in);
        }
        return new Response(status, new String(body, StandardCharsets.UTF_8));
    }

    private static byte[] chunkedBody(InputStream in) throws IOException {
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        while (true) {
            String sizeLine = line(in);
            int semicolon = sizeLine.indexOf(';');   // chunk extensions are ignored
            String hex = (semicolon >= 0 ? sizeLine.substring(0, semicolon) : sizeLine).trim();
            if (hex.isEmpty() || hex.length() > 8) {
                throw new IOException("malformed chunk size: " + printable(sizeLine));
            }
            long size;
            try {
                size = Long.parseLong(hex, 16);
            } catch (NumberFormatException e) {
                throw new IOException("malformed chunk size: " + printable(sizeLine));
            }
            if (size > MAX_BODY - body.size()) {
                throw new IOException("answer larger than " + MAX_BODY + " bytes");
            }
            if (size == 0) {
                while (!line(in).isEmpty()) {
                    // trailers: none expected, skipped
                }
                return body.toByteArray();
            }
            byte[] chunk = in.readNBytes((int) size);
            if (chunk.length != size) {
                throw new IOException("connection closed inside a chunk");
            }
            body.write(chunk);
            if (!line(in).isEmpty()) {
                throw new IOException("chunk not followed by CRLF");
            }
        }
    }

    private static byte[] untilClosed(InputStream in) throws IOException {
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        byte[] buffer = new byte[8192];
        for (int n = in.read(buffer); n >= 0; n = in.read(buffer)) {
            if (n > MAX_BODY - body.size()) {
                throw new IOException("answer larger than " + MAX_BODY + " bytes");
            }
            body.write(buffer, 0, n);
        }
        return body.toByteArray();
    }

    /** One CRLF- (or LF-) terminated line, ISO-8859-1, at most {@link #MAX_LINE} bytes. */
    private static String line(InputStream in) throws IOException {
        StringBuilder line = new StringBuilder(64);
        while (true) {
            int b = in.read();
            if (b < 0) {
                throw new IOException(line.length() == 0 ? "connection closed before the answer was complete"
                        : "connection closed inside a line: " + printable(line.toString()));
            }
            if (b == '\n') {
                int end = line.length();
                return end > 0 && line.charAt(end - 1) == '\r' ? line.substring(0, end - 1) : line.toString();
            }
            if (line.length() >= MAX_LINE) {
                throw new IOException("header line longer than " + MAX_LINE + " bytes");
            }
            line.append((char) b);
        }
    }

    private static int parseDecimal(String digits, long max, String what) throws IOException {
        if (digits.isEmpty() || digits.length() > 10) {
            throw new IOException("malformed " + what + ": " + printable(digits));
        }
        long value = 0;
        for (int i = 0; i < digits.length(); i++) {
            char c = digits.charAt(i);
            if (c < '0' || c > '9') {
                throw new IOException("malformed " + what + ": " + printable(digits));
            }
            value = value * 10 + (c - '0');
        }
        if (value > max) {
            throw new IOException(what + " " + value + " above " + max);
        }
        return (int) value;
    }

    private static String printable(String s) {
        String cut = s.length() > 80 ? s.substring(0, 80) + "..." : s;
        return cut.replaceAll("\\p{Cntrl}", "?");
    }

    /**
     * The socket's input, buffered, where every read waits at most until the exchange's deadline (a read timeout
     * alone would let a node that trickles bytes hold the command for ever).
     */
    private static final class DeadlineInput extends InputStream {
        private final Socket socket;
        private final InputStream in;
        private final long deadline;
        private final byte[] buffer = new byte[8192];
        private int position;
        private int limit;

        DeadlineInput(Socket socket, long deadline) throws IOException {
            this.socket = socket;
            this.in = socket.getInputStream();
            this.deadline = deadline;
        }

        private boolean fill() throws IOException {
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                throw new AnswerTimeoutException("no complete answer before the deadline");
            }
            socket.setSoTimeout((int) Math.max(1, Math.min(Integer.MAX_VALUE, left / 1_000_000)));
            int n;
            try {
                n = in.read(buffer);
            } catch (SocketTimeoutException e) {
                throw new AnswerTimeoutException("no complete answer before the deadline");
            }
            if (n <= 0) {
                return false;
            }
            position = 0;
            limit = n;
            return true;
        }

        @Override
        public int read() throws IOException {
            if (position == limit && !fill()) {
                return -1;
            }
            return buffer[position++] & 0xff;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            if (len == 0) {
                return 0;
            }
            if (position == limit && !fill()) {
                return -1;
            }
            int n = Math.min(len, limit - position);
            System.arraycopy(buffer, position, b, off, n);
            position += n;
            return n;
        }
    }
}
