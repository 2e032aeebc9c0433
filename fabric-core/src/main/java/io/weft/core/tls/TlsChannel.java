package io.weft.core.tls;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.GatheringByteChannel;
import java.nio.channels.SocketChannel;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLEngineResult;
import javax.net.ssl.SSLException;

/**
 * TLS over a <b>blocking</b> {@link SocketChannel}, with a JDK {@link SSLEngine}: a drop-in {@link ByteChannel} and
 * {@link GatheringByteChannel} for code that reads on one thread and writes from others, serialised (the NBD
 * connection's reader and writer).
 *
 * <p>Threads: {@link #read} is for one thread at a time (the reader); {@link #write} calls are serialised here under
 * {@link #wrapLock}. The engine allows wrap and unwrap to run at once. A post-handshake message that asks for an
 * answer (a TLS 1.3 KeyUpdate) is answered by the reader under the same lock. TLS 1.3 only ({@link
 * PemTlsMaterial#PROTOCOLS}): there is no renegotiation, so a write never has to wait for the reader.
 *
 * <p>Buffers (all direct, allocated once at construction; nothing is allocated per read or write by this class —
 * the engine itself returns a new {@link SSLEngineResult} per record):
 * <ul>
 *   <li>{@code netIn}: ciphertext read from the socket and not yet decrypted (reader-owned, kept in write mode);</li>
 *   <li>{@code plainIn}: a decrypted record that did not fit the caller's buffer, served to the next reads first
 *   (reader-owned, kept in read mode);</li>
 *   <li>{@code netOut}: encrypted records not yet written (under {@link #wrapLock}, empty between calls).</li>
 * </ul>
 * A caller's buffer with room for a whole record is decrypted into directly, so large payloads are not copied twice.
 */
public final class TlsChannel implements ByteChannel, GatheringByteChannel {
    /** Records encrypted into {@code netOut} before one socket write. */
    private static final int RECORDS_PER_WRITE = 16;
    /** Records' worth of ciphertext one socket read may bring in. */
    private static final int RECORDS_PER_READ = 4;

    private final SocketChannel socket;
    private final SSLEngine engine;
    private final int appBufferSize;
    private final int packetSize;
    private final ByteBuffer netIn;
    private final ByteBuffer plainIn;
    private final ByteBuffer netOut;
    private final Object wrapLock = new Object();
    private static final ByteBuffer[] EMPTY = {ByteBuffer.allocate(0)};
    private volatile boolean closeNotifyReceived;

    private TlsChannel(SocketChannel socket, SSLEngine engine) {
        this.socket = socket;
        this.engine = engine;
        int packet = engine.getSession().getPacketBufferSize();
        this.packetSize = packet;
        this.appBufferSize = engine.getSession().getApplicationBufferSize();
        this.netIn = ByteBuffer.allocateDirect(RECORDS_PER_READ * packet);
        this.plainIn = ByteBuffer.allocateDirect(appBufferSize);
        this.plainIn.flip();
        this.netOut = ByteBuffer.allocateDirect(RECORDS_PER_WRITE * packet);
    }

    /**
     * Runs the server side of a handshake on {@code socket} (blocking) and returns the channel. A failed handshake
     * throws; the caller closes the socket.
     *
     * @param needClientAuth whether the client must present a certificate the context's trust anchors accept
     */
    public static TlsChannel serverHandshake(SocketChannel socket, SSLContext context, boolean needClientAuth)
            throws IOException {
        SSLEngine engine = context.createSSLEngine();
        engine.setUseClientMode(false);
        engine.setEnabledProtocols(PemTlsMaterial.PROTOCOLS);
        engine.setNeedClientAuth(needClientAuth);
        TlsChannel ch = new TlsChannel(socket, engine);
        ch.handshake();
        return ch;
    }

    /** Runs the client side of a handshake on {@code socket} (blocking); {@code peerHost} for SNI and resumption. */
    public static TlsChannel clientHandshake(SocketChannel socket, SSLContext context, String peerHost, int peerPort)
            throws IOException {
        SSLEngine engine = context.createSSLEngine(peerHost, peerPort);
        engine.setUseClientMode(true);
        engine.setEnabledProtocols(PemTlsMaterial.PROTOCOLS);
        TlsChannel ch = new TlsChannel(socket, engine);
        ch.handshake();
        return ch;
    }

    /** The negotiated session (peer certificates, cipher suite). */
    public javax.net.ssl.SSLSession session() {
        return engine.getSession();
    }

    private void handshake() throws IOException {
        engine.beginHandshake();
        while (true) {
            switch (engine.getHandshakeStatus()) {
                case NEED_WRAP:
                    synchronized (wrapLock) {
                        wrapAndFlush(EMPTY, 0, 1);
                    }
                    break;
                case NEED_UNWRAP:
                case NEED_UNWRAP_AGAIN:
                    plainIn.compact();
                    netIn.flip();
                    SSLEngineResult r;
                    try {
                        r = engine.unwrap(netIn, plainIn);
                    } finally {
                        netIn.compact();
                        plainIn.flip();
                    }
                    if (r.getStatus() == SSLEngineResult.Status.BUFFER_UNDERFLOW) {
                        if (readSocket() < 0) {
                            throw new EOFException("peer closed during the TLS handshake");
                        }
                    } else if (r.getStatus() == SSLEngineResult.Status.CLOSED) {
                        throw new SSLException("peer closed the TLS session during the handshake");
                    } else if (r.getStatus() == SSLEngineResult.Status.BUFFER_OVERFLOW) {
                        throw new SSLException("TLS record larger than the negotiated buffer");
                    }
                    break;
                case NEED_TASK:
                    runTasks();
                    break;
                default: // FINISHED, NOT_HANDSHAKING
                    return;
            }
        }
    }

    private void runTasks() {
        Runnable task;
        while ((task = engine.getDelegatedTask()) != null) {
            task.run();
        }
    }

    /** Reads ciphertext into {@code netIn} (blocking). @return bytes read, -1 at end of stream */
    private int readSocket() throws IOException {
        if (!netIn.hasRemaining()) {
            throw new SSLException("TLS record larger than the receive buffer");
        }
        return socket.read(netIn);
    }

    /**
     * Decrypts into {@code dst}: buffered plaintext first, else at least one record (blocking for it). Returns -1 at
     * the end of the stream or once the peer sent close_notify.
     */
    @Override
    public int read(ByteBuffer dst) throws IOException {
        if (!dst.hasRemaining()) {
            return 0;
        }
        if (plainIn.hasRemaining()) {
            return copyPlain(dst);
        }
        if (closeNotifyReceived) {
            return -1;
        }
        int produced = 0;
        while (true) {
            boolean direct = dst.remaining() >= appBufferSize;
            SSLEngineResult r;
            netIn.flip();
            try {
                if (direct) {
                    r = engine.unwrap(netIn, dst);
                } else {
                    plainIn.clear();
                    try {
                        r = engine.unwrap(netIn, plainIn);
                    } finally {
                        plainIn.flip();
                    }
                }
            } finally {
                netIn.compact();
            }
            answerHandshake(r.getHandshakeStatus());
            switch (r.getStatus()) {
                case OK:
                    if (direct) {
                        produced += r.bytesProduced();
                        if (netIn.position() > 0 && dst.remaining() >= appBufferSize) {
                            continue; // more whole records may be buffered: decrypt them without a system call
                        }
                        if (produced > 0) {
                            return produced;
                        }
                    } else if (plainIn.hasRemaining()) {
                        return produced + copyPlain(dst);
                    }
                    break; // a record without application data (a session ticket, a key update)
                case BUFFER_UNDERFLOW:
                    if (produced > 0) {
                        return produced;
                    }
                    if (readSocket() < 0) {
                        return -1;
                    }
                    break;
                case CLOSED:
                    closeNotifyReceived = true;
                    return produced > 0 ? produced : -1;
                default: // BUFFER_OVERFLOW: plainIn holds a whole record by construction
                    throw new SSLException("TLS record larger than the negotiated buffer");
            }
        }
    }

    private int copyPlain(ByteBuffer dst) {
        int n = Math.min(dst.remaining(), plainIn.remaining());
        int limit = plainIn.limit();
        plainIn.limit(plainIn.position() + n);
        dst.put(plainIn);
        plainIn.limit(limit);
        return n;
    }

    /** After an unwrap: run the engine's tasks and send what it asks to send (a KeyUpdate answer). */
    private void answerHandshake(SSLEngineResult.HandshakeStatus status) throws IOException {
        if (status == SSLEngineResult.HandshakeStatus.NEED_TASK) {
            runTasks();
            status = engine.getHandshakeStatus();
        }
        if (status == SSLEngineResult.HandshakeStatus.NEED_WRAP) {
            synchronized (wrapLock) {
                if (engine.getHandshakeStatus() == SSLEngineResult.HandshakeStatus.NEED_WRAP) {
                    wrapAndFlush(EMPTY, 0, 1);
                }
            }
        }
    }

    @Override
    public int write(ByteBuffer src) throws IOException {
        synchronized (wrapLock) {
            int before = src.remaining();
            wrapAndFlush(new ByteBuffer[] {src}, 0, 1);
            return before - src.remaining();
        }
    }

    @Override
    public long write(ByteBuffer[] srcs) throws IOException {
        return write(srcs, 0, srcs.length);
    }

    /** Encrypts and writes everything in {@code srcs[offset, offset + length)} (blocking). */
    @Override
    public long write(ByteBuffer[] srcs, int offset, int length) throws IOException {
        synchronized (wrapLock) {
            return wrapAndFlush(srcs, offset, length);
        }
    }

    /** Caller holds {@link #wrapLock}. Wraps until the sources are empty (and the engine wants nothing more). */
    private long wrapAndFlush(ByteBuffer[] srcs, int offset, int length) throws IOException {
        long consumed = 0;
        while (true) {
            SSLEngineResult r = engine.wrap(srcs, offset, length, netOut);
            consumed += r.bytesConsumed();
            switch (r.getStatus()) {
                case OK:
                    break;
                case BUFFER_OVERFLOW:
                    if (netOut.position() == 0) {
                        throw new SSLException("TLS record larger than the send buffer");
                    }
                    flushNetOut();
                    continue;
                case CLOSED:
                    flushNetOut();
                    if (remaining(srcs, offset, length)) {
                        throw new ClosedChannelException();
                    }
                    return consumed;
                default:
                    throw new SSLException("unexpected wrap status " + r.getStatus());
            }
            if (r.getHandshakeStatus() == SSLEngineResult.HandshakeStatus.NEED_TASK) {
                runTasks();
            }
            boolean more = remaining(srcs, offset, length)
                    || engine.getHandshakeStatus() == SSLEngineResult.HandshakeStatus.NEED_WRAP;
            if (!more || netOut.remaining() < packetSize) {
                flushNetOut();
            }
            if (!more) {
                return consumed;
            }
        }
    }

    private static boolean remaining(ByteBuffer[] srcs, int offset, int length) {
        for (int i = offset; i < offset + length; i++) {
            if (srcs[i].hasRemaining()) {
                return true;
            }
        }
        return false;
    }

    private void flushNetOut() throws IOException {
        netOut.flip();
        try {
            while (netOut.hasRemaining()) {
                socket.write(netOut);
            }
        } finally {
            netOut.compact();
        }
    }

    /**
     * Sends close_notify (best effort; blocking, so only on a graceful end when the peer still reads). Further
     * writes fail.
     */
    public void closeOutbound() {
        synchronized (wrapLock) {
            engine.closeOutbound();
            try {
                wrapAndFlush(EMPTY, 0, 1);
            } catch (IOException e) {
                // The peer left first; nothing to tell it.
            }
        }
    }

    @Override
    public boolean isOpen() {
        return socket.isOpen();
    }

    /** Closes the socket (without close_notify: see {@link #closeOutbound}). */
    @Override
    public void close() throws IOException {
        socket.close();
    }
}
