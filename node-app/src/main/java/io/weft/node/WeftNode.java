package io.weft.node;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import com.typesafe.config.ConfigValueFactory;
import io.weft.actors.AccessMode;
import io.weft.actors.MapSpec;
import io.weft.actors.NodeState;
import io.weft.actors.Reply;
import io.weft.actors.WeftRuntime;
import io.weft.actors.client.NbdServerExporter;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.core.nbd.NbdServer;
import io.weft.core.nbd.NbdServerOptions;
import io.weft.core.nbd.NbdTls;
import io.weft.core.store.FileBackingStore;
import io.weft.node.config.HostPort;
import io.weft.node.config.InvalidSettingException;
import io.weft.node.config.NodeSettings;
import io.weft.node.config.VolumeSettings;
import java.io.IOException;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A running node: the NBD server, and the control plane ({@link WeftRuntime}: Pekko Cluster member, management
 * HTTP, JMX) exporting every device it maps on that NBD server. The configured volumes ({@code weft.volumes}) are
 * created under the node's export roots when missing and mapped in-process through the control plane, so they are
 * devices like any other (HTTP, metrics, JMX). {@link #start} brings everything up or releases what it had opened;
 * {@link #shutdown} stops accepting NBD connections, lets in-flight IO finish, flushes every device, leaves the
 * cluster and stops.
 */
public final class WeftNode implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(WeftNode.class);

    private final NodeSettings settings;
    private final NbdServer nbd;
    private final InetSocketAddress nbdAddress;
    private final WeftRuntime runtime;
    private final List<VolumeSettings> mapped;
    private volatile boolean ready;
    private boolean closed;

    private WeftNode(NodeSettings settings, NbdServer nbd, InetSocketAddress nbdAddress, WeftRuntime runtime,
                     List<VolumeSettings> mapped) {
        this.settings = settings;
        this.nbd = nbd;
        this.nbdAddress = nbdAddress;
        this.runtime = runtime;
        this.mapped = mapped;
    }

    /**
     * Starts a node; on failure everything opened so far is closed again.
     *
     * @param settings the validated node-app settings
     * @param config   the whole configuration they came from (the control plane reads its {@code weft.*} keys)
     */
    public static WeftNode start(NodeSettings settings, Config config) throws StartupException {
        NbdServer nbd = null;
        WeftRuntime runtime = null;
        try {
            try {
                Files.createDirectories(settings.dataDir());
            } catch (IOException e) {
                throw new StartupException("weft.data-dir: cannot create " + settings.dataDir() + ": " + e, e);
            }
            nbd = new NbdServer(nbdOptions(config), nbdTls(config));
            InetSocketAddress bound = bindNbd(nbd, settings);
            String scheme = nbd.tls().mode() == NbdTls.Mode.REQUIRE ? "nbds" : "nbd";
            String urlPrefix = bound != null ? scheme + "://" + hostPort(bound) + "/"
                    : scheme + "+unix:///";
            runtime = startRuntime(controlPlaneConfig(settings, config), new NbdServerExporter(nbd, urlPrefix));
            List<VolumeSettings> mapped = new ArrayList<>();
            if (runtime.settings().isStorage() && runtime.settings().isClient()) {
                for (VolumeSettings vs : settings.volumes()) {
                    mapVolume(runtime, vs);
                    mapped.add(vs);
                }
            } else if (!settings.volumes().isEmpty()) {
                LOG.info("weft.volumes not mapped here: a node maps its own volumes only with both roles "
                        + "storage and client (this one has {})", runtime.settings().roles());
            }
            WeftNode node = new WeftNode(settings, nbd, bound, runtime, List.copyOf(mapped));
            node.ready = true;
            return node;
        } catch (StartupException | RuntimeException e) {
            if (runtime != null) {
                runtime.shutdown();
            }
            if (nbd != null) {
                nbd.close();
            }
            throw e;
        }
    }

    /**
     * NBD server limits (weft.nbd.max-request-size, the timeouts, buffer-budget); the largest request is also what
     * exported devices accept. An invalid value stops start-up with a message naming its key.
     */
    private static NbdServerOptions nbdOptions(Config config) throws InvalidSettingException {
        try {
            return NbdServerExporter.serverOptions(config);
        } catch (IllegalArgumentException e) {
            throw nbdSetting(e);
        }
    }

    /** NBD TLS (weft.nbd.tls, tls-certificates, tls-verify-peer); bad values and unreadable files name their key. */
    private static NbdTls nbdTls(Config config) throws InvalidSettingException {
        try {
            return NbdServerExporter.serverTls(config);
        } catch (IllegalArgumentException e) {
            throw nbdSetting(e);
        }
    }

    private static InvalidSettingException nbdSetting(IllegalArgumentException e) {
        String message = e.getMessage();
        int colon = message.indexOf(':');
        String key = (message.startsWith("weft.nbd.") || message.startsWith("weft.tls.")) && colon > 0
                ? message.substring(0, colon) : "weft.nbd";
        return new InvalidSettingException(key, message.substring(colon + 1).trim());
    }

    private static InetSocketAddress bindNbd(NbdServer nbd, NodeSettings settings) throws StartupException {
        InetSocketAddress bound = null;
        if (settings.nbdListen().isPresent()) {
            HostPort listen = settings.nbdListen().get();
            try {
                bound = nbd.bindTcp(listen.host(), listen.port());
                if (!bound.getAddress().isLoopbackAddress() && !nbd.tls().verifyPeer()) {
                    LOG.warn("NBD listens on {} with weft.nbd.tls = {} and no client certificate check "
                            + "(weft.nbd.tls-verify-peer = off): everyone who can reach it can read and write every "
                            + "device", listen, nbd.tls().mode().name().toLowerCase(java.util.Locale.ROOT));
                }
            } catch (IOException e) {
                throw new StartupException("weft.nbd.listen: cannot listen on " + listen + ": " + e.getMessage(), e);
            }
        }
        if (settings.nbdUnixSocket().isPresent()) {
            Path socket = settings.nbdUnixSocket().get();
            try {
                Path parent = socket.getParent();
                if (parent != null) {
                    Files.createDirectories(parent);
                }
                nbd.bindUnix(socket);
            } catch (IOException e) {
                throw new StartupException("weft.nbd.unix-socket: cannot listen on " + socket + ": "
                        + e.getMessage(), e);
            }
        }
        return bound;
    }

    /**
     * The data directory is always an export root, first in the list, and {@code weft.storage.export-roots} adds to
     * it: the node's own volumes ({@code vol0} by default) live there, so naming one extra root must not make them
     * unmappable (issue 13: the node used to exit at start).
     */
    static Config controlPlaneConfig(NodeSettings settings, Config config) {
        String dataDir = settings.dataDir().toString();
        List<String> roots = new java.util.ArrayList<>();
        roots.add(dataDir);
        for (String root : config.getStringList("weft.storage.export-roots")) {
            if (!roots.contains(root)) {
                roots.add(root);
            }
        }
        return config.withValue("weft.storage.export-roots", ConfigValueFactory.fromIterable(roots));
    }

    private static WeftRuntime startRuntime(Config config, NbdServerExporter exporter) throws StartupException {
        try {
            return WeftRuntime.start(config, exporter);
        } catch (ConfigException e) {
            throw new InvalidSettingException(keyOf(e), e.getMessage());
        } catch (IllegalArgumentException e) {
            String message = e.getMessage() == null ? e.toString() : e.getMessage();
            int colon = message.indexOf(':');
            String key = message.startsWith("weft.") && colon > 0 ? message.substring(0, colon).split(" ")[0]
                    : "weft";
            throw new InvalidSettingException(key, colon > 0 ? message.substring(colon + 1).trim() : message);
        } catch (IllegalStateException e) {
            Throwable cause = e.getCause();
            while (cause != null && cause.getCause() != null && !(cause instanceof java.net.BindException)) {
                cause = cause.getCause();
            }
            String why = cause == null ? e.getMessage() : cause.getMessage();
            throw new StartupException("the control plane did not start (cluster port weft.cluster.port, "
                    + "management weft.management.http.*): " + why, e);
        }
    }

    private static String keyOf(ConfigException e) {
        String m = e.getMessage() == null ? "" : e.getMessage();
        java.util.regex.Matcher k = java.util.regex.Pattern.compile("(weft\\.[A-Za-z0-9._-]+)").matcher(m);
        return k.find() ? k.group(1) : "weft";
    }

    /** Creates a missing volume file sparse, then maps it through the control plane with the in-process transport. */
    private static void mapVolume(WeftRuntime runtime, VolumeSettings vs) throws StartupException {
        Path path = vs.path();
        if (!Files.exists(path)) {
            if (vs.readOnly()) {
                throw new StartupException(vs.key() + ".path: " + path
                        + " does not exist (a read-only volume is never created)");
            }
            if (vs.size().isEmpty()) {
                throw new StartupException(vs.key() + ".size: " + path + " does not exist; give a size to create it");
            }
            try {
                Path parent = path.getParent();
                if (parent != null) {
                    Files.createDirectories(parent);
                }
                FileBackingStore.createSparse(path, vs.size().getAsLong()).close();
                LOG.info("volume {}: created {} sparse ({} bytes)", vs.name(), path, vs.size().getAsLong());
            } catch (IOException | RuntimeException e) {
                throw new StartupException(vs.key() + ".path: cannot create " + path + ": " + e.getMessage(), e);
            }
        }
        MapSpec spec = new MapSpec(vs.name(), runtime.nodeName(), path.toString(),
                vs.readOnly() ? AccessMode.RO : AccessMode.RW, "inprocess");
        Reply reply;
        try {
            Duration wait = runtime.settings().mapTimeout().plus(runtime.settings().askTimeout());
            reply = runtime.map(spec).toCompletableFuture().get(wait.toMillis(), TimeUnit.MILLISECONDS);
        } catch (Exception e) {
            throw new StartupException(vs.key() + ": mapping " + path + " did not complete: " + e, e);
        }
        if (!reply.ok()) {
            throw new StartupException(vs.key() + ".path: cannot map " + path + ": " + reply.message()
                    + " (a volume must lie under an export root, weft.storage.export-roots)");
        }
    }

    public NodeSettings settings() {
        return settings;
    }

    public WeftRuntime runtime() {
        return runtime;
    }

    /** The bound NBD TCP address, if TCP is on. */
    public Optional<InetSocketAddress> nbdAddress() {
        return Optional.ofNullable(nbdAddress);
    }

    /** The bound management HTTP address, if enabled. */
    public Optional<URI> httpUri() {
        return runtime.httpUri();
    }

    public boolean ready() {
        return ready;
    }

    private String tcpUri(String export) {
        return "nbd://" + hostPort(nbdAddress) + "/" + export;
    }

    private static String hostPort(InetSocketAddress address) {
        String host = address.getHostString();
        return (host.contains(":") ? "[" + host + "]" : host) + ":" + address.getPort();
    }

    private String unixUri(String export) {
        return "nbd+unix:///" + export + "?socket=" + settings.nbdUnixSocket().orElseThrow();
    }

    private static String http(URI uri) {
        return uri.getHost() + ":" + uri.getPort();
    }

    /** Prints what to try next and, last, the one-line readiness message scripts and tests wait for. */
    public void printWelcome(PrintStream out) {
        String first = mapped.isEmpty() ? "VOLUME" : mapped.get(0).name();
        String uri = nbdAddress != null ? tcpUri(first) : unixUri(first);
        out.println();
        out.println("Weft node " + runtime.nodeName() + " (roles " + String.join(",", runtime.settings().roles())
                + ", cluster " + runtime.clusterAddress() + ")");
        out.println("serving " + mapped.size() + (mapped.size() == 1 ? " volume" : " volumes") + ":");
        for (VolumeSettings v : mapped) {
            NodeState.DeviceEntry e = runtime.state().device(v.name());
            long size = e == null ? 0 : e.device.info().size();
            out.println("  " + v.name() + "  " + human(size) + (v.readOnly() ? " read-only" : "") + "  " + v.path());
            if (nbdAddress != null) {
                out.println("      " + tcpUri(v.name()));
            }
            if (settings.nbdUnixSocket().isPresent()) {
                out.println("      " + unixUri(v.name()));
            }
        }
        out.println("Try:");
        out.println("  qemu-img info " + uri);
        out.println("  nbdinfo " + uri + "        # add --map to see allocation");
        out.println("  mkdir -p /tmp/" + first + " && nbdfuse /tmp/" + first + " " + uri
                + " &   # then use /tmp/" + first + "/nbd as a file");
        if (nbdAddress != null) {
            out.println("  sudo nbd-client " + nbdAddress.getHostString() + " " + nbdAddress.getPort()
                    + " /dev/nbd0 -N " + first + "   # needs the nbd kernel module (modprobe nbd)");
        }
        httpUri().ifPresent(a -> {
            String node = http(a);
            String flag = node.equals("127.0.0.1:7626") ? "" : " --node " + node;
            out.println("  ./weft status" + flag + "        # devices, backends, cluster members");
            String tokenFile = runtime.managementToken().explicit() ? "(your --token)"
                    : "$(cat " + settings.dataDir().resolve(io.weft.actors.management.ManagementToken.FILE_NAME)
                    + ")";
            out.println("  curl -H \"Authorization: Bearer " + tokenFile + "\" http://" + node + "/metrics");
            // The web console (docs/console.md), served by this same listener.
            out.println("Console: http://" + node + "/  (sign in once with this link: "
                    + io.weft.actors.management.WeftHttpApi.signInLink(runtime) + " )");
        });
        out.println("Stop with Ctrl-C (or SIGTERM): in-flight IO finishes, every device is flushed, the node leaves "
                + "the cluster.");
        StringBuilder line = new StringBuilder("weft node ready:");
        if (nbdAddress != null) {
            line.append(" nbd=").append(hostPort(nbdAddress));
        }
        settings.nbdUnixSocket().ifPresent(s -> line.append(" unix=").append(s));
        httpUri().ifPresent(a -> line.append(" http=").append(http(a)));
        line.append(" cluster=").append(runtime.clusterAddress().getHost().orElse("?")).append(':')
                .append(runtime.clusterAddress().getPort().map(String::valueOf).orElse("?"));
        line.append(" volumes=").append(mapped.size()).append(" pid=").append(ProcessHandle.current().pid());
        out.println(line);
        out.flush();
    }

    static String human(long bytes) {
        String[] units = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
        double value = bytes;
        int unit = 0;
        while (value >= 1024 && unit < units.length - 1) {
            value /= 1024;
            unit++;
        }
        return (value == Math.rint(value) ? String.valueOf((long) value) : String.format("%.1f", value)) + " "
                + units[unit];
    }

    /**
     * Stops accepting NBD connections and lets in-flight requests complete, flushes every mapped device, then
     * leaves the cluster and stops the control plane (which closes the backing stores).
     *
     * @return true if every device was flushed
     */
    public synchronized boolean shutdown() {
        if (closed) {
            return true;
        }
        closed = true;
        ready = false;
        LOG.info("stopping: no new NBD connections, draining in-flight IO");
        nbd.close();
        boolean flushed = true;
        for (NodeState.DeviceEntry e : runtime.state().devices()) {
            if (e.spec.mode() == AccessMode.RO) {
                continue;
            }
            int status = flush(e);
            if (status != IoStatus.OK) {
                flushed = false;
                LOG.error("device {}: flush failed: {}", e.spec.deviceId(), IoStatus.name(status));
            }
        }
        LOG.info("leaving the cluster");
        runtime.shutdown();
        settings.nbdUnixSocket().ifPresent(socket -> {
            try {
                Files.deleteIfExists(socket);
            } catch (IOException e) {
                LOG.debug("could not remove {}: {}", socket, e.toString());
            }
        });
        LOG.info(flushed ? "stopped: every device flushed" : "stopped, but a flush failed (see above)");
        return flushed;
    }

    private int flush(NodeState.DeviceEntry e) {
        CompletableFuture<Integer> done = new CompletableFuture<>();
        e.device.submit(IoOp.FLUSH, 0, 0, 0, ByteBuffer.allocate(0), 0, (tag, status) -> done.complete(status));
        try {
            return done.get(runtime.settings().ioTimeout().toMillis() + 1000, TimeUnit.MILLISECONDS);
        } catch (Exception ex) {
            return IoStatus.EIO;
        }
    }

    @Override
    public void close() {
        shutdown();
    }
}
