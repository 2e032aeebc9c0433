package io.weft.node;

import io.weft.core.nbd.NbdExport;
import io.weft.core.nbd.NbdServer;
import io.weft.node.config.HostPort;
import io.weft.node.config.NodeSettings;
import io.weft.node.config.VolumeSettings;
import io.weft.node.http.ManagementHttp;
import java.io.IOException;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A running node: its volumes, the NBD server exporting them, statistics and the management endpoint.
 * {@link #start} brings everything up or, on any failure, releases what it had opened; {@link #close} stops
 * accepting, lets in-flight IO finish, flushes every store and closes it.
 */
public final class WeftNode implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(WeftNode.class);

    private final NodeSettings settings;
    private final List<Volume> volumes;
    private final NbdServer nbd;
    private final InetSocketAddress nbdAddress;
    private final StatsReporter stats;
    private final ManagementHttp http;
    private final AtomicBoolean ready;
    private boolean closed;

    private WeftNode(NodeSettings settings, List<Volume> volumes, NbdServer nbd, InetSocketAddress nbdAddress,
                     StatsReporter stats, ManagementHttp http, AtomicBoolean ready) {
        this.ready = ready;
        this.settings = settings;
        this.volumes = volumes;
        this.nbd = nbd;
        this.nbdAddress = nbdAddress;
        this.stats = stats;
        this.http = http;
    }

    /** Starts a node; on failure everything opened so far is closed again. */
    public static WeftNode start(NodeSettings settings) throws StartupException {
        List<Volume> volumes = new ArrayList<>();
        NbdServer nbd = null;
        StatsReporter stats = null;
        ManagementHttp http = null;
        try {
            try {
                Files.createDirectories(settings.dataDir());
            } catch (IOException e) {
                throw new StartupException("weft.data-dir: cannot create " + settings.dataDir() + ": " + e, e);
            }
            for (VolumeSettings vs : settings.volumes()) {
                Volume volume = Volume.open(vs, settings);
                volumes.add(volume);
                LOG.info("volume {}: {} ({} bytes{}{}{}{})", vs.name(), volume.store().path(),
                        volume.device().info().size(), volume.created() ? ", created sparse" : "",
                        volume.store().isBlockDevice() ? ", block device" : "",
                        volume.device().info().readOnly() ? ", read-only" : "",
                        vs.directIo() ? ", O_DIRECT" : "");
            }
            nbd = new NbdServer();
            for (Volume v : volumes) {
                nbd.addExport(new NbdExport(v.name(), v.settings().description(), v.device()));
            }
            InetSocketAddress bound = null;
            if (settings.nbdListen().isPresent()) {
                HostPort listen = settings.nbdListen().get();
                try {
                    bound = nbd.bindTcp(listen.host(), listen.port());
                    if (!bound.getAddress().isLoopbackAddress()) {
                        LOG.warn("NBD listens on {}: NBD has no authentication, so everyone who can reach it can "
                                + "read and write every volume", listen);
                    }
                } catch (IOException e) {
                    throw new StartupException("weft.nbd.listen: cannot listen on " + listen + ": " + e.getMessage(),
                            e);
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
            stats = new StatsReporter(volumes, settings.statsInterval(), settings.statsLog());
            AtomicBoolean ready = new AtomicBoolean();
            if (settings.httpListen().isPresent()) {
                HostPort listen = settings.httpListen().get();
                try {
                    http = ManagementHttp.start(listen.host(), listen.port(), volumes, stats,
                            ready::get);
                } catch (IOException e) {
                    throw new StartupException("weft.http.listen: cannot listen on " + listen + ": " + e.getMessage(),
                            e);
                }
            }
            WeftNode node = new WeftNode(settings, List.copyOf(volumes), nbd, bound, stats, http, ready);
            ready.set(true);
            return node;
        } catch (StartupException | RuntimeException e) {
            closeQuietly(http);
            closeQuietly(stats);
            closeQuietly(nbd);
            for (Volume v : volumes) {
                closeQuietly(v);
            }
            if (e instanceof UnsupportedOperationException) {
                throw new StartupException("the NBD server is not available in this build: " + e.getMessage(), e);
            }
            throw e;
        }
    }

    private static void closeQuietly(AutoCloseable c) {
        if (c == null) {
            return;
        }
        try {
            c.close();
        } catch (Exception e) {
            LOG.warn("closing {} after a failed start: {}", c.getClass().getSimpleName(), e.toString());
        }
    }

    public List<Volume> volumes() {
        return volumes;
    }

    /** The bound NBD TCP address, if TCP is on. */
    public Optional<InetSocketAddress> nbdAddress() {
        return Optional.ofNullable(nbdAddress);
    }

    public Optional<InetSocketAddress> httpAddress() {
        return http == null ? Optional.empty() : Optional.of(http.address());
    }

    public NodeSettings settings() {
        return settings;
    }

    public boolean ready() {
        return ready.get();
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

    /** Prints what to try next and, last, the one-line readiness message scripts and tests wait for. */
    public void printWelcome(PrintStream out) {
        String first = volumes.isEmpty() ? "VOLUME" : volumes.get(0).name();
        String uri = nbdAddress != null ? tcpUri(first) : unixUri(first);
        out.println();
        out.println("Weft node serving " + volumes.size() + (volumes.size() == 1 ? " volume" : " volumes") + ":");
        for (Volume v : volumes) {
            out.println("  " + v.name() + "  " + human(v.device().info().size())
                    + (v.device().info().readOnly() ? " read-only" : "") + "  " + v.store().path());
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
        } else {
            out.println("  sudo nbd-client -unix " + settings.nbdUnixSocket().orElseThrow()
                    + " /dev/nbd0 -N " + first + "   # needs the nbd kernel module (modprobe nbd)");
        }
        httpAddress().ifPresent(a -> out.println("  curl http://" + hostPort(a) + "/metrics"));
        out.println("Stop with Ctrl-C (or SIGTERM): in-flight IO finishes and every volume is flushed.");
        StringBuilder line = new StringBuilder("weft node ready:");
        if (nbdAddress != null) {
            line.append(" nbd=").append(hostPort(nbdAddress));
        }
        settings.nbdUnixSocket().ifPresent(s -> line.append(" unix=").append(s));
        httpAddress().ifPresent(a -> line.append(" http=").append(hostPort(a)));
        line.append(" volumes=").append(volumes.size()).append(" pid=").append(ProcessHandle.current().pid());
        out.println(line);
        out.flush();
    }

    private static String human(long bytes) {
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
     * Stops accepting connections, lets in-flight requests complete, flushes and closes every volume.
     *
     * @return true if every volume was flushed
     */
    public synchronized boolean shutdown() {
        if (closed) {
            return true;
        }
        closed = true;
        ready.set(false);
        LOG.info("stopping: no new connections, draining in-flight IO");
        nbd.close();
        boolean flushed = true;
        for (Volume v : volumes) {
            try {
                v.flush();
            } catch (IOException | RuntimeException e) {
                flushed = false;
                LOG.error("volume {}: flush failed: {}", v.name(), e.toString());
            }
        }
        stats.close();
        for (Volume v : volumes) {
            LOG.info("{}", StatsReporter.describe(v.stats().snapshot()));
            v.close();
        }
        if (http != null) {
            http.close();
        }
        settings.nbdUnixSocket().ifPresent(socket -> {
            try {
                Files.deleteIfExists(socket);
            } catch (IOException e) {
                LOG.debug("could not remove {}: {}", socket, e.toString());
            }
        });
        LOG.info(flushed ? "stopped: every volume flushed and closed" : "stopped, but a flush failed (see above)");
        return flushed;
    }

    @Override
    public void close() {
        shutdown();
    }
}
