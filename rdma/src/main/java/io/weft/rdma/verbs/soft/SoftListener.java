package io.weft.rdma.verbs.soft;

import io.weft.core.tls.TlsChannel;
import io.weft.rdma.verbs.CompletionQueue;
import io.weft.rdma.verbs.ConnectionOptions;
import io.weft.rdma.verbs.ConnectionRequest;
import io.weft.rdma.verbs.ConnectionRequestHandler;
import io.weft.rdma.verbs.ConnectionSetup;
import io.weft.rdma.verbs.ProtectionDomain;
import io.weft.rdma.verbs.VerbsConnection;
import io.weft.rdma.verbs.VerbsListener;
import io.weft.rdma.verbs.VerbsProvider;
import io.weft.rdma.verbs.WcStatus;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ByteChannel;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import javax.net.ssl.SSLContext;
import org.slf4j.LoggerFactory;

/**
 * Accepts sockets and reads their connect requests on one selector thread, without blocking on any peer: a peer
 * that stops in the middle of its request is dropped after {@link SoftwareProvider#HANDSHAKE_TIMEOUT} and never
 * delays anyone else's connect. Complete requests go to the handler on this thread (control path).
 *
 * <p>With TLS, each accepted socket first runs a TLS handshake that requires a client certificate from the context's
 * trust anchors (mutual authentication), advanced on this thread as its bytes arrive ({@link
 * TlsChannel#handshakeStep}); the connect request then arrives through TLS. The same deadline covers both.
 */
final class SoftListener implements VerbsListener {
    private static final Logger LOG = LoggerFactory.getLogger(SoftListener.class);
    private static final int MAX_HELLO = SoftFrame.HEADER_LENGTH + SoftFrame.HELLO_FIXED_LENGTH
            + VerbsProvider.MAX_PRIVATE_DATA;
    /** Connect requests being read at once; beyond this, new sockets are closed until some finish. */
    private static final int MAX_PENDING = 1024;

    private final ServerSocketChannel server;
    private final Selector selector;
    private final ConnectionRequestHandler handler;
    private final Thread thread;
    private final InetSocketAddress address;
    private final List<Pending> pending = new ArrayList<>();
    /** Null: plaintext. */
    private final SSLContext tls;
    private volatile boolean closed;

    /** A socket whose connect request is still arriving. */
    private static final class Pending {
        final SocketChannel channel;
        final SelectionKey key;
        final ByteBuffer hello = ByteBuffer.allocate(MAX_HELLO).order(ByteOrder.LITTLE_ENDIAN);
        final long deadline;
        /** Non-null with TLS; {@link #secured} once its handshake is complete. */
        final TlsChannel tls;
        boolean secured;

        Pending(SocketChannel channel, SelectionKey key, long deadline, TlsChannel tls) {
            this.channel = channel;
            this.key = key;
            this.deadline = deadline;
            this.tls = tls;
        }

        ByteChannel io() {
            return tls != null ? tls : channel;
        }
    }

    SoftListener(InetSocketAddress bindAddress, ConnectionRequestHandler handler, SSLContext tls) throws IOException {
        this.handler = handler;
        this.tls = tls;
        this.server = ServerSocketChannel.open();
        server.setOption(StandardSocketOptions.SO_REUSEADDR, true);
        server.bind(bindAddress, 128);
        server.configureBlocking(false);
        this.address = (InetSocketAddress) server.getLocalAddress();
        this.selector = Selector.open();
        server.register(selector, SelectionKey.OP_ACCEPT);
        this.thread = new Thread(this::loop, "weft-rdma-soft-listen-" + address.getPort());
        thread.setDaemon(true);
        thread.start();
    }

    private void loop() {
        while (!closed) {
            try {
                selector.select(key -> {
                    if (key.isAcceptable()) {
                        acceptAll();
                    } else if (key.isReadable()) {
                        readHello((Pending) key.attachment());
                    }
                }, selectTimeoutMillis(System.nanoTime()));
                expire(System.nanoTime());
            } catch (IOException | RuntimeException e) {
                if (!closed) {
                    LOG.warn("listener {} error: {}", address, e.toString());
                }
            }
        }
        for (Pending p : pending) {
            closeQuietly(p.channel);
        }
    }

    private void acceptAll() {
        SocketChannel channel;
        try {
            while ((channel = server.accept()) != null) {
                if (pending.size() >= MAX_PENDING) {
                    LOG.warn("dropping connection from {}: {} connect requests already pending", remoteOf(channel),
                            MAX_PENDING);
                    closeQuietly(channel);
                    continue;
                }
                channel.configureBlocking(false);
                channel.setOption(StandardSocketOptions.TCP_NODELAY, true);
                SelectionKey key = channel.register(selector, SelectionKey.OP_READ);
                TlsChannel secure = tls == null ? null : TlsChannel.nonBlockingServer(channel, tls, true);
                Pending p = new Pending(channel, key,
                        System.nanoTime() + SoftwareProvider.HANDSHAKE_TIMEOUT.toNanos(), secure);
                key.attach(p);
                pending.add(p);
            }
        } catch (IOException e) {
            if (!closed) {
                LOG.warn("listener {} accept failed: {}", address, e.toString());
            }
        }
    }

    private void readHello(Pending p) {
        if (p.tls != null && !p.secured) {
            try {
                if (!p.tls.handshakeStep()) {
                    return;
                }
            } catch (IOException e) {
                drop(p, "TLS handshake failed: " + e.getMessage());
                return;
            }
            p.secured = true; // the connect request may already be buffered: read on
        }
        try {
            int n = p.io().read(p.hello);
            if (n < 0) {
                drop(p, null);
                return;
            }
        } catch (IOException e) {
            drop(p, null);
            return;
        }
        ByteBuffer b = p.hello;
        if (b.position() < SoftFrame.HEADER_LENGTH) {
            return;
        }
        int length = b.getInt(SoftFrame.LENGTH_OFFSET);
        if (b.get(SoftFrame.TYPE_OFFSET) != SoftFrame.HELLO || length < SoftFrame.HELLO_FIXED_LENGTH
                || length > SoftFrame.HELLO_FIXED_LENGTH + VerbsProvider.MAX_PRIVATE_DATA) {
            drop(p, "not a software-verbs connect request");
            return;
        }
        if (b.position() < SoftFrame.HEADER_LENGTH + length) {
            return;
        }
        if (b.position() > SoftFrame.HEADER_LENGTH + length) {
            drop(p, "data after the connect request before it was accepted");
            return;
        }
        int at = SoftFrame.HEADER_LENGTH;
        int privateLength = b.getShort(at + 6) & 0xFFFF;
        if (b.getInt(at) != SoftFrame.HELLO_MAGIC || b.getShort(at + 4) != SoftFrame.VERSION
                || privateLength != length - SoftFrame.HELLO_FIXED_LENGTH) {
            drop(p, "bad connect request magic, version or length");
            return;
        }
        p.key.cancel();
        pending.remove(p);
        byte[] privateData = new byte[privateLength];
        b.get(at + SoftFrame.HELLO_FIXED_LENGTH, privateData);
        Request request = new Request(p.channel, p.tls, ByteBuffer.wrap(privateData).asReadOnlyBuffer());
        try {
            handler.onConnectRequest(request);
        } catch (RuntimeException e) {
            LOG.warn("connect request from {} failed: {}", remoteOf(p.channel), e.toString());
        }
        if (!request.decided) {
            request.reject(-1);
        }
    }

    /**
     * How long the selector may block: until the earliest pending connect request's deadline (+1 ms, the check is
     * strict), or without a limit (0) when nothing is pending — an idle listener then wakes only for a connection or
     * {@link #close} (which wakes the selector), not 10 times a second (issue 12).
     */
    private long selectTimeoutMillis(long now) {
        if (pending.isEmpty()) {
            return 0;
        }
        long earliest = Long.MAX_VALUE;
        for (Pending p : pending) {
            earliest = Math.min(earliest, p.deadline - now);
        }
        return Math.max(1, TimeUnit.NANOSECONDS.toMillis(earliest) + 1);
    }

    private void expire(long now) {
        for (int i = pending.size() - 1; i >= 0; i--) {
            Pending p = pending.get(i);
            if (now - p.deadline > 0) {
                drop(p, "connect request incomplete after " + SoftwareProvider.HANDSHAKE_TIMEOUT.toMillis() + " ms");
            }
        }
    }

    private void drop(Pending p, String reason) {
        if (reason != null) {
            LOG.warn("closing connection from {}: {}", remoteOf(p.channel), reason);
        }
        p.key.cancel();
        pending.remove(p);
        closeQuietly(p.channel);
    }

    private static String remoteOf(SocketChannel channel) {
        try {
            return String.valueOf(channel.getRemoteAddress());
        } catch (IOException e) {
            return "?";
        }
    }

    private static void closeQuietly(SocketChannel channel) {
        try {
            channel.close();
        } catch (IOException e) {
            // Nothing left to do for a socket we are dropping.
        }
    }

    /** Writes a small frame on a non-blocking socket (it fits the socket buffer of a fresh connection). */
    static void writeSmall(SocketChannel channel, TlsChannel tls, ByteBuffer frame) throws IOException {
        long deadline = System.nanoTime() + SoftwareProvider.HANDSHAKE_TIMEOUT.toNanos();
        ByteChannel io = tls != null ? tls : channel;
        while (frame.hasRemaining() || (tls != null && !tls.flush())) {
            if (frame.hasRemaining() && io.write(frame) > 0) {
                continue;
            }
            if (System.nanoTime() - deadline > 0) {
                throw new IOException("peer does not read its connect reply");
            }
            Thread.onSpinWait();
        }
    }

    @Override
    public InetSocketAddress localAddress() {
        return address;
    }

    @Override
    public void close() {
        closed = true;
        selector.wakeup();
        try {
            thread.join(1000);
            server.close();
            selector.close();
        } catch (IOException | InterruptedException e) {
            // Shutting down.
        }
    }

    private final class Request implements ConnectionRequest {
        private final SocketChannel channel;
        private final TlsChannel tls;
        private final ByteBuffer privateData;
        private boolean decided;

        Request(SocketChannel channel, TlsChannel tls, ByteBuffer privateData) {
            this.channel = channel;
            this.tls = tls;
            this.privateData = privateData;
        }

        @Override
        public ByteBuffer privateData() {
            return privateData.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        }

        @Override
        public InetSocketAddress remoteAddress() {
            try {
                return (InetSocketAddress) channel.getRemoteAddress();
            } catch (IOException e) {
                return null;
            }
        }

        @Override
        public InetSocketAddress localAddress() {
            return address;
        }

        @Override
        public VerbsConnection accept(ProtectionDomain pd, CompletionQueue cq, ConnectionOptions options,
                                      byte[] replyPrivateData, ConnectionSetup setup) throws IOException {
            if (decided) {
                throw new IllegalStateException("already decided");
            }
            if (replyPrivateData.length > VerbsProvider.MAX_PRIVATE_DATA) {
                throw new IllegalArgumentException("reply private data too long");
            }
            decided = true;
            SoftConnection connection = new SoftConnection(channel, tls, (SoftProtectionDomain) pd,
                    (SoftCompletionQueue) cq, options);
            connection.peerPrivateData(privateData);
            try {
                setup.prepare(connection);
                ByteBuffer reply = ByteBuffer.allocate(SoftFrame.HEADER_LENGTH + replyPrivateData.length)
                        .order(ByteOrder.LITTLE_ENDIAN);
                reply.put(SoftFrame.TYPE_OFFSET, SoftFrame.ACCEPT);
                reply.putInt(SoftFrame.LENGTH_OFFSET, replyPrivateData.length);
                reply.put(SoftFrame.HEADER_LENGTH, replyPrivateData);
                writeSmall(channel, tls, reply);
            } catch (IOException | RuntimeException e) {
                connection.fail(WcStatus.TRANSPORT_ERROR, "accept failed");
                throw e;
            }
            ((SoftCompletionQueue) cq).attach(connection);
            return connection;
        }

        @Override
        public void reject(int reason) {
            if (decided) {
                return;
            }
            decided = true;
            ByteBuffer reply = ByteBuffer.allocate(SoftFrame.HEADER_LENGTH).order(ByteOrder.LITTLE_ENDIAN);
            reply.put(SoftFrame.TYPE_OFFSET, SoftFrame.REJECT);
            reply.putInt(SoftFrame.IMMEDIATE_OFFSET, reason);
            try {
                writeSmall(channel, tls, reply);
            } catch (IOException e) {
                // The peer left first; nothing to tell it.
            }
            closeQuietly(channel);
        }
    }
}
