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
import org.agrona.concurrent.BusySpinIdleStrategy;

/**
 * TLS over a {@link SocketChannel}, with a JDK {@link SSLEngine}: a drop-in {@link ByteChannel} and
 * {@link GatheringByteChannel}, for code that reads on one thread and writes from others, serialised (the NBD
 * connection's reader and writer), or for one thread polling a non-blocking socket (the software RDMA provider).
 *
 * <p>Blocking sockets ({@link #serverHandshake}, {@link #clientHandshake}): reads block for a record, writes return
 * when everything is on the socket. Non-blocking sockets ({@link #nonBlockingServer}, {@link #nonBlockingClient},
 * driven by {@link #handshakeStep}): {@link #read} returns 0 when no whole record is there, {@link #write} encrypts
 * what fits into {@code netOut} and writes what the socket takes, leaving the rest for {@link #flush};
 * {@link #hasPendingOutput} says when to wait for OP_WRITE and {@link #hasBufferedInput} when data is here that no
 * selector will announce.
 *
 * <p>Threads: {@link #read} is for one thread at a time (the reader); {@link #write} calls are serialised here under
 * {@link #wrapLock}. The engine allows wrap and unwrap to run at once. A post-handshake message that asks for an
 * answer (a TLS 1.3 KeyUpdate) is answered by the reader under the same lock. TLS 1.3 only ({@link
 * PemTlsMaterial#PROTOCOLS}): there is no renegotiation, so a write never has to wait for the reader.
 *
 * <p>Buffers (allocated once at construction; nothing is allocated per read or write by this class — the engine
 * itself returns a new {@link SSLEngineResult} per record):
 * <ul>
 *   <li>{@code netIn}: ciphertext read from the socket and not yet decrypted (reader-owned, kept in write mode);</li>
 *   <li>{@code plainIn}: a decrypted record that did not fit the caller's buffer, served to the next reads first
 *   (reader-owned, kept in read mode; direct);</li>
 *   <li>{@code netOut}: encrypted records not yet written (under {@link #wrapLock}, empty between calls).</li>
 * </ul>
 * The two ciphertext buffers are <b>heap</b> buffers on purpose: the engine encrypts and decrypts a record in place
 * in them, and the JDK's AES-GCM runs its fast path (the combined AES/GHASH intrinsic) only on array-backed buffers;
 * on direct buffers it copies through small arrays and was about 3× slower here (1.1 against 3.8 GiB/s for 16 KiB
 * records). The socket's copy through its per-thread cached direct buffer costs far less than that.
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
    /** {@link #write(ByteBuffer)}'s source as an array, reused under {@link #wrapLock} (no allocation per write). */
    private final ByteBuffer[] single = new ByteBuffer[1];
    private static final ByteBuffer[] EMPTY = {ByteBuffer.allocate(0)};
    private volatile boolean closeNotifyReceived;
    /** The socket is in non-blocking mode: never spin or block on it (see the class comment). */
    private final boolean nonBlocking;

    private TlsChannel(SocketChannel socket, SSLEngine engine) {
        this.socket = socket;
        this.engine = engine;
        this.nonBlocking = !socket.isBlocking();
        int packet = engine.getSession().getPacketBufferSize();
        this.packetSize = packet;
        this.appBufferSize = engine.getSession().getApplicationBufferSize();
        this.netIn = ByteBuffer.allocate(RECORDS_PER_READ * packet); // heap: see the class comment
        this.plainIn = ByteBuffer.allocateDirect(appBufferSize);
        this.plainIn.flip();
        this.netOut = ByteBuffer.allocate(RECORDS_PER_WRITE * packet); // heap: see the class comment
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

    /**
     * The server side of a handshake on a <b>non-blocking</b> socket: call {@link #handshakeStep} whenever the socket
     * is readable until it returns true.
     */
    public static TlsChannel nonBlockingServer(SocketChannel socket, SSLContext context, boolean needClientAuth)
            throws IOException {
        if (socket.isBlocking()) {
            throw new IllegalArgumentException("socket must be non-blocking");
        }
        SSLEngine engine = context.createSSLEngine();
        engine.setUseClientMode(false);
        engine.setEnabledProtocols(PemTlsMaterial.PROTOCOLS);
        engine.setNeedClientAuth(needClientAuth);
        TlsChannel ch = new TlsChannel(socket, engine);
        ch.engine.beginHandshake();
        return ch;
    }

    /** The client side of a handshake on a <b>non-blocking</b> socket (see {@link #nonBlockingServer}). */
    public static TlsChannel nonBlockingClient(SocketChannel socket, SSLContext context, String peerHost,
                                               int peerPort) throws IOException {
        if (socket.isBlocking()) {
            throw new IllegalArgumentException("socket must be non-blocking");
        }
        SSLEngine engine = context.createSSLEngine(peerHost, peerPort);
        engine.setUseClientMode(true);
        engine.setEnabledProtocols(PemTlsMaterial.PROTOCOLS);
        TlsChannel ch = new TlsChannel(socket, engine);
        ch.engine.beginHandshake();
        return ch;
    }

    /**
     * Advances the handshake of a non-blocking channel as far as the bytes at hand allow (handshake messages are
     * small: they are written out before this returns, spinning on a full socket buffer for at most
     * {@link #SMALL_WRITE_NANOS}).
     *
     * @return true once the handshake is complete; false when it waits for the peer
     * @throws IOException when the handshake fails (bad certificate, peer closed)
     */
    public boolean handshakeStep() throws IOException {
        while (true) {
            switch (engine.getHandshakeStatus()) {
                case NEED_WRAP:
                    synchronized (wrapLock) {
                        wrapAndFlush(EMPTY, 0, 1);
                        flushFully();
                    }
                    break;
                case NEED_UNWRAP:
                case NEED_UNWRAP_AGAIN: {
                    SSLEngineResult.Status status = unwrapHandshake();
                    if (status == SSLEngineResult.Status.BUFFER_UNDERFLOW) {
                        int n = readSocket();
                        if (n < 0) {
                            throw new EOFException("peer closed during the TLS handshake");
                        }
                        if (n == 0) {
                            return false;
                        }
                    }
                    break;
                }
                case NEED_TASK:
                    runTasks();
                    break;
                default:
                    synchronized (wrapLock) {
                        flushFully();
                    }
                    return true;
            }
        }
    }

    /** Longest a non-blocking channel spins to write a handshake or control message into a full socket buffer. */
    public static final long SMALL_WRITE_NANOS = 5_000_000_000L;

    /** Writes out all pending ciphertext, spinning on a non-blocking socket (small messages only). */
    private void flushFully() throws IOException {
        long deadline = System.nanoTime() + SMALL_WRITE_NANOS;
        while (!flushNetOut()) {
            if (System.nanoTime() - deadline > 0) {
                throw new IOException("peer does not read (TLS handshake or control message)");
            }
            BusySpinIdleStrategy.INSTANCE.idle(); // stateless, so shared
        }
    }

    /** Unwraps one handshake record into {@code plainIn} (application data that follows it is kept there). */
    private SSLEngineResult.Status unwrapHandshake() throws IOException {
        plainIn.compact();
        netIn.flip();
        SSLEngineResult r;
        try {
            r = engine.unwrap(netIn, plainIn);
        } finally {
            netIn.compact();
            plainIn.flip();
        }
        if (r.getStatus() == SSLEngineResult.Status.CLOSED) {
            throw new SSLException("peer closed the TLS session during the handshake");
        } else if (r.getStatus() == SSLEngineResult.Status.BUFFER_OVERFLOW) {
            throw new SSLException("TLS record larger than the negotiated buffer");
        }
        return r.getStatus();
    }

    /** Whether encrypted bytes wait for the socket (non-blocking: wait for OP_WRITE and call {@link #flush}). */
    public boolean hasPendingOutput() {
        synchronized (wrapLock) {
            return netOut.position() > 0;
        }
    }

    /** Writes pending ciphertext as far as the socket takes it. @return true when nothing is pending any more */
    public boolean flush() throws IOException {
        synchronized (wrapLock) {
            return flushNetOut();
        }
    }

    /**
     * Whether a read can return data without the socket becoming readable: decrypted bytes are buffered, or a whole
     * record already sits in the ciphertext buffer (reader-owned, like {@link #read}).
     */
    public boolean hasBufferedInput() {
        if (plainIn.hasRemaining()) {
            return true;
        }
        int buffered = netIn.position();
        if (buffered < 5) {
            return false;
        }
        // TLS record header: type (1), legacy version (2), length (2).
        int length = ((netIn.get(3) & 0xff) << 8) | (netIn.get(4) & 0xff);
        return buffered >= 5 + length;
    }

    /**
     * Runs one handshake between two engines of {@code context} in memory (a server requiring a client certificate,
     * and a client), so the first real connection does not spend its connect budget on loading and initialising
     * the JDK's TLS stack (a second or more on a busy machine). Best effort: a context that cannot complete a
     * handshake with itself fails later, at the real connection, with the real error.
     */
    public static void warmUp(SSLContext context) {
        try {
            SSLEngine server = context.createSSLEngine();
            server.setUseClientMode(false);
            server.setEnabledProtocols(PemTlsMaterial.PROTOCOLS);
            server.setNeedClientAuth(true);
            SSLEngine client = context.createSSLEngine("localhost", 0);
            client.setUseClientMode(true);
            client.setEnabledProtocols(PemTlsMaterial.PROTOCOLS);
            int packet = server.getSession().getPacketBufferSize();
            ByteBuffer toServer = ByteBuffer.allocate(4 * packet);
            ByteBuffer toClient = ByteBuffer.allocate(4 * packet);
            ByteBuffer app = ByteBuffer.allocate(4 * server.getSession().getApplicationBufferSize());
            client.beginHandshake();
            server.beginHandshake();
            for (int i = 0; i < 64 && (handshaking(client) || handshaking(server)); i++) {
                warmUpStep(client, toServer, toClient, app);
                warmUpStep(server, toClient, toServer, app);
            }
        } catch (java.io.IOException | RuntimeException e) {
            // best effort (see above)
        }
    }

    private static boolean handshaking(SSLEngine e) {
        SSLEngineResult.HandshakeStatus s = e.getHandshakeStatus();
        return s != SSLEngineResult.HandshakeStatus.NOT_HANDSHAKING && s != SSLEngineResult.HandshakeStatus.FINISHED;
    }

    private static void warmUpStep(SSLEngine e, ByteBuffer out, ByteBuffer in, ByteBuffer app) throws SSLException {
        for (int i = 0; i < 8; i++) {
            switch (e.getHandshakeStatus()) {
                case NEED_WRAP:
                    e.wrap(EMPTY, out);
                    break;
                case NEED_UNWRAP:
                case NEED_UNWRAP_AGAIN: {
                    in.flip();
                    SSLEngineResult r = e.unwrap(in, app);
                    in.compact();
                    app.clear();
                    if (r.getStatus() == SSLEngineResult.Status.BUFFER_UNDERFLOW) {
                        return; // the other side's turn
                    }
                    break;
                }
                case NEED_TASK: {
                    Runnable task;
                    while ((task = e.getDelegatedTask()) != null) {
                        task.run();
                    }
                    break;
                }
                default:
                    return;
            }
        }
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
                    if (unwrapHandshake() == SSLEngineResult.Status.BUFFER_UNDERFLOW && readSocket() < 0) {
                        throw new EOFException("peer closed during the TLS handshake");
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
                    int n = readSocket();
                    if (n < 0) {
                        return -1;
                    }
                    if (n == 0) {
                        return 0; // non-blocking: no whole record yet
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
                    wrapAndFlush(EMPTY, 0, 1); // non-blocking: what the socket does not take waits for flush()
                }
            }
        }
    }

    @Override
    public int write(ByteBuffer src) throws IOException {
        synchronized (wrapLock) {
            int before = src.remaining();
            single[0] = src;
            try {
                wrapAndFlush(single, 0, 1);
            } finally {
                single[0] = null;
            }
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

    /**
     * Caller holds {@link #wrapLock}. Wraps until the sources are empty (and the engine wants nothing more). On a
     * non-blocking socket it stops early when the socket takes no more and {@code netOut} has no room for another
     * record: the caller sees fewer bytes consumed, and the ciphertext already made waits for {@link #flush}.
     */
    private long wrapAndFlush(ByteBuffer[] srcs, int offset, int length) throws IOException {
        long consumed = 0;
        while (true) {
            if (nonBlocking && netOut.remaining() < packetSize && !flushNetOut()
                    && netOut.remaining() < packetSize) {
                return consumed;
            }
            SSLEngineResult r = engine.wrap(srcs, offset, length, netOut);
            consumed += r.bytesConsumed();
            switch (r.getStatus()) {
                case OK:
                    break;
                case BUFFER_OVERFLOW:
                    if (netOut.position() == 0) {
                        throw new SSLException("TLS record larger than the send buffer");
                    }
                    if (!flushBlocking() && nonBlocking) {
                        return consumed;
                    }
                    continue;
                case CLOSED:
                    flushBlocking();
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
                flushBlocking();
            }
            if (!more) {
                return consumed;
            }
        }
    }

    /** Blocking socket: writes all of {@code netOut}. Non-blocking: as much as the socket takes. */
    private boolean flushBlocking() throws IOException {
        if (nonBlocking) {
            return flushNetOut();
        }
        while (!flushNetOut()) {
            // a blocking write returns only when it wrote something
        }
        return true;
    }

    private static boolean remaining(ByteBuffer[] srcs, int offset, int length) {
        for (int i = offset; i < offset + length; i++) {
            if (srcs[i].hasRemaining()) {
                return true;
            }
        }
        return false;
    }

    /** Writes {@code netOut} once as far as the socket takes it. @return true when it is empty */
    private boolean flushNetOut() throws IOException {
        netOut.flip();
        try {
            while (netOut.hasRemaining()) {
                if (socket.write(netOut) == 0 && nonBlocking) {
                    break;
                }
            }
            return !netOut.hasRemaining();
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
