package io.weft.core.nbd;

import io.weft.core.io.DeviceInfo;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardProtocolFamily;
import java.net.StandardSocketOptions;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * NBD server (fixed newstyle) exporting {@link io.weft.core.io.BlockDevice}s over TCP and Unix sockets.
 *
 * <p>Protocol coverage: options EXPORT_NAME, INFO, GO, LIST, ABORT, STRUCTURED_REPLY, LIST_META_CONTEXT,
 * SET_META_CONTEXT ({@code base:allocation}) and STARTTLS (X.509, see {@link NbdTls}); unknown options get ERR_UNSUP
 * and the handshake goes on. Commands READ, WRITE, DISC, FLUSH, TRIM, WRITE_ZEROES (NO_HOLE, FAST_ZERO), CACHE,
 * BLOCK_STATUS and the FUA flag; replies simple or structured, completed out of order. See {@code docs/nbd.md} for the
 * threading model and limits.
 *
 * <p>Each connection has a reader thread and, only when the device completes on its own threads, a writer thread
 * (see {@link NbdConnection}); one acceptor thread per listener; one watchdog thread that closes connections which
 * stop making progress (handshake, idle, read-stall and write-stall timeouts, see {@link NbdServerOptions}). Request
 * buffers of all connections together stay within {@link NbdServerOptions#bufferBudget()}. The server never closes
 * the exported devices.
 */
public final class NbdServer implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(NbdServer.class);

    private static final long ACCEPT_RETRY_NANOS = TimeUnit.MILLISECONDS.toNanos(50);

    private final NbdServerOptions options;
    private final NbdTls tls;
    private final Map<String, NbdExport> exports = new LinkedHashMap<>();
    private final List<Listener> listeners = new CopyOnWriteArrayList<>();
    private final Set<NbdConnection> connections = ConcurrentHashMap.newKeySet();
    private final AtomicInteger connectionCount = new AtomicInteger();
    private final AtomicLong connectionIds = new AtomicLong();
    private volatile boolean closing;
    /** Scans the connections' progress marks and closes the stalled ones; started with the first listener. */
    private Thread watchdog;
    private volatile boolean watchdogStop;

    // The buffer budget: payload buffer bytes of all connections, and the readers waiting for some.
    private final AtomicLong bufferedBytes = new AtomicLong();
    private final AtomicLong peakBufferedBytes = new AtomicLong();
    private final AtomicInteger bufferWaiters = new AtomicInteger();
    private final Set<Thread> bufferWaiterThreads = ConcurrentHashMap.newKeySet();

    private record Listener(ServerSocketChannel channel, Thread acceptor, Path unixPath, String description) {
    }

    /** A server with {@link NbdServerOptions#defaults()}. */
    public NbdServer() {
        this(NbdServerOptions.defaults());
    }

    /** A server with explicit limits (see {@link NbdServerOptions}), without TLS. */
    public NbdServer(NbdServerOptions options) {
        this(options, NbdTls.off());
    }

    /** A server with explicit limits and a TLS policy ({@link NbdTls}: off, on or require). */
    public NbdServer(NbdServerOptions options, NbdTls tls) {
        this.options = Objects.requireNonNull(options, "options");
        this.tls = Objects.requireNonNull(tls, "tls");
    }

    public NbdServerOptions options() {
        return options;
    }

    /** The TLS policy (weft.nbd.tls). */
    public NbdTls tls() {
        return tls;
    }

    /** Adds or replaces an export; new connections see it at once. */
    public void addExport(NbdExport export) {
        byte[] name = export.name().getBytes(StandardCharsets.UTF_8);
        if (name.length > NbdProtocol.MAX_STRING) {
            throw new IllegalArgumentException("export name longer than 4096 bytes");
        }
        synchronized (exports) {
            exports.put(export.name(), export);
        }
    }

    /** Removes an export; its open connections are closed after their in-flight requests complete. */
    public void removeExport(String name) {
        NbdExport removed;
        synchronized (exports) {
            removed = exports.remove(name);
        }
        if (removed == null) {
            return;
        }
        for (NbdConnection c : connections) {
            if (c.export() == removed) {
                c.beginDrain();
            }
        }
    }

    /** Names of the current exports, in the order they were added. */
    public List<String> exportNames() {
        synchronized (exports) {
            return new ArrayList<>(exports.keySet());
        }
    }

    /** Connections currently open (in handshake or transmission). */
    public int connectionCount() {
        return connectionCount.get();
    }

    /** Request payload buffer bytes held by all connections now (within {@link NbdServerOptions#bufferBudget()}). */
    public long bufferedBytes() {
        return bufferedBytes.get();
    }

    /** The most {@link #bufferedBytes()} has ever been. */
    public long peakBufferedBytes() {
        return peakBufferedBytes.get();
    }

    /** Connections whose next request waits for buffer budget now. */
    public int bufferWaiters() {
        return bufferWaiters.get();
    }

    /** Listens on TCP; port 0 picks a free port. Returns the bound address. */
    public synchronized InetSocketAddress bindTcp(String host, int port) throws IOException {
        ensureOpen();
        ServerSocketChannel ch = ServerSocketChannel.open();
        try {
            ch.setOption(StandardSocketOptions.SO_REUSEADDR, true);
            ch.bind(new InetSocketAddress(host, port), 128);
        } catch (IOException e) {
            ch.close();
            throw e;
        }
        InetSocketAddress bound = (InetSocketAddress) ch.getLocalAddress();
        startListener(ch, null, "tcp " + bound);
        return bound;
    }

    /** Listens on a Unix socket at {@code socketPath} (a stale socket file is replaced). */
    public synchronized void bindUnix(Path socketPath) throws IOException {
        ensureOpen();
        Path path = socketPath.toAbsolutePath();
        if (Files.exists(path, LinkOption.NOFOLLOW_LINKS)) {
            BasicFileAttributes attrs = Files.readAttributes(path, BasicFileAttributes.class,
                    LinkOption.NOFOLLOW_LINKS);
            if (!attrs.isOther()) {
                throw new IOException("refusing to replace " + path + ": it exists and is not a socket");
            }
            Files.delete(path);
        }
        ServerSocketChannel ch = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        try {
            ch.bind(UnixDomainSocketAddress.of(path), 128);
        } catch (IOException e) {
            ch.close();
            throw e;
        }
        startListener(ch, path, "unix " + path);
    }

    private void ensureOpen() throws IOException {
        if (closing) {
            throw new ClosedChannelException();
        }
    }

    private void startListener(ServerSocketChannel ch, Path unixPath, String description) {
        long tick = watchdogTickNanos(options);
        if (watchdog == null && tick > 0) {
            Thread w = new Thread(() -> watchdogLoop(tick), "weft-nbd-watchdog");
            w.setDaemon(true);
            watchdog = w;
            w.start();
        }
        Thread t = new Thread(() -> acceptLoop(ch, unixPath != null, description), "weft-nbd-accept-"
                + (unixPath != null ? "unix" : "tcp-" + ((InetSocketAddress) localAddress(ch)).getPort()));
        t.setDaemon(true);
        listeners.add(new Listener(ch, t, unixPath, description));
        t.start();
        LOG.info("NBD server listening on {} (TLS {})", description, tls.mode().name().toLowerCase(
                java.util.Locale.ROOT));
    }

    private static Object localAddress(ServerSocketChannel ch) {
        try {
            return ch.getLocalAddress();
        } catch (IOException e) {
            return new InetSocketAddress(0);
        }
    }

    private void acceptLoop(ServerSocketChannel server, boolean unix, String description) {
        while (!closing) {
            SocketChannel ch;
            try {
                ch = server.accept();
            } catch (ClosedChannelException e) {
                return;
            } catch (IOException e) {
                if (closing) {
                    return;
                }
                LOG.warn("NBD accept on {} failed: {}", description, e.toString());
                // E.g. out of file descriptors: back off a little instead of spinning on the error.
                LockSupport.parkNanos(ACCEPT_RETRY_NANOS);
                continue;
            }
            String peer = unix ? "unix socket" : remote(ch);
            if (closing || connectionCount.incrementAndGet() > options.maxConnections()) {
                if (!closing) {
                    connectionCount.decrementAndGet();
                    LOG.warn("NBD connection from {} refused: {} connections already open", peer,
                            options.maxConnections());
                }
                closeQuietly(ch);
                continue;
            }
            try {
                if (!unix) {
                    ch.setOption(StandardSocketOptions.TCP_NODELAY, true);
                }
                if (options.socketBufferSize() > 0) {
                    ch.setOption(StandardSocketOptions.SO_SNDBUF, options.socketBufferSize());
                    ch.setOption(StandardSocketOptions.SO_RCVBUF, options.socketBufferSize());
                }
            } catch (IOException e) {
                connectionCount.decrementAndGet();
                closeQuietly(ch);
                continue;
            }
            NbdConnection c = new NbdConnection(connectionIds.incrementAndGet(), this, ch, options, peer);
            connections.add(c);
            if (closing) {
                c.beginDrain();
            }
            c.start();
        }
    }

    /**
     * How often the watchdog looks at the connections: a quarter of the shortest timeout that is on, between 5 ms
     * and 1 s, so a connection is closed at most about a quarter late. 0 when every timeout is off.
     */
    static long watchdogTickNanos(NbdServerOptions o) {
        long shortest = Long.MAX_VALUE;
        for (java.time.Duration d : new java.time.Duration[] {o.handshakeTimeout(), o.idleTimeout(),
                o.readStallTimeout(), o.writeStallTimeout()}) {
            if (!d.isZero()) {
                shortest = Math.min(shortest, d.toNanos());
            }
        }
        if (shortest == Long.MAX_VALUE) {
            return 0;
        }
        return Math.max(TimeUnit.MILLISECONDS.toNanos(5), Math.min(TimeUnit.SECONDS.toNanos(1), shortest / 4));
    }

    /**
     * The data path only bumps counters (no clock, no system call); this thread owns the clock: a connection whose
     * marks did not move for a timeout is closed through {@link NbdConnection#forceClose()}, which cancels its
     * requests in flight (the ownership rule of docs/nbd.md).
     */
    private void watchdogLoop(long tickNanos) {
        while (!watchdogStop) {
            long now = System.nanoTime();
            for (NbdConnection c : connections) {
                try {
                    c.checkProgress(now);
                } catch (RuntimeException e) {
                    LOG.warn("NBD watchdog: checking {} failed", c, e);
                }
            }
            LockSupport.parkNanos(this, tickNanos);
        }
    }

    private static String remote(SocketChannel ch) {
        try {
            return String.valueOf(ch.getRemoteAddress());
        } catch (IOException e) {
            return "unknown peer";
        }
    }

    private static void closeQuietly(SocketChannel ch) {
        try {
            ch.close();
        } catch (IOException e) {
            // nothing to do
        }
    }

    // ---- called by connections -----------------------------------------------------------------------------

    boolean isClosing() {
        return closing;
    }

    /** Export for a client-supplied name; the empty name selects the default (first added) export. */
    NbdExport lookupExport(String name) {
        synchronized (exports) {
            if (name.isEmpty()) {
                return exports.isEmpty() ? null : exports.values().iterator().next();
            }
            return exports.get(name);
        }
    }

    /** Whether {@code export} is still the one served under its name. */
    boolean isServed(NbdExport export) {
        synchronized (exports) {
            return exports.get(export.name()) == export;
        }
    }

    List<NbdExport> exportsSnapshot() {
        synchronized (exports) {
            return new ArrayList<>(exports.values());
        }
    }

    /** Largest READ/WRITE length served for a device: the smaller of the server's and the device's limit. */
    int maxPayload(DeviceInfo info) {
        int max = Math.min(options.maxPayload(), info.maxIoSize());
        return max - max % info.logicalBlockSize();
    }

    /** Takes {@code bytes} from the buffer budget if that many are left. No lock; allocation-free. */
    boolean tryReserveBuffer(long bytes) {
        long budget = options.bufferBudget();
        while (true) {
            long used = bufferedBytes.get();
            if (used + bytes > budget) {
                return false;
            }
            if (bufferedBytes.compareAndSet(used, used + bytes)) {
                long total = used + bytes;
                long peak;
                while (total > (peak = peakBufferedBytes.get()) && !peakBufferedBytes.compareAndSet(peak, total)) {
                    // another reservation raced; retry
                }
                return true;
            }
        }
    }

    /** Gives {@code bytes} back to the budget and wakes the readers waiting for some. */
    void returnBuffer(long bytes) {
        bufferedBytes.addAndGet(-bytes);
        if (bufferWaiters.get() > 0) {
            for (Thread t : bufferWaiterThreads) {
                LockSupport.unpark(t);
            }
        }
    }

    /** Whether a reader waits for budget: connections then drop their buffers after use instead of keeping them. */
    boolean bufferBudgetWanted() {
        return bufferWaiters.get() > 0;
    }

    /**
     * Whether a connection about to wait for its client may keep its request buffers for reuse: only while nobody
     * waits for budget and the buffers of all connections leave room for two maximum-size requests, so idle
     * connections can never hold the budget that busy ones need.
     */
    boolean mayKeepIdleBuffers() {
        return bufferWaiters.get() == 0
                && bufferedBytes.get() <= options.bufferBudget() - 2L * options.maxPayload();
    }

    void bufferWaiter(Thread reader, boolean waiting) {
        if (waiting) {
            bufferWaiterThreads.add(reader);
            bufferWaiters.incrementAndGet();
        } else {
            bufferWaiters.decrementAndGet();
            bufferWaiterThreads.remove(reader);
        }
    }

    void connectionFinished(NbdConnection c) {
        if (connections.remove(c)) {
            connectionCount.decrementAndGet();
        }
    }

    /** Stops accepting, lets in-flight requests complete and their replies go out, closes every connection. */
    @Override
    public synchronized void close() {
        if (closing) {
            return;
        }
        closing = true;
        for (Listener l : listeners) {
            try {
                l.channel().close();
            } catch (IOException e) {
                LOG.debug("closing NBD listener {}: {}", l.description(), e.toString());
            }
        }
        for (Listener l : listeners) {
            joinQuietly(l.acceptor(), 5_000);
            if (l.unixPath() != null) {
                try {
                    Files.deleteIfExists(l.unixPath());
                } catch (IOException e) {
                    LOG.debug("removing socket file {}: {}", l.unixPath(), e.toString());
                }
            }
        }
        for (NbdConnection c : connections) {
            c.beginDrain();
        }
        long deadline = System.nanoTime() + options.closeTimeout().toNanos();
        for (NbdConnection c : connections) {
            long left = deadline - System.nanoTime();
            joinQuietly(c.readerThread(), Math.max(0, TimeUnit.NANOSECONDS.toMillis(left)));
            if (!c.finished()) {
                LOG.warn("{} did not finish its in-flight requests within {}; closing it", c,
                        options.closeTimeout());
                c.forceClose();
                joinQuietly(c.readerThread(), 5_000);
            }
        }
        watchdogStop = true;
        Thread w = watchdog;
        if (w != null) {
            LockSupport.unpark(w);
            joinQuietly(w, 5_000);
        }
        LOG.info("NBD server closed");
    }

    private static void joinQuietly(Thread t, long millis) {
        if (t == Thread.currentThread()) {
            return;
        }
        try {
            t.join(Math.max(1, millis));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
