package io.weft.rdma.verbs.soft;

import io.weft.core.tls.TlsChannel;
import io.weft.rdma.verbs.CompletionQueue;
import io.weft.rdma.verbs.ConnectionOptions;
import io.weft.rdma.verbs.ConnectionRequestHandler;
import io.weft.rdma.verbs.ConnectionSetup;
import io.weft.rdma.verbs.ProtectionDomain;
import io.weft.rdma.verbs.VerbsConnection;
import io.weft.rdma.verbs.VerbsListener;
import io.weft.rdma.verbs.VerbsProvider;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import javax.net.ssl.SSLContext;

/**
 * Verbs over plain TCP: the same one-sided rules as an RNIC (a remote write lands only inside a region registered in
 * the receiving connection's protection domain, with the right key, within bounds; anything else fails the
 * connection), so the session protocol runs unchanged on machines without RDMA hardware.
 */
public final class SoftwareProvider implements VerbsProvider {
    /** How long an accepted socket may take to present its connect request (with TLS: handshake included). */
    static final Duration HANDSHAKE_TIMEOUT = Duration.ofSeconds(5);

    private final List<SoftListener> listeners = new ArrayList<>();
    /** Null: plaintext TCP. */
    private final SSLContext tls;

    /** Plaintext TCP. */
    public SoftwareProvider() {
        this(null);
    }

    /**
     * Every connection (admin and IO, both directions) runs over TLS 1.3 with mutual authentication: the context
     * presents this node's certificate and trusts the cluster CA (e.g. {@code TlsLayout.sslContext()}); a listener
     * requires a client certificate the CA signed, a connecting side checks the listener's. Any certificate of the
     * CA is accepted: the peer's name is not checked here (the session protocol binds identities).
     *
     * @param tls null for plaintext TCP
     */
    public SoftwareProvider(SSLContext tls) {
        this.tls = tls;
        if (tls != null) {
            TlsChannel.warmUp(tls); // the first connect's budget (1 s in a session) is not for loading the TLS stack
        }
    }

    /** Whether connections run over TLS. */
    public boolean tls() {
        return tls != null;
    }

    @Override
    public String name() {
        return "software";
    }

    @Override
    public ProtectionDomain createProtectionDomain() {
        return new SoftProtectionDomain();
    }

    @Override
    public CompletionQueue createCompletionQueue(String name) {
        return new SoftCompletionQueue(name);
    }

    @Override
    public synchronized VerbsListener listen(InetSocketAddress address, ConnectionRequestHandler handler)
            throws IOException {
        SoftListener listener = new SoftListener(address, handler, tls);
        listeners.add(listener);
        return listener;
    }

    @Override
    public VerbsConnection connect(InetSocketAddress remote, InetSocketAddress local, ProtectionDomain pd,
                                   CompletionQueue cq, ConnectionOptions options, byte[] privateData,
                                   Duration timeout, ConnectionSetup setup) throws IOException {
        if (!(pd instanceof SoftProtectionDomain) || !(cq instanceof SoftCompletionQueue)) {
            throw new IllegalArgumentException("protection domain and completion queue must come from this provider");
        }
        if (privateData.length > MAX_PRIVATE_DATA) {
            throw new IllegalArgumentException("private data longer than " + MAX_PRIVATE_DATA + " bytes");
        }
        SocketChannel channel = SocketChannel.open();
        SoftConnection connection = null;
        try {
            channel.setOption(StandardSocketOptions.TCP_NODELAY, true);
            if (local != null) {
                channel.bind(local);
            }
            int timeoutMs = (int) Math.max(1, timeout.toMillis());
            channel.socket().connect(remote, timeoutMs);
            ByteBuffer hello = ByteBuffer.allocate(SoftFrame.HEADER_LENGTH + SoftFrame.HELLO_FIXED_LENGTH
                    + privateData.length).order(ByteOrder.LITTLE_ENDIAN);
            hello.put(SoftFrame.TYPE_OFFSET, SoftFrame.HELLO);
            hello.putInt(SoftFrame.LENGTH_OFFSET, SoftFrame.HELLO_FIXED_LENGTH + privateData.length);
            hello.putInt(SoftFrame.HEADER_LENGTH, SoftFrame.HELLO_MAGIC);
            hello.putShort(SoftFrame.HEADER_LENGTH + 4, SoftFrame.VERSION);
            hello.putShort(SoftFrame.HEADER_LENGTH + 6, (short) privateData.length);
            hello.put(SoftFrame.HEADER_LENGTH + SoftFrame.HELLO_FIXED_LENGTH, privateData);
            ByteBuffer header;
            ByteBuffer peerData;
            if (tls == null) {
                connection = new SoftConnection(channel, (SoftProtectionDomain) pd, (SoftCompletionQueue) cq,
                        options);
                setup.prepare(connection);
                writeFully(channel, hello);
                channel.socket().setSoTimeout(timeoutMs);
                InputStream in = channel.socket().getInputStream();
                header = readFully(in, SoftFrame.HEADER_LENGTH);
                peerData = replyData(remote, header, in, null, null, 0);
                channel.configureBlocking(false);
            } else {
                long deadline = System.nanoTime() + timeout.toNanos();
                channel.configureBlocking(false);
                TlsChannel secure = TlsChannel.nonBlockingClient(channel, tls, remote.getHostString(),
                        remote.getPort());
                try (Selector selector = Selector.open()) {
                    channel.register(selector, SelectionKey.OP_READ);
                    while (!secure.handshakeStep()) {
                        awaitReadable(selector, deadline, remote);
                    }
                    connection = new SoftConnection(channel, secure, (SoftProtectionDomain) pd,
                            (SoftCompletionQueue) cq, options);
                    setup.prepare(connection);
                    SoftListener.writeSmall(channel, secure, hello);
                    header = readFully(secure, selector, SoftFrame.HEADER_LENGTH, deadline, remote);
                    peerData = replyData(remote, header, null, secure, selector, deadline);
                }
                // The selector was closed above, which deregistered the channel: the completion queue's own
                // selector takes it from here.
            }
            connection.peerPrivateData(peerData);
            ((SoftCompletionQueue) cq).attach(connection);
            return connection;
        } catch (IOException | RuntimeException e) {
            if (connection != null) {
                connection.fail(io.weft.rdma.verbs.WcStatus.TRANSPORT_ERROR, "connect failed");
            }
            channel.close();
            throw e;
        }
    }

    /** Checks the listener's reply header and reads its private data (from the stream, or through TLS). */
    private static ByteBuffer replyData(InetSocketAddress remote, ByteBuffer header, InputStream in,
                                        TlsChannel secure, Selector selector, long deadline) throws IOException {
        byte type = header.get(SoftFrame.TYPE_OFFSET);
        int length = header.getInt(SoftFrame.LENGTH_OFFSET);
        if (type == SoftFrame.REJECT) {
            int reason = header.getInt(SoftFrame.IMMEDIATE_OFFSET);
            throw new io.weft.rdma.verbs.ConnectionRejectedException("connection to " + remote
                    + " rejected (reason " + reason + ")", reason);
        }
        if (type != SoftFrame.ACCEPT || length < 0 || length > MAX_PRIVATE_DATA) {
            throw new IOException("peer " + remote + " is not a Weft software-verbs endpoint");
        }
        return in != null ? readFully(in, length) : readFully(secure, selector, length, deadline, remote);
    }

    private static void awaitReadable(Selector selector, long deadline, InetSocketAddress remote)
            throws IOException {
        long left = deadline - System.nanoTime();
        if (left <= 0) {
            throw new java.net.SocketTimeoutException("TLS connection to " + remote + " not established in time");
        }
        selector.select(Math.max(1, left / 1_000_000));
        selector.selectedKeys().clear();
    }

    /** Reads exactly {@code length} bytes through TLS on a non-blocking socket, waiting on {@code selector}. */
    private static ByteBuffer readFully(TlsChannel secure, Selector selector, int length, long deadline,
                                        InetSocketAddress remote) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(length).order(ByteOrder.LITTLE_ENDIAN);
        while (b.hasRemaining()) {
            int n = secure.read(b);
            if (n < 0) {
                throw new EOFException("peer closed during the connection handshake");
            }
            if (n == 0 && !secure.hasBufferedInput()) {
                awaitReadable(selector, deadline, remote);
            }
        }
        return b.flip();
    }

    static void writeFully(SocketChannel channel, ByteBuffer buffer) throws IOException {
        while (buffer.hasRemaining()) {
            channel.write(buffer);
        }
    }

    static ByteBuffer readFully(InputStream in, int length) throws IOException {
        byte[] bytes = new byte[length];
        int done = 0;
        while (done < length) {
            int n = in.read(bytes, done, length - done);
            if (n < 0) {
                throw new EOFException("peer closed during the connection handshake");
            }
            done += n;
        }
        return ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
    }

    /** How often software completion queues in this JVM went to sleep on their selector (diagnostics). */
    public static long selectorSleeps() {
        return SoftCompletionQueue.SLEEPS.get();
    }

    @Override
    public synchronized void close() {
        for (SoftListener l : listeners) {
            l.close();
        }
        listeners.clear();
    }
}
