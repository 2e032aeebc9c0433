package io.weft.core.nbd;

import java.time.Duration;

/**
 * Limits of an {@link NbdServer}.
 *
 * @param maxConnections          connections served at once over all listeners; further ones are closed at accept
 * @param maxInFlightPerConnection requests of one connection submitted to the device and not yet replied to; the
 *                                connection stops reading (TCP back-pressure) when it is reached
 * @param maxPayload              largest READ/WRITE length accepted (also capped by the device's maxIoSize) and
 *                                advertised as the maximum block size; larger WRITE payloads are drained and refused
 * @param maxBufferedBytesPerConnection payload bytes one connection keeps in its request buffers (between requests
 *                                the buffers are kept for reuse up to this much; beyond it they are dropped)
 * @param receiveBufferSize       bytes read from the socket in one call (many small requests decode from one read)
 * @param socketBufferSize        SO_SNDBUF/SO_RCVBUF for accepted sockets, 0 to keep the system default
 * @param closeTimeout            how long {@link NbdServer#close()} waits for in-flight requests before it closes
 *                                connections hard
 * @param handshakeTimeout        a connection that has not finished negotiating by then is closed (so idle or slow
 *                                clients cannot hold connection slots); zero disables the limit
 *                                ({@code weft.nbd.handshake-timeout})
 * @param idleTimeout             a negotiated connection with no request in flight, no reply pending and no byte
 *                                arriving for this long is closed; zero (the default) keeps idle connections open,
 *                                as nbdfuse and nbd-client hold them for days ({@code weft.nbd.idle-timeout})
 * @param readStallTimeout        once a request has started arriving, its header and payload must keep arriving: no
 *                                byte of it for this long closes the connection. Also bounds a request's wait for
 *                                {@link #bufferBudget}. Zero disables it ({@code weft.nbd.read-stall-timeout})
 * @param writeStallTimeout       replies pending and no write call to the socket (at most 1 MiB each) completing
 *                                for this long closes the connection; zero disables it
 *                                ({@code weft.nbd.write-stall-timeout})
 * @param bufferBudget            request payload buffer bytes of all connections together; a request whose buffer
 *                                would exceed it waits (at most {@link #readStallTimeout}) and then fails with
 *                                ENOMEM; at least twice {@link #maxPayload} ({@code weft.nbd.buffer-budget})
 */
public record NbdServerOptions(
        int maxConnections,
        int maxInFlightPerConnection,
        int maxPayload,
        long maxBufferedBytesPerConnection,
        int receiveBufferSize,
        int socketBufferSize,
        Duration closeTimeout,
        Duration handshakeTimeout,
        Duration idleTimeout,
        Duration readStallTimeout,
        Duration writeStallTimeout,
        long bufferBudget) {

    /** 32 MiB: NBD's customary maximum, which every client honours. */
    public static final int DEFAULT_MAX_PAYLOAD = 32 << 20;
    /** 256 MiB of request buffers over all connections: eight maximum-size requests at once. */
    public static final long DEFAULT_BUFFER_BUDGET = 256L << 20;

    public NbdServerOptions {
        if (maxConnections < 1) {
            throw new IllegalArgumentException("maxConnections must be >= 1: " + maxConnections);
        }
        if (maxInFlightPerConnection < 1 || maxInFlightPerConnection > 4096) {
            throw new IllegalArgumentException("maxInFlightPerConnection must be in [1, 4096]: "
                    + maxInFlightPerConnection);
        }
        if (maxPayload < 4096) {
            throw new IllegalArgumentException("maxPayload must be >= 4096: " + maxPayload);
        }
        if (maxBufferedBytesPerConnection < maxPayload) {
            throw new IllegalArgumentException("maxBufferedBytesPerConnection must be >= maxPayload: "
                    + maxBufferedBytesPerConnection);
        }
        if (receiveBufferSize < 4096) {
            throw new IllegalArgumentException("receiveBufferSize must be >= 4096: " + receiveBufferSize);
        }
        if (socketBufferSize < 0) {
            throw new IllegalArgumentException("socketBufferSize must be >= 0: " + socketBufferSize);
        }
        if (closeTimeout == null || closeTimeout.isNegative()) {
            throw new IllegalArgumentException("closeTimeout must be >= 0");
        }
        requireNonNegative(handshakeTimeout, "handshakeTimeout");
        requireNonNegative(idleTimeout, "idleTimeout");
        requireNonNegative(readStallTimeout, "readStallTimeout");
        requireNonNegative(writeStallTimeout, "writeStallTimeout");
        if (bufferBudget < 2L * maxPayload) {
            // Half the budget may sit in idle connections' buffers; the other half must hold the largest request.
            throw new IllegalArgumentException("bufferBudget must be at least twice maxPayload (" + 2L * maxPayload
                    + " bytes): " + bufferBudget);
        }
    }

    private static void requireNonNegative(Duration d, String name) {
        if (d == null || d.isNegative()) {
            throw new IllegalArgumentException(name + " must be >= 0: " + d);
        }
    }

    public static NbdServerOptions defaults() {
        return new NbdServerOptions(256, 128, DEFAULT_MAX_PAYLOAD, 64L << 20, 256 << 10, 0, Duration.ofSeconds(30),
                Duration.ofSeconds(10), Duration.ZERO, Duration.ofSeconds(30), Duration.ofSeconds(30),
                DEFAULT_BUFFER_BUDGET);
    }

    public NbdServerOptions withMaxConnections(int n) {
        return new NbdServerOptions(n, maxInFlightPerConnection, maxPayload, maxBufferedBytesPerConnection,
                receiveBufferSize, socketBufferSize, closeTimeout, handshakeTimeout, idleTimeout, readStallTimeout,
                writeStallTimeout, bufferBudget);
    }

    public NbdServerOptions withMaxInFlightPerConnection(int n) {
        return new NbdServerOptions(maxConnections, n, maxPayload, maxBufferedBytesPerConnection,
                receiveBufferSize, socketBufferSize, closeTimeout, handshakeTimeout, idleTimeout, readStallTimeout,
                writeStallTimeout, bufferBudget);
    }

    /** Also raises the per-connection buffer limit and the buffer budget where they would be below their minimum. */
    public NbdServerOptions withMaxPayload(int n) {
        return new NbdServerOptions(maxConnections, maxInFlightPerConnection, n,
                Math.max(n, maxBufferedBytesPerConnection), receiveBufferSize, socketBufferSize, closeTimeout,
                handshakeTimeout, idleTimeout, readStallTimeout, writeStallTimeout,
                Math.max(2L * n, bufferBudget));
    }

    public NbdServerOptions withSocketBufferSize(int n) {
        return new NbdServerOptions(maxConnections, maxInFlightPerConnection, maxPayload,
                maxBufferedBytesPerConnection, receiveBufferSize, n, closeTimeout, handshakeTimeout, idleTimeout,
                readStallTimeout, writeStallTimeout, bufferBudget);
    }

    public NbdServerOptions withCloseTimeout(Duration d) {
        return new NbdServerOptions(maxConnections, maxInFlightPerConnection, maxPayload,
                maxBufferedBytesPerConnection, receiveBufferSize, socketBufferSize, d, handshakeTimeout, idleTimeout,
                readStallTimeout, writeStallTimeout, bufferBudget);
    }

    public NbdServerOptions withHandshakeTimeout(Duration d) {
        return new NbdServerOptions(maxConnections, maxInFlightPerConnection, maxPayload,
                maxBufferedBytesPerConnection, receiveBufferSize, socketBufferSize, closeTimeout, d, idleTimeout,
                readStallTimeout, writeStallTimeout, bufferBudget);
    }

    public NbdServerOptions withIdleTimeout(Duration d) {
        return new NbdServerOptions(maxConnections, maxInFlightPerConnection, maxPayload,
                maxBufferedBytesPerConnection, receiveBufferSize, socketBufferSize, closeTimeout, handshakeTimeout, d,
                readStallTimeout, writeStallTimeout, bufferBudget);
    }

    public NbdServerOptions withReadStallTimeout(Duration d) {
        return new NbdServerOptions(maxConnections, maxInFlightPerConnection, maxPayload,
                maxBufferedBytesPerConnection, receiveBufferSize, socketBufferSize, closeTimeout, handshakeTimeout,
                idleTimeout, d, writeStallTimeout, bufferBudget);
    }

    public NbdServerOptions withWriteStallTimeout(Duration d) {
        return new NbdServerOptions(maxConnections, maxInFlightPerConnection, maxPayload,
                maxBufferedBytesPerConnection, receiveBufferSize, socketBufferSize, closeTimeout, handshakeTimeout,
                idleTimeout, readStallTimeout, d, bufferBudget);
    }

    public NbdServerOptions withBufferBudget(long bytes) {
        return new NbdServerOptions(maxConnections, maxInFlightPerConnection, maxPayload,
                maxBufferedBytesPerConnection, receiveBufferSize, socketBufferSize, closeTimeout, handshakeTimeout,
                idleTimeout, readStallTimeout, writeStallTimeout, bytes);
    }
}
