package io.weft.rdma.verbs.soft;

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
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Accepts sockets and runs each connect handshake on a small bounded pool with a read timeout, so a peer that stops
 * in the middle of its request holds one handshake thread for at most {@link SoftwareProvider#HANDSHAKE_TIMEOUT}
 * and never the accept loop.
 */
final class SoftListener implements VerbsListener {
    private static final Logger LOG = LoggerFactory.getLogger(SoftListener.class);
    private static final int HANDSHAKE_THREADS = 2;
    private static final int HANDSHAKE_BACKLOG = 64;

    private final ServerSocketChannel server;
    private final ConnectionRequestHandler handler;
    private final ThreadPoolExecutor handshakes;
    private final Thread acceptor;
    private final InetSocketAddress address;
    private volatile boolean closed;

    SoftListener(InetSocketAddress bindAddress, ConnectionRequestHandler handler) throws IOException {
        this.handler = handler;
        this.server = ServerSocketChannel.open();
        server.setOption(StandardSocketOptions.SO_REUSEADDR, true);
        server.bind(bindAddress, 128);
        this.address = (InetSocketAddress) server.getLocalAddress();
        this.handshakes = new ThreadPoolExecutor(HANDSHAKE_THREADS, HANDSHAKE_THREADS, 30, TimeUnit.SECONDS,
                new ArrayBlockingQueue<>(HANDSHAKE_BACKLOG), r -> {
                    Thread t = new Thread(r, "weft-rdma-soft-handshake-" + address.getPort());
                    t.setDaemon(true);
                    return t;
                }, (r, executor) -> {
                    throw new java.util.concurrent.RejectedExecutionException("handshake backlog full");
                });
        handshakes.allowCoreThreadTimeOut(true);
        this.acceptor = new Thread(this::acceptLoop, "weft-rdma-soft-listen-" + address.getPort());
        acceptor.setDaemon(true);
        acceptor.start();
    }

    private void acceptLoop() {
        while (!closed) {
            SocketChannel channel;
            try {
                channel = server.accept();
            } catch (IOException e) {
                if (!closed) {
                    LOG.warn("listener {} stopped accepting: {}", address, e.toString());
                }
                return;
            }
            try {
                handshakes.execute(() -> handshake(channel));
            } catch (java.util.concurrent.RejectedExecutionException e) {
                LOG.warn("dropping connection from {}: {}", remoteOf(channel), e.getMessage());
                closeQuietly(channel);
            }
        }
    }

    private void handshake(SocketChannel channel) {
        try {
            channel.setOption(StandardSocketOptions.TCP_NODELAY, true);
            channel.socket().setSoTimeout((int) SoftwareProvider.HANDSHAKE_TIMEOUT.toMillis());
            InputStream in = channel.socket().getInputStream();
            ByteBuffer header = SoftwareProvider.readFully(in, SoftFrame.HEADER_LENGTH);
            int length = header.getInt(SoftFrame.LENGTH_OFFSET);
            if (header.get(SoftFrame.TYPE_OFFSET) != SoftFrame.HELLO || length < SoftFrame.HELLO_FIXED_LENGTH
                    || length > SoftFrame.HELLO_FIXED_LENGTH + VerbsProvider.MAX_PRIVATE_DATA) {
                LOG.warn("closing connection from {}: not a software-verbs connect request", remoteOf(channel));
                closeQuietly(channel);
                return;
            }
            ByteBuffer hello = SoftwareProvider.readFully(in, length);
            int privateLength = hello.getShort(6) & 0xFFFF;
            if (hello.getInt(0) != SoftFrame.HELLO_MAGIC || hello.getShort(4) != SoftFrame.VERSION
                    || privateLength != length - SoftFrame.HELLO_FIXED_LENGTH) {
                LOG.warn("closing connection from {}: bad connect request magic, version or length",
                        remoteOf(channel));
                closeQuietly(channel);
                return;
            }
            ByteBuffer privateData = hello.position(SoftFrame.HELLO_FIXED_LENGTH).slice().order(ByteOrder.LITTLE_ENDIAN);
            Request request = new Request(channel, privateData.asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN));
            try {
                handler.onConnectRequest(request);
            } catch (RuntimeException e) {
                LOG.warn("connect request from {} failed: {}", remoteOf(channel), e.toString());
                request.reject(-1);
            }
            if (!request.decided) {
                request.reject(-1);
            }
        } catch (IOException e) {
            LOG.debug("handshake with {} failed: {}", remoteOf(channel), e.toString());
            closeQuietly(channel);
        }
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

    @Override
    public InetSocketAddress localAddress() {
        return address;
    }

    @Override
    public void close() {
        closed = true;
        try {
            server.close();
        } catch (IOException e) {
            // Already closed.
        }
        handshakes.shutdownNow();
    }

    private final class Request implements ConnectionRequest {
        private final SocketChannel channel;
        private final ByteBuffer privateData;
        private boolean decided;

        Request(SocketChannel channel, ByteBuffer privateData) {
            this.channel = channel;
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
            SoftConnection connection = new SoftConnection(channel, (SoftProtectionDomain) pd,
                    (SoftCompletionQueue) cq, options);
            connection.peerPrivateData(privateData);
            try {
                setup.prepare(connection);
                ByteBuffer reply = ByteBuffer.allocate(SoftFrame.HEADER_LENGTH + replyPrivateData.length)
                        .order(ByteOrder.LITTLE_ENDIAN);
                reply.put(SoftFrame.TYPE_OFFSET, SoftFrame.ACCEPT);
                reply.putInt(SoftFrame.LENGTH_OFFSET, replyPrivateData.length);
                reply.put(SoftFrame.HEADER_LENGTH, replyPrivateData);
                SoftwareProvider.writeFully(channel, reply);
                channel.configureBlocking(false);
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
                SoftwareProvider.writeFully(channel, reply);
            } catch (IOException e) {
                // The peer left first; nothing to tell it.
            }
            closeQuietly(channel);
        }
    }
}
