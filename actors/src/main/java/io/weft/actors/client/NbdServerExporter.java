package io.weft.actors.client;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import io.weft.core.io.BlockDevice;
import io.weft.core.io.SplittingBlockDevice;
import io.weft.core.nbd.NbdExport;
import io.weft.core.nbd.NbdServer;
import io.weft.core.nbd.NbdServerOptions;
import io.weft.core.nbd.NbdTls;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;

/**
 * Exports devices through an {@link NbdServer} that the caller (node-app) created and bound.
 *
 * <p>Every device is exported behind a {@link SplittingBlockDevice} that accepts requests up to the server's
 * {@link NbdServerOptions#maxPayload()} (what the handshake advertises as the maximum block size, from
 * {@code weft.nbd.max-request-size}): NBD clients may send anything up to that maximum (fio, qemu and nbdcopy send
 * 1 MiB and more), while a transport takes at most one chunk or data slot per request (128 KiB by default over
 * rdma). Requests that fit the device pass straight through.
 */
public final class NbdServerExporter implements DeviceExporter {
    /** Largest NBD READ/WRITE a node accepts and advertises; larger ones are split for the device. */
    public static final String MAX_REQUEST_SIZE_KEY = "weft.nbd.max-request-size";
    /** The connection limits of {@link NbdServerOptions}, with the same meanings. */
    public static final String HANDSHAKE_TIMEOUT_KEY = "weft.nbd.handshake-timeout";
    public static final String IDLE_TIMEOUT_KEY = "weft.nbd.idle-timeout";
    public static final String READ_STALL_TIMEOUT_KEY = "weft.nbd.read-stall-timeout";
    public static final String WRITE_STALL_TIMEOUT_KEY = "weft.nbd.write-stall-timeout";
    public static final String BUFFER_BUDGET_KEY = "weft.nbd.buffer-budget";
    /** TLS policy: off, on or require (nbdkit's {@code --tls} meanings, see {@link NbdTls}). */
    public static final String TLS_KEY = "weft.nbd.tls";
    /** Directory in the PEM layout ({@code ca-cert.pem}, {@code server-cert.pem}, {@code server-key.pem}). */
    public static final String TLS_CERTIFICATES_KEY = "weft.nbd.tls-certificates";
    /** Whether NBD clients must present a certificate signed by {@code ca-cert.pem}. */
    public static final String TLS_VERIFY_PEER_KEY = "weft.nbd.tls-verify-peer";
    /** The node's certificate directory, the default of {@link #TLS_CERTIFICATES_KEY} (weft.tls.* keys). */
    public static final String NODE_CERTIFICATES_KEY = "weft.tls.certificates";
    /** Bounds of {@link #MAX_REQUEST_SIZE_KEY}: one 4 KiB block up to 1 GiB (NBD clients rarely exceed 32 MiB). */
    static final long MIN_REQUEST_SIZE = 4096;
    static final long MAX_REQUEST_SIZE = 1L << 30;

    private final NbdServer server;
    private final String urlPrefix;
    private final int maxRequestSize;

    /**
     * @param server    bound by the caller; not closed here. Its {@code maxPayload} is the largest request exported
     *                  devices accept: create it with {@link #serverOptions(Config)} to apply the setting
     * @param urlPrefix shown in status, e.g. {@code nbd://127.0.0.1:10809/} (the export name is appended)
     */
    public NbdServerExporter(NbdServer server, String urlPrefix) {
        this.server = server;
        this.urlPrefix = urlPrefix;
        this.maxRequestSize = server.options().maxPayload();
    }

    /**
     * The NBD server options for a node's configuration: the defaults with {@code maxPayload} =
     * {@value #MAX_REQUEST_SIZE_KEY} and the timeouts and buffer budget of {@code weft.nbd.*}.
     *
     * @throws IllegalArgumentException whose message starts with the offending key ({@code "weft.nbd.KEY: ..."})
     *                                  when a value is malformed or out of range
     */
    public static NbdServerOptions serverOptions(Config config) {
        long size = bytes(config, MAX_REQUEST_SIZE_KEY);
        if (size < MIN_REQUEST_SIZE || size > MAX_REQUEST_SIZE || size % MIN_REQUEST_SIZE != 0) {
            throw new IllegalArgumentException(MAX_REQUEST_SIZE_KEY + ": must be a multiple of 4 KiB from 4 KiB to "
                    + "1 GiB: " + size);
        }
        long budget = bytes(config, BUFFER_BUDGET_KEY);
        if (budget < 2 * size) {
            throw new IllegalArgumentException(BUFFER_BUDGET_KEY + ": must be at least twice " + MAX_REQUEST_SIZE_KEY
                    + " (" + 2 * size + " bytes): " + budget);
        }
        return NbdServerOptions.defaults()
                .withMaxPayload((int) size)
                .withBufferBudget(budget)
                .withHandshakeTimeout(duration(config, HANDSHAKE_TIMEOUT_KEY))
                .withIdleTimeout(duration(config, IDLE_TIMEOUT_KEY))
                .withReadStallTimeout(duration(config, READ_STALL_TIMEOUT_KEY))
                .withWriteStallTimeout(duration(config, WRITE_STALL_TIMEOUT_KEY));
    }

    /**
     * The NBD TLS policy for a node's configuration: {@value #TLS_KEY}, with the certificates of
     * {@value #TLS_CERTIFICATES_KEY}, or when that is empty the node's {@value #NODE_CERTIFICATES_KEY}.
     *
     * @throws IllegalArgumentException whose message starts with the offending key when a value is malformed, the
     *                                  certificates are missing or cannot be loaded
     */
    public static NbdTls serverTls(Config config) {
        NbdTls.Mode mode;
        String value = config.getString(TLS_KEY);
        try {
            // HOCON reads an unquoted true/false as a boolean; take them as on/off.
            mode = "true".equals(value) ? NbdTls.Mode.ON : "false".equals(value) ? NbdTls.Mode.OFF
                    : NbdTls.Mode.parse(value);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(TLS_KEY + ": " + e.getMessage(), e);
        }
        boolean verifyPeer;
        try {
            verifyPeer = config.getBoolean(TLS_VERIFY_PEER_KEY);
        } catch (ConfigException e) {
            throw new IllegalArgumentException(TLS_VERIFY_PEER_KEY + ": expected on or off: " + e.getMessage(), e);
        }
        if (mode == NbdTls.Mode.OFF) {
            return NbdTls.off();
        }
        String dir = config.getString(TLS_CERTIFICATES_KEY);
        String key = TLS_CERTIFICATES_KEY;
        if (dir.isEmpty() && config.hasPath(NODE_CERTIFICATES_KEY)) {
            dir = config.getString(NODE_CERTIFICATES_KEY);
            key = NODE_CERTIFICATES_KEY;
        }
        if (dir.isEmpty()) {
            throw new IllegalArgumentException(TLS_CERTIFICATES_KEY + ": " + TLS_KEY + " = "
                    + mode.name().toLowerCase(java.util.Locale.ROOT) + " needs a certificate directory in the PEM "
                    + "layout (ca-cert.pem, server-cert.pem, server-key.pem); it defaults to "
                    + NODE_CERTIFICATES_KEY + ", which is empty too");
        }
        try {
            return NbdTls.fromDirectory(mode, Path.of(dir), verifyPeer);
        } catch (IOException e) {
            throw new IllegalArgumentException(key + ": " + e.getMessage(), e);
        }
    }

    private static long bytes(Config config, String key) {
        try {
            return config.getBytes(key);
        } catch (ConfigException e) {
            throw new IllegalArgumentException(key + ": expected a size such as 256MiB: " + e.getMessage(), e);
        }
    }

    private static Duration duration(Config config, String key) {
        Duration d;
        try {
            d = config.getDuration(key);
        } catch (ConfigException e) {
            throw new IllegalArgumentException(key + ": expected a duration such as 30s (0 = off): "
                    + e.getMessage(), e);
        }
        if (d.isNegative()) {
            throw new IllegalArgumentException(key + ": must not be negative (0 = off): " + d);
        }
        return d;
    }

    /** Largest READ/WRITE an exported device accepts (requests beyond the device's own limit are split). */
    public int maxRequestSize() {
        return maxRequestSize;
    }

    @Override
    public String export(String name, String description, BlockDevice device) {
        // Not closed on unexport: closing it would close the device, which its actor owns.
        BlockDevice exported = new SplittingBlockDevice(device, maxRequestSize,
                SplittingBlockDevice.DEFAULT_PARENT_SLOTS, SplittingBlockDevice.DEFAULT_MAX_PARTS_IN_FLIGHT);
        server.addExport(new NbdExport(name, description, exported));
        return urlPrefix + name;
    }

    @Override
    public void unexport(String name) {
        try {
            server.removeExport(name);
        } catch (RuntimeException e) {
            // An export that never got added (server not ready) has nothing to remove.
        }
    }
}
