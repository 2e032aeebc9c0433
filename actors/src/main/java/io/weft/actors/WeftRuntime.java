package io.weft.actors;

import com.typesafe.config.Config;
import io.weft.actors.client.ClientService;
import io.weft.actors.client.DeviceExporter;
import io.weft.actors.cluster.ClusterFormation;
import io.weft.actors.management.JmxPublisher;
import io.weft.actors.storage.StorageService;
import io.weft.actors.transport.TransportSettings;
import io.weft.actors.transport.Transports;
import java.net.URI;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.Address;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.actor.typed.javadsl.AskPattern;
import org.apache.pekko.actor.typed.receptionist.Receptionist;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.management.javadsl.PekkoManagement;

/**
 * The one entry point node-app (and the multi-JVM tests) start a Weft node through:
 * <pre>
 *   WeftRuntime node = WeftRuntime.start(config, exporter);   // exporter: new NbdServerExporter(nbd, "nbd://...")
 *   ...
 *   node.shutdown();                                            // leaves the cluster, stops everything
 * </pre>
 * {@code start} builds the Pekko config from {@code weft.*} ({@link PekkoConfig}), starts the actor system with
 * {@link WeftNode} as guardian, joins the cluster ({@link ClusterFormation}: the seeds, or itself), starts Pekko Management HTTP with the Weft
 * routes and registers the JMX MBeans. The operations below are what the HTTP routes and JMX call; they are safe
 * from any thread.
 */
public final class WeftRuntime implements AutoCloseable {
    private static final Map<org.apache.pekko.actor.ActorSystem, WeftRuntime> BY_SYSTEM = new ConcurrentHashMap<>();

    private final ActorSystem<WeftNode.Command> system;
    private final WeftSettings settings;
    private final NodeState nodeState;
    private final Transports transports;
    private final WeftNode.Services services;
    private volatile Optional<URI> httpUri = Optional.empty();
    private volatile JmxPublisher jmx;

    private WeftRuntime(ActorSystem<WeftNode.Command> system, WeftSettings settings, NodeState nodeState,
                        Transports transports, WeftNode.Services services) {
        this.system = system;
        this.settings = settings;
        this.nodeState = nodeState;
        this.transports = transports;
        this.services = services;
    }

    /** Starts a node with no device exporter (devices are reachable through the Java API only). */
    public static WeftRuntime start(Config config) {
        return start(config, DeviceExporter.none());
    }

    /**
     * Starts a node and returns once its services run, its HTTP endpoint is bound and it has asked to join.
     *
     * @param config   the whole config (the {@code weft} block plus anything else); missing keys take reference.conf
     * @param exporter how mapped devices are exported (node-app: an {@code NbdServerExporter})
     * @throws IllegalStateException when something does not come up within {@code weft.management.ask-timeout}
     */
    public static WeftRuntime start(Config config, DeviceExporter exporter) {
        Config pekko = PekkoConfig.build(config);
        WeftSettings settings = WeftSettings.from(pekko);
        if (!settings.enabledTransports().contains(settings.defaultTransport())) {
            throw new IllegalArgumentException("weft.transport.default = " + settings.defaultTransport()
                    + " is not in weft.transport.enabled " + settings.enabledTransports());
        }
        Transports transports = Transports.of(settings.enabledTransports(), TransportSettings.from(pekko));
        NodeState nodeState = new NodeState();
        ActorSystem<WeftNode.Command> system = ActorSystem.create(
                WeftNode.create(settings, nodeState, transports, exporter), PekkoConfig.systemName(config), pekko);
        // The RDMA server and CXL registrations live as long as the actor system (shutdown, or downed by the SBR).
        system.getWhenTerminated().thenRun(transports::close);
        try {
            Duration timeout = settings.askTimeout();
            WeftNode.Services services = AskPattern.<WeftNode.Command, WeftNode.Services>ask(system,
                    WeftNode.GetServices::new, timeout, system.scheduler()).toCompletableFuture()
                    .get(timeout.toMillis(), TimeUnit.MILLISECONDS);
            // Weft's seed procedure (ClusterFormation): a restarted first seed joins the running cluster.
            ClusterFormation.start(system, pekko);
            WeftRuntime runtime = new WeftRuntime(system, settings.withNodeName(services.nodeName()), nodeState,
                    transports, services);
            BY_SYSTEM.put(Adapter.toClassic(system), runtime);
            if (settings.httpEnabled()) {
                var bound = PekkoManagement.get(Adapter.toClassic(system)).start().toCompletableFuture()
                        .get(timeout.toMillis(), TimeUnit.MILLISECONDS);
                runtime.httpUri = Optional.of(URI.create(bound.toString()));
            }
            if (settings.jmxEnabled()) {
                runtime.jmx = JmxPublisher.start(runtime);
            }
            return runtime;
        } catch (Exception e) {
            system.terminate();
            BY_SYSTEM.remove(Adapter.toClassic(system));
            throw new IllegalStateException("weft node did not start: " + e, e);
        }
    }

    /** The runtime a management route or health check runs in. */
    public static Optional<WeftRuntime> of(org.apache.pekko.actor.ActorSystem classicSystem) {
        return Optional.ofNullable(BY_SYSTEM.get(classicSystem));
    }

    public ActorSystem<WeftNode.Command> system() {
        return system;
    }

    public WeftSettings settings() {
        return settings;
    }

    /** This node's {@code weft.node.name} (resolved when it was configured empty). */
    public String nodeName() {
        return services.nodeName();
    }

    /** This node's cluster address. */
    public Address clusterAddress() {
        return Cluster.get(system).selfMember().address();
    }

    /** Management HTTP base URI, when enabled. */
    public Optional<URI> httpUri() {
        return httpUri;
    }

    public NodeState state() {
        return nodeState;
    }

    /** The node's transports and their shared resources (RDMA server, CXL regions), for status and tests. */
    public Transports dataTransports() {
        return transports;
    }

    public List<String> transports() {
        return transports.names();
    }

    /** Maps a device on this (client) node. Completes when it is ready or the map failed. */
    public CompletionStage<Reply> map(MapSpec spec) {
        if (services.client().isEmpty()) {
            return CompletableFuture.completedFuture(Reply.error("node " + nodeName() + " has no client role"));
        }
        Duration timeout = settings.mapTimeout().plus(settings.askTimeout());
        return AskPattern.ask(services.client().get(), replyTo -> new ClientService.Map(spec, replyTo), timeout,
                system.scheduler());
    }

    /** Unmaps a device; {@code force} fails in-flight IO with EIO instead of waiting for it. */
    public CompletionStage<Reply> unmap(String deviceId, boolean force) {
        if (services.client().isEmpty()) {
            return CompletableFuture.completedFuture(Reply.error("node " + nodeName() + " has no client role"));
        }
        Duration timeout = settings.unmapDrainTimeout().plus(settings.askTimeout());
        return AskPattern.ask(services.client().get(), replyTo -> new ClientService.Unmap(deviceId, force, replyTo),
                timeout, system.scheduler());
    }

    /** Drops a device's path and opens it again. */
    public CompletionStage<Reply> remap(String deviceId) {
        if (services.client().isEmpty()) {
            return CompletableFuture.completedFuture(Reply.error("node " + nodeName() + " has no client role"));
        }
        return AskPattern.ask(services.client().get(), replyTo -> new ClientService.Remap(deviceId, replyTo),
                settings.askTimeout(), system.scheduler());
    }

    // ---- Mirror legs at run time (docs/mirror.md "Adding and removing legs") ----

    /**
     * Adds a leg to a mirrored device on this (client) node. Completes once the leg has opened and its full sync has
     * started in the background (or with the reason it was refused); the leg serves no reads until in sync.
     */
    public CompletionStage<Reply> addLeg(String deviceId, MapSpec.Leg leg) {
        if (services.client().isEmpty()) {
            return CompletableFuture.completedFuture(Reply.error("node " + nodeName() + " has no client role"));
        }
        Duration timeout = settings.mapTimeout().plus(settings.askTimeout());
        return AskPattern.ask(services.client().get(), replyTo -> new ClientService.AddLeg(deviceId, leg, replyTo),
                timeout, system.scheduler());
    }

    /** Removes the leg at {@code index} (as in the device status) from a mirrored device; never the last in-sync one. */
    public CompletionStage<Reply> removeLeg(String deviceId, int index) {
        if (services.client().isEmpty()) {
            return CompletableFuture.completedFuture(Reply.error("node " + nodeName() + " has no client role"));
        }
        return AskPattern.ask(services.client().get(),
                replyTo -> new ClientService.RemoveLeg(deviceId, index, replyTo), settings.askTimeout(),
                system.scheduler());
    }

    /**
     * Probes a device's data path: reads its first block through the device exactly as the NBD export would, and
     * reports the status and how long it took. While the device has no path the probe waits like any IO and fails
     * with EIO after the io-timeout. Allocates a buffer per call: an operator tool, not an IO path.
     */
    public CompletionStage<ProbeResult> probe(String deviceId) {
        NodeState.DeviceEntry e = nodeState.device(deviceId);
        if (e == null) {
            return CompletableFuture.completedFuture(null);
        }
        int length = e.device.info().logicalBlockSize();
        java.nio.ByteBuffer buffer = java.nio.ByteBuffer.allocate(length);
        CompletableFuture<ProbeResult> result = new CompletableFuture<>();
        long start = System.nanoTime();
        e.device.submit(io.weft.core.io.IoOp.READ, 0, length, 0, buffer, 0, (tag, status) ->
                result.complete(new ProbeResult(deviceId, io.weft.core.io.IoStatus.name(status), length,
                        (System.nanoTime() - start) / 1000, e.state.name().toLowerCase(java.util.Locale.ROOT))));
        return result;
    }

    /**
     * @param status        {@code OK} or the error name ({@code EIO}, {@code ENOTSUP}, ...)
     * @param bytes         bytes read
     * @param latencyMicros time to completion
     * @param stateAfter    device state when the probe completed
     */
    public record ProbeResult(String deviceId, String status, int bytes, long latencyMicros, String stateAfter) {
    }

    /** Resizes a backing store on a storage node (any node, by name); mapped clients learn the new size. */
    public CompletionStage<Reply> resize(String storageNode, String path, long newSize) {
        return onStorage(storageNode, replyTo -> new StorageService.Resize(path, newSize, replyTo));
    }

    /** Creates a sparse volume under an export root of a storage node. {@code size <= 0}: the node's default. */
    public CompletionStage<Reply> createVolume(String storageNode, String path, long size) {
        return onStorage(storageNode, replyTo -> new StorageService.CreateVolume(path, size, replyTo));
    }

    /** Storage nodes currently reachable, by name. */
    public CompletionStage<List<String>> storageNodes() {
        CompletionStage<Receptionist.Listing> listing = AskPattern.ask(system.receptionist(),
                replyTo -> Receptionist.find(StorageService.KEY, replyTo), settings.askTimeout(), system.scheduler());
        return listing.thenCompose(l -> {
            List<CompletableFuture<String>> names = l.getServiceInstances(StorageService.KEY).stream()
                    .map(ref -> AskPattern.<StorageService.Command, StorageService.BackendList>ask(ref,
                            StorageService.ListBackends::new, settings.askTimeout(), system.scheduler())
                            .thenApply(StorageService.BackendList::node).toCompletableFuture()
                            .exceptionally(t -> null))
                    .toList();
            return CompletableFuture.allOf(names.toArray(new CompletableFuture<?>[0]))
                    .thenApply(v -> names.stream().map(CompletableFuture::join)
                            .filter(java.util.Objects::nonNull).sorted().toList());
        });
    }

    private CompletionStage<Reply> onStorage(String storageNode,
                                             java.util.function.Function<ActorRef<Reply>, StorageService.Command> msg) {
        long deadline = System.nanoTime() + settings.storageLookupTimeout().toNanos();
        return findStorage(StorageService.keyFor(storageNode), deadline).thenCompose(ref -> ref == null
                ? CompletableFuture.completedFuture(Reply.error("storage node '" + storageNode
                        + "' not found in the cluster (check its weft.node.name, its storage role and that it is up)"))
                : AskPattern.ask(ref, msg::apply, settings.askTimeout(), system.scheduler()));
    }

    /** Looks a storage node up, retrying until the deadline: right after start-up the listing may not be in yet. */
    private CompletionStage<ActorRef<StorageService.Command>> findStorage(
            org.apache.pekko.actor.typed.receptionist.ServiceKey<StorageService.Command> key, long deadlineNanos) {
        CompletionStage<Receptionist.Listing> listing = AskPattern.ask(system.receptionist(),
                replyTo -> Receptionist.find(key, replyTo), settings.askTimeout(), system.scheduler());
        return listing.thenCompose(l -> {
            var refs = l.getServiceInstances(key);
            if (!refs.isEmpty()) {
                return CompletableFuture.completedFuture(refs.iterator().next());
            }
            if (System.nanoTime() - deadlineNanos > 0) {
                return CompletableFuture.completedFuture(null);
            }
            return CompletableFuture.supplyAsync(() -> null,
                            CompletableFuture.delayedExecutor(100, TimeUnit.MILLISECONDS))
                    .thenCompose(ignored -> findStorage(key, deadlineNanos));
        });
    }

    // ------------------------------------------------------------------ drills (issue 6, docs/drills.md)

    /** Starts a drill on this (client) node: answers once it runs, or why it cannot. */
    public CompletionStage<io.weft.actors.drill.DrillService.StartReply> startDrill(
            io.weft.actors.drill.DrillRequest request) {
        if (services.drills().isEmpty()) {
            return CompletableFuture.completedFuture(new io.weft.actors.drill.DrillService.Refused(404,
                    "node " + nodeName() + " has no client role, so no device " + request.device()));
        }
        // Kill and freeze ask the target which process it is first: two asks.
        return AskPattern.ask(services.drills().get(),
                replyTo -> new io.weft.actors.drill.DrillService.Start(request, replyTo),
                settings.askTimeout().multipliedBy(3), system.scheduler());
    }

    /** The last drills run on this node, oldest first (empty without the client role). */
    public CompletionStage<List<io.weft.actors.drill.DrillStatus>> drills() {
        if (services.drills().isEmpty()) {
            return CompletableFuture.completedFuture(List.of());
        }
        return AskPattern.ask(services.drills().get(), io.weft.actors.drill.DrillService.ListDrills::new,
                settings.askTimeout(), system.scheduler());
    }

    /** One drill's status, if this node ran it recently. */
    public CompletionStage<Optional<io.weft.actors.drill.DrillStatus>> drill(String id) {
        if (services.drills().isEmpty()) {
            return CompletableFuture.completedFuture(Optional.empty());
        }
        return AskPattern.ask(services.drills().get(),
                replyTo -> new io.weft.actors.drill.DrillService.GetDrill(id, replyTo),
                settings.askTimeout(), system.scheduler());
    }

    /** Waits until this node is an Up member of the cluster; false if it is not within {@code timeout}. */
    public boolean awaitUp(Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        Cluster cluster = Cluster.get(system);
        while (cluster.selfMember().status() != org.apache.pekko.cluster.MemberStatus.up()) {
            if (System.nanoTime() - deadline > 0) {
                return false;
            }
            try {
                Thread.sleep(20);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            }
        }
        return true;
    }

    /** Leaves the cluster and stops the actor system; returns when it has terminated (bounded by ask-timeout). */
    public void shutdown() {
        BY_SYSTEM.remove(Adapter.toClassic(system));
        JmxPublisher published = jmx;
        if (published != null) {
            published.close();
        }
        system.terminate();
        try {
            system.getWhenTerminated().toCompletableFuture().get(settings.askTimeout().toMillis(),
                    TimeUnit.MILLISECONDS);
        } catch (Exception e) {
            // The JVM is exiting or the test is done: nothing more to do than report.
            system.log().warn("actor system did not terminate in time: {}", e.toString());
        }
    }

    @Override
    public void close() {
        shutdown();
    }

    /** Completes when the actor system has terminated (e.g. after the node was downed). */
    public CompletionStage<?> whenTerminated() {
        return system.getWhenTerminated();
    }
}
