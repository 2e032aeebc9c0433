package io.weft.actors.transport;

import io.weft.core.io.BlockDevice;
import io.weft.cxl.BackendOptions;
import io.weft.cxl.BlkdevOptions;
import io.weft.cxl.CxlBackend;
import io.weft.cxl.CxlBlockDevice;
import io.weft.cxl.CxlHost;
import io.weft.cxl.CxlOptions;
import io.weft.cxl.CxlRegion;
import io.weft.cxl.RegionFullException;
import io.weft.cxl.layout.RegionGeometry;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.zip.CRC32C;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The {@code cxl} transport: shared-memory channels in a CXL region (or any file both nodes map).
 *
 * <p>At start the node attaches every region in {@code weft.cxl.regions} and registers itself as a host there (host
 * id derived from {@code weft.node.name}, so a restarted node takes its old entry over). Storage side: a served
 * mapping becomes one {@link CxlBackend} per attached region, on {@code weft.cxl.channels} fresh channels. Endpoint
 * properties:
 * <pre>
 *   cxl.regions          hex region ids (the random format id in each region's header), comma separated
 *   cxl.&lt;id&gt;.backend   backend slot serving the mapping in that region
 *   cxl.&lt;id&gt;.path      where the storage node attached that region (informational: identity is the id)
 *   cxl.capability       the mapping grant's secret; each backend entry holds its SHA-256 and opens only for a
 *                        blkdev presenting it (cooperative: whatever maps the region reads and writes all of it)
 * </pre>
 * Client side: the first listed region this node has attached too — same format id, wherever its file is — gets a
 * {@link CxlBlockDevice} on that backend. No shared region is an {@link UnreachableEndpointException}.
 *
 * <p>Lifecycle: closing a served mapping closes its backends (attached clients fail what is in flight with
 * ESHUTDOWN, which the device retries on its next path); closing a client channel closes its blkdev the same way. A
 * backend whose heartbeat stood still for {@code weft.cxl.dead-timeout} (its node died) makes the client channel
 * report failure at the watcher's next poll, with no {@code weft.transport.channel-grace} on top ({@link
 * BlkdevHealth}). A janitor clears hosts, backends and blkdevs that stayed dead for two dead
 * timeouts, so the segments of a killed node are reused after it restarts. The janitor polls, every half dead
 * timeout, and keeps doing so on an idle node: a peer process that dies sends nothing, its heartbeat word in shared
 * memory just stops moving, so there is no event to wait for (issue 12: a few wake-ups a second, only on nodes with
 * CXL regions attached).
 */
public final class CxlTransport implements Transport, AutoCloseable {
    public static final String NAME = "cxl";
    static final String REGIONS = "cxl.regions";
    static final String CAPABILITY = "cxl.capability";
    private static final Logger LOG = LoggerFactory.getLogger(CxlTransport.class);

    private final TransportSettings settings;
    private final ChannelWatcher watcher;
    private final List<Attached> attached = new ArrayList<>();
    private final ScheduledExecutorService janitor;
    /** Held by a client channel's probe while it reads a segment, and by {@link #close} before unmapping. */
    private final Object regionsGuard = new Object();
    private boolean regionsClosed; // guarded by regionsGuard

    /** One attached region with this node's host registration in it. */
    record Attached(Path path, CxlRegion region, CxlHost host, String id, Map<Long, Long> deadSince) {
    }

    CxlTransport(TransportSettings settings, ChannelWatcher watcher) {
        this.settings = settings;
        this.watcher = watcher;
        CxlOptions options = CxlOptions.defaults()
                .withDeadTimeout(settings.cxlHeartbeat(), settings.cxlDeadTimeout())
                .withIoTimeout(settings.ioTimeout().plus(Duration.ofSeconds(5)));
        long nodeId = hostId(settings.nodeName());
        try {
            for (Path p : settings.cxlRegions()) {
                CxlRegion region;
                try {
                    region = CxlRegion.attach(p);
                } catch (IOException e) {
                    throw new IllegalStateException("weft.cxl.regions: cannot attach " + p + ": " + e.getMessage()
                            + " (format it first, e.g. with CxlRegion.format)", e);
                }
                CxlHost host;
                try {
                    host = CxlHost.register(region, nodeId, hostName(settings.nodeName()), options);
                } catch (RuntimeException e) {
                    region.close();
                    throw new IllegalStateException("cannot register in CXL region " + p + ": " + e.getMessage(), e);
                }
                attached.add(new Attached(p, region, host, regionId(region), new HashMap<>()));
                LOG.info("CXL region {} attached (id {}, host slot {})", p, regionId(region), host.slot());
            }
        } catch (RuntimeException e) {
            close();
            throw e;
        }
        if (attached.isEmpty()) {
            janitor = null;
        } else {
            janitor = Executors.newSingleThreadScheduledExecutor(r -> {
                Thread t = new Thread(r, "weft-cxl-janitor");
                t.setDaemon(true);
                return t;
            });
            long period = Math.max(50, settings.cxlDeadTimeout().toMillis() / 2);
            janitor.scheduleWithFixedDelay(this::clearDeadObjects, period, period, TimeUnit.MILLISECONDS);
        }
    }

    /** A stable, non-zero host id per node name; random when the name is not known yet. */
    static long hostId(String nodeName) {
        if (nodeName == null || nodeName.isEmpty()) {
            long r;
            do {
                r = ThreadLocalRandom.current().nextLong();
            } while (r == 0);
            return r;
        }
        CRC32C a = new CRC32C();
        a.update(nodeName.getBytes(StandardCharsets.UTF_8));
        CRC32C b = new CRC32C();
        b.update(("weft:" + nodeName).getBytes(StandardCharsets.UTF_8));
        long id = (a.getValue() << 32) | b.getValue();
        return id == 0 ? 1 : id;
    }

    private static String hostName(String nodeName) {
        String n = nodeName == null || nodeName.isEmpty() ? "weft" : nodeName;
        return n.length() > 60 ? n.substring(0, 60) : n;
    }

    static String regionId(CxlRegion region) {
        return Long.toHexString(region.formatId());
    }

    @Override
    public String name() {
        return NAME;
    }

    /** Ids of the regions this node attached (what the storage side offers in its endpoint). */
    public List<String> regionIds() {
        List<String> ids = new ArrayList<>();
        for (Attached a : attached) {
            ids.add(a.id());
        }
        return ids;
    }

    /** Hosts of the attached regions (tests and status). */
    public List<CxlHost> hosts() {
        List<CxlHost> hosts = new ArrayList<>();
        for (Attached a : attached) {
            hosts.add(a.host());
        }
        return hosts;
    }

    @Override
    public TransportAcceptor acceptor() {
        return this::serve;
    }

    /** Backends for one mapping, one per attached region, plus the endpoint properties naming them. */
    record Served(List<CxlBackend> backends, Map<String, String> properties, ChannelWatcher watcher) {
        /**
         * Reports a fenced channel to {@code onFailure}: a fence survives everything but a new backend, so the
         * served channel must be replaced (its restart gives a new endpoint, and the client re-opens).
         */
        void watch(ChannelFailureListener onFailure) {
            watcher.watch(this, this::fenced, onFailure);
        }

        private ChannelWatcher.Problem fenced() {
            for (CxlBackend b : backends) {
                for (int c = 0; c < b.channelCount(); c++) {
                    if (b.isFenced(c)) {
                        return ChannelWatcher.Problem.mayRecover("cxl backend " + b.id() + " channel " + c
                                + " fenced: " + b.fenceReasons().get(c));
                    }
                }
            }
            return null;
        }

        /** The newest heartbeat of a client blkdev on any of the backends, as their regions' hosts observed it. */
        long clientLastHeardNanos() {
            long newest = ServedChannel.NEVER_HEARD;
            for (CxlBackend b : backends) {
                long heard = b.clientLastHeardNanos();
                if (heard != CxlHost.NEVER_HEARD && (newest == ServedChannel.NEVER_HEARD || heard - newest > 0)) {
                    newest = heard;
                }
            }
            return newest;
        }

        void close() {
            watcher.unwatch(this);
            for (CxlBackend b : backends) {
                b.close();
            }
        }
    }

    /** @return null when this node attaches no region */
    Served serveBackends(String mappingId, BlockDevice device, MappingGrant grant) throws IOException {
        if (attached.isEmpty()) {
            return null;
        }
        List<CxlBackend> backends = new ArrayList<>();
        Map<String, String> props = new HashMap<>();
        try {
            for (Attached a : attached) {
                // The backend entry holds the grant's digest; only a blkdev presenting the capability opens it.
                CxlBackend backend = a.host().createBackend(device, mappingId,
                        BackendOptions.defaults().withChannels(settings.cxlChannels()),
                        CxlHost.grantDigest(grant.capabilityBytes()));
                backends.add(backend);
                props.put("cxl." + a.id() + ".backend", Integer.toString(backend.id()));
                props.put("cxl." + a.id() + ".path", a.path().toString());
            }
        } catch (RuntimeException e) {
            new Served(backends, props, watcher).close();
            if (e instanceof RegionFullException) {
                throw new TransportFullException(e.getMessage(), e);
            }
            throw new IOException("cannot serve " + mappingId + " over cxl: " + e.getMessage(), e);
        }
        props.put(REGIONS, String.join(",", regionIds()));
        props.put(CAPABILITY, grant.capability());
        return new Served(backends, props, watcher);
    }

    private ServedChannel serve(String mappingId, BlockDevice device, MappingGrant grant,
                                ChannelFailureListener onFailure) throws IOException {
        Served served = serveBackends(mappingId, device, grant);
        if (served == null) {
            throw new IOException("cxl transport: this storage node attaches no region (weft.cxl.regions is empty)");
        }
        served.watch(onFailure);
        TransportEndpoint endpoint = new TransportEndpoint(NAME, served.properties());
        return new ServedChannel() {
            @Override
            public TransportEndpoint endpoint() {
                return endpoint;
            }

            @Override
            public boolean carriesClientLiveness() {
                return true;
            }

            @Override
            public long clientLastHeardNanos() {
                return served.clientLastHeardNanos();
            }

            @Override
            public void close() {
                served.close();
            }
        };
    }

    @Override
    public TransportConnector connector() {
        return this::connect;
    }

    /** The attached region the endpoint offers too, or null. */
    Attached sharedRegion(TransportEndpoint endpoint) {
        String offered = endpoint.properties().get(REGIONS);
        if (offered == null) {
            return null;
        }
        for (String id : offered.split(",")) {
            for (Attached a : attached) {
                if (a.id().equals(id.trim())) {
                    return a;
                }
            }
        }
        return null;
    }

    MappingChannel connect(TransportEndpoint endpoint, ChannelFailureListener onFailure) throws IOException {
        Attached region = sharedRegion(endpoint);
        if (region == null) {
            throw new UnreachableEndpointException("cxl: the storage node attaches regions "
                    + endpoint.properties().getOrDefault(REGIONS, "(none)") + " and this node " + regionIds()
                    + " (weft.cxl.regions); no region is shared, map over rdma");
        }
        int backendId;
        try {
            backendId = Integer.parseInt(endpoint.require("cxl." + region.id() + ".backend"));
        } catch (NumberFormatException e) {
            throw new IOException("cxl endpoint has a malformed backend id", e);
        }
        CxlBlockDevice dev;
        try {
            String capability = endpoint.properties().get(CAPABILITY);
            dev = region.host().openBlkdev(backendId, BlkdevOptions.submitterAssisted(),
                    capability == null ? null : java.util.Base64.getUrlDecoder().decode(capability));
        } catch (RuntimeException e) {
            if (e instanceof RegionFullException) {
                throw new TransportFullException(e.getMessage(), e);
            }
            throw new IOException("cxl: cannot open backend " + backendId + " in " + region.path() + ": "
                    + e.getMessage(), e);
        }
        Object key = new Object();
        watcher.watch(key, new BlkdevHealth(dev, settings.cxlDeadTimeout(), System.nanoTime()), onFailure);
        return new MappingChannel() {
            @Override
            public BlockDevice device() {
                return dev;
            }

            @Override
            public String transportName() {
                return NAME;
            }

            @Override
            public boolean carriesLiveness() {
                return true; // this host's agent beats the blkdev's entry every weft.cxl.heartbeat-interval
            }

            @Override
            public void close() {
                watcher.unwatch(key);
                dev.close();
            }
        };
    }

    /**
     * A client channel's health, polled by the watcher thread only. Both problems it reports are definite, so the
     * channel fails at once rather than a channel-grace later (issue 17): a failed queue fails every request from
     * then on (a fence, a stop, a lost claim never heal), and a backend heartbeat still for {@code
     * weft.cxl.dead-timeout} is the region's own debounced death verdict (the same one the janitors act on).
     *
     * <p>Stillness is judged by this probe's own readings of each queue's backend heartbeat, not by when the blkdev's
     * completion agent last looked: a counter the probe saw unchanged across a dead timeout of its own clock did not
     * move in that time, even if this JVM was paused in between (a paused observer must not declare a live backend
     * dead when it resumes). A live backend beats every {@code weft.cxl.heartbeat-interval}, so only a backend
     * silent for about the dead timeout (its process killed, frozen, or paused that long) is reported.
     */
    final class BlkdevHealth implements ChannelWatcher.Probe {
        private final CxlBlockDevice dev;
        private final long deadTimeoutNs;
        private final long[] lastBeat; // watcher thread only, like the rest of the state
        private final long[] beatChangedNs;

        BlkdevHealth(CxlBlockDevice dev, Duration deadTimeout, long nowNs) {
            this.dev = dev;
            this.deadTimeoutNs = deadTimeout.toNanos();
            this.lastBeat = new long[dev.queueCount()];
            this.beatChangedNs = new long[dev.queueCount()];
            for (int q = 0; q < lastBeat.length; q++) {
                lastBeat[q] = dev.backendHeartbeat(q);
                beatChangedNs[q] = nowNs;
            }
        }

        @Override
        public ChannelWatcher.Problem check() {
            synchronized (regionsGuard) { // the heartbeat words are in a region that close() unmaps
                return regionsClosed ? null : checkMapped();
            }
        }

        private ChannelWatcher.Problem checkMapped() {
            String failure = dev.firstFailure(); // polled per device several times a second: no list per poll
            if (failure != null) {
                return ChannelWatcher.Problem.definite("cxl channel failed: " + failure);
            }
            long now = System.nanoTime();
            for (int q = 0; q < lastBeat.length; q++) {
                long beat = dev.backendHeartbeat(q); // compared for change only: no value is trusted
                if (beat != lastBeat[q]) {
                    lastBeat[q] = beat;
                    beatChangedNs[q] = now;
                } else if (now - beatChangedNs[q] >= deadTimeoutNs) {
                    return ChannelWatcher.Problem.definite("cxl backend " + dev.backendId() + " heartbeat still for "
                            + TimeUnit.NANOSECONDS.toMillis(now - beatChangedNs[q]) + " ms on queue " + q
                            + " (weft.cxl.dead-timeout " + TimeUnit.NANOSECONDS.toMillis(deadTimeoutNs) + " ms)");
                }
            }
            return null;
        }
    }

    /** Frees what dead processes left in the regions (after two dead timeouts, so their peers noticed first). */
    private void clearDeadObjects() {
        long now = System.nanoTime();
        long wait = settings.cxlDeadTimeout().toNanos() * 2;
        for (Attached a : attached) {
            RegionGeometry g = a.region().geometry();
            clearDead(a, CxlRegion.Table.BLKDEV, g.maxBlkdevs(), now, wait);
            clearDead(a, CxlRegion.Table.BACKEND, g.maxBackends(), now, wait);
            clearDead(a, CxlRegion.Table.HOST, g.maxHosts(), now, wait);
        }
    }

    private static void clearDead(Attached a, CxlRegion.Table table, int slots, long now, long wait) {
        for (int slot = 0; slot < slots; slot++) {
            if (table == CxlRegion.Table.HOST && slot == a.host().slot()) {
                continue;
            }
            long key = ((long) table.ordinal() << 32) | slot;
            try {
                if (!a.host().isDead(table, slot)) {
                    a.deadSince().remove(key);
                    continue;
                }
                long since = a.deadSince().computeIfAbsent(key, k -> now);
                if (now - since >= wait) {
                    a.host().clearDead(table, slot);
                    a.deadSince().remove(key);
                    LOG.info("cleared dead CXL {} {} in {}", table, slot, a.path());
                }
            } catch (RuntimeException e) {
                // Revived or cleared by another node meanwhile: look again next round.
                a.deadSince().remove(key);
            }
        }
    }

    @Override
    public void close() {
        synchronized (regionsGuard) {
            regionsClosed = true; // a probe reading a segment right now finishes first; later ones read nothing
        }
        if (janitor != null) {
            janitor.shutdownNow();
        }
        for (Attached a : attached) {
            try {
                a.host().close();
            } finally {
                a.region().close();
            }
        }
        attached.clear();
    }
}
