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
 */
public record NbdServerOptions(
        int maxConnections,
        int maxInFlightPerConnection,
        int maxPayload,
        long maxBufferedBytesPerConnection,
        int receiveBufferSize,
        int socketBufferSize,
        Duration closeTimeout,
        Duration handshakeTimeout) {

    /** 32 MiB: NBD's customary maximum, which every client honours. */
    public static final int DEFAULT_MAX_PAYLOAD = 32 << 20;

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
        if (handshakeTimeout == null || handshakeTimeout.isNegative()) {
            throw new IllegalArgumentException("handshakeTimeout must be >= 0");
        }
    }

    public static NbdServerOptions defaults() {
        return new NbdServerOptions(256, 128, DEFAULT_MAX_PAYLOAD, 64L << 20, 256 << 10, 0, Duration.ofSeconds(30),
                Duration.ofSeconds(10));
    }

    public NbdServerOptions withMaxConnections(int n) {
        return new NbdServerOptions(n, maxInFlightPerConnection, maxPayload, maxBufferedBytesPerConnection,
                receiveBufferSize, socketBufferSize, closeTimeout, handshakeTimeout);
    }

    public NbdServerOptions withMaxInFlightPerConnection(int n) {
        return new NbdServerOptions(maxConnections, n, maxPayload, maxBufferedBytesPerConnection,
                receiveBufferSize, socketBufferSize, closeTimeout, handshakeTimeout);
    }

    public NbdServerOptions withMaxPayload(int n) {
        return new NbdServerOptions(maxConnections, maxInFlightPerConnection, n,
                Math.max(n, maxBufferedBytesPerConnection), receiveBufferSize, socketBufferSize, closeTimeout,
                handshakeTimeout);
    }

    public NbdServerOptions withSocketBufferSize(int n) {
        return new NbdServerOptions(maxConnections, maxInFlightPerConnection, maxPayload,
                maxBufferedBytesPerConnection, receiveBufferSize, n, closeTimeout, handshakeTimeout);
    }

    public NbdServerOptions withCloseTimeout(Duration d) {
        return new NbdServerOptions(maxConnections, maxInFlightPerConnection, maxPayload,
                maxBufferedBytesPerConnection, receiveBufferSize, socketBufferSize, d, handshakeTimeout);
    }

    public NbdServerOptions withHandshakeTimeout(Duration d) {
        return new NbdServerOptions(maxConnections, maxInFlightPerConnection, maxPayload,
                maxBufferedBytesPerConnection, receiveBufferSize, socketBufferSize, closeTimeout, d);
    }
}
