package io.weft.rdma.verbs.soft;

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
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * Verbs over plain TCP: the same one-sided rules as an RNIC (a remote write lands only inside a region registered in
 * the receiving connection's protection domain, with the right key, within bounds; anything else fails the
 * connection), so the session protocol runs unchanged on machines without RDMA hardware.
 */
public final class SoftwareProvider implements VerbsProvider {
    /** How long an accepted socket may take to present its connect request. */
    static final Duration HANDSHAKE_TIMEOUT = Duration.ofSeconds(5);

    private final List<SoftListener> listeners = new ArrayList<>();

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
        SoftListener listener = new SoftListener(address, handler);
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
            connection = new SoftConnection(channel, (SoftProtectionDomain) pd, (SoftCompletionQueue) cq, options);
            setup.prepare(connection);
            ByteBuffer hello = ByteBuffer.allocate(SoftFrame.HEADER_LENGTH + SoftFrame.HELLO_FIXED_LENGTH
                    + privateData.length).order(ByteOrder.LITTLE_ENDIAN);
            hello.put(SoftFrame.TYPE_OFFSET, SoftFrame.HELLO);
            hello.putInt(SoftFrame.LENGTH_OFFSET, SoftFrame.HELLO_FIXED_LENGTH + privateData.length);
            hello.putInt(SoftFrame.HEADER_LENGTH, SoftFrame.HELLO_MAGIC);
            hello.putShort(SoftFrame.HEADER_LENGTH + 4, SoftFrame.VERSION);
            hello.putShort(SoftFrame.HEADER_LENGTH + 6, (short) privateData.length);
            hello.put(SoftFrame.HEADER_LENGTH + SoftFrame.HELLO_FIXED_LENGTH, privateData);
            writeFully(channel, hello);
            channel.socket().setSoTimeout(timeoutMs);
            InputStream in = channel.socket().getInputStream();
            ByteBuffer header = readFully(in, SoftFrame.HEADER_LENGTH);
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
            connection.peerPrivateData(readFully(in, length));
            channel.configureBlocking(false);
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
