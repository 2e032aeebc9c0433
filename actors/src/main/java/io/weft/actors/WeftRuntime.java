package io.weft.actors;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigValueFactory;
import io.weft.actors.client.ClientService;
import io.weft.actors.client.DeviceExporter;
import io.weft.actors.client.DeviceRegistry;
import io.weft.actors.cluster.ClusterDirectory;
import io.weft.actors.cluster.ClusterFormation;
import io.weft.actors.management.ClusterTokenActor;
import io.weft.actors.management.JmxPublisher;
import io.weft.actors.management.ManagementToken;
import io.weft.actors.management.NodeOperations;
import io.weft.actors.management.SignIn;
import io.weft.actors.protocol.BackendList;
import io.weft.actors.protocol.CreateVolume;
import io.weft.actors.protocol.ListBackends;
import io.weft.actors.protocol.ResizeStore;
import io.weft.actors.protocol.StorageServiceCommand;
import io.weft.actors.security.NetworkExposure;
import io.weft.actors.transport.TransportSettings;
import io.weft.actors.transport.Transports;
import io.weft.core.retry.Backoff;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.pekko.actor.Address;
import org.apache.pekko.actor.CoordinatedShutdown;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Props;
import org.apache.pekko.actor.typed.SupervisorStrategy;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.actor.typed.javadsl.AskPattern;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.management.javadsl.PekkoManagement;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The one entry point node-app (and the multi-JVM tests) start a Weft node through:
 * <pre>
 *   WeftRuntime node = WeftRuntime.start(config, exporter);   // exporter: new NbdServerExporter(nbd, "nbd://...")
 *   ...
 *   node.shutdown();                                            // leaves the cluster, stops everything
 * </pre>
 * {@code start} builds the Pekko config from {@code weft.*} ({@link PekkoConfig}), starts the actor system with
 * {@link NodeGuardian} as guardian, joins the cluster ({@link ClusterFormation}: the seeds, or itself), starts Pekko
 * Management HTTP with the Weft routes and registers the JMX MBeans. The operations below are what the HTTP routes and
 * JMX call; they are safe from any thread.
 *
 * <p><b>Incarnations.</b> This object is the node; an actor system is one <em>incarnation</em> of it. What must
 * outlive a membership change is created here, once per process, not by an actor: the transports (RDMA server, CXL
 * regions), the {@link NodeState}, the exporter and the {@link DeviceRegistry} (the node's record of its mappings and
 * owner of their data plane: queueing devices, NBD exports). When the cluster downs or removes the node, its actor
 * system terminates; the devices keep their exports and queue IO, and this object starts a new incarnation in the
 * same process after a backoff ({@code weft.node.rejoin.min-backoff}, doubling up to {@code max-backoff} while a
 * start fails) with the same configuration and ports. It joins the cluster again (seed nodes, or itself), its
 * client service adopts the running devices, which re-open their mappings once the storage node is reachable; HTTP
 * and JMX come back with it. Only {@link #shutdown} ends the node.
 *
 * <p>Over 600 lines because it is two things that share the incarnation: the lifecycle above, and the node's
 * operations facade — one short method per HTTP route and JMX operation, each an ask of the current incarnation's
 * actors ({@code management.NodeOperations} is the part JMX sees).
 */
public final class WeftRuntime implements NodeOperations, AutoCloseable {
    private static final Map<org.apache.pekko.actor.ActorSystem, WeftRuntime> BY_SYSTEM = new ConcurrentHashMap<>();
    private static final Logger LOG = LoggerFactory.getLogger(WeftRuntime.class);

    /** One actor-system incarnation of the node and what lives exactly as long as it: HTTP and JMX. */
    private static final class Incarnation {
        final int number;
        final ActorSystem<NodeGuardian.Command> system;
        final NodeGuardian.Services services;
        volatile Optional<URI> httpUri = Optional.empty();
        volatile JmxPublisher jmx;
        /** Set once by whichever comes first: its system terminated, or the node gave up waiting for that. */
        final AtomicBoolean ended = new AtomicBoolean();

        Incarnation(int number, ActorSystem<NodeGuardian.Command> system, NodeGuardian.Services services) {
            this.number = number;
            this.system = system;
            this.services = services;
        }
    }

    private final String systemName;
    private final WeftSettings configured;
    private final NodeState nodeState;
    private final Transports transports;
    private final DeviceExporter exporter;
    private final DeviceRegistry registry;
    private final ManagementToken managementToken;
    private final SignIn signIn = new SignIn();
    /**
     * The wait before the next incarnation starts ({@code weft.node.rejoin.*}): reset when one ends, advanced by each
     * start that fails. Used by the thread that saw the end, then only by the rejoiner thread (one after the other).
     */
    private final Backoff rejoinBackoff;
    private final Duration rejoinTerminationTimeout;
    private final CompletableFuture<Void> terminated = new CompletableFuture<>();
    private final ScheduledExecutorService rejoiner;
    /** The console's per-device ring of IO samples (docs/console.md); lives as long as the node. */
    private final io.weft.actors.management.DeviceSampler sampler;
    /** The config each incarnation starts with: the first one's, with the ports it bound pinned. */
    private volatile Config pekko;
    private volatile Incarnation current;
    /** True between the end of an incarnation and the start of the next (no device actor ticks meanwhile). */
    private volatile boolean between;
    private volatile WeftSettings settings;
    private boolean stopping;

    private WeftRuntime(Config pekko, String systemName, WeftSettings settings, NodeState nodeState,
                        Transports transports, DeviceExporter exporter, DeviceRegistry registry,
                        ManagementToken managementToken) {
        this.pekko = pekko;
        this.managementToken = managementToken;
        this.systemName = systemName;
        this.configured = settings;
        this.settings = settings;
        this.nodeState = nodeState;
        this.transports = transports;
        this.exporter = exporter;
        this.registry = registry;
        this.rejoinBackoff = Backoff.exponential(pekko.getDuration("weft.node.rejoin.min-backoff"),
                pekko.getDuration("weft.node.rejoin.max-backoff"));
        this.rejoinTerminationTimeout = pekko.getDuration("weft.node.rejoin.termination-timeout");
        this.sampler = new io.weft.actors.management.DeviceSampler(nodeState,
                pekko.getInt("weft.management.console.samples"),
                pekko.getDuration("weft.management.console.sample-interval"), System::currentTimeMillis);
        this.rejoiner = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "weft-rejoin");
            t.setDaemon(true);
            return t;
        });
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
        NetworkExposure.check(pekko);
        WeftSettings settings = WeftSettings.from(pekko);
        if (!settings.enabledTransports().contains(settings.defaultTransport())) {
            throw new IllegalArgumentException("weft.transport.default = " + settings.defaultTransport()
                    + " is not in weft.transport.enabled " + settings.enabledTransports());
        }
        Transports transports = Transports.of(settings.enabledTransports(), TransportSettings.from(pekko));
        NodeState nodeState = new NodeState();
        // weft.data-dir is node-app's key: a bare control-plane node (tests) keeps no record file.
        Optional<Path> record = pekko.hasPath("weft.data-dir")
                ? Optional.of(settings.dataDir().resolve(DeviceRegistry.FILE_NAME)) : Optional.empty();
        DeviceRegistry registry = new DeviceRegistry(nodeState, exporter, record);
        ManagementToken token;
        try {
            token = managementToken(pekko, settings);
        } catch (RuntimeException e) {
            transports.close();
            throw e;
        }
        WeftRuntime runtime = new WeftRuntime(pekko, PekkoConfig.systemName(config), settings, nodeState,
                transports, exporter, registry, token);
        try {
            runtime.startIncarnation(1);
            runtime.sampler.start();
        } catch (RuntimeException e) {
            runtime.rejoiner.shutdownNow();
            token.unpublish();
            transports.close();
            throw e;
        }
        return runtime;
    }

    /**
     * The node's management token (docs/security.md "Management"): explicit, from the data dir, generated now by a
     * node that forms a cluster of its own, or later from the cluster ({@link ClusterTokenActor}).
     */
    private static ManagementToken managementToken(Config pekko, WeftSettings settings) {
        // weft.data-dir is node-app's key: a bare control-plane node (tests) keeps no token file, only the runtime one.
        Optional<Path> dataDir = pekko.hasPath("weft.data-dir") ? Optional.of(settings.dataDir()) : Optional.empty();
        String runtime = pekko.getString("weft.management.http.runtime-dir");
        Optional<Path> runtimeDir = runtime.equals("off") ? Optional.empty()
                : Optional.of(runtime.isEmpty() ? ManagementToken.defaultRuntimeDir(System.getenv())
                        : Path.of(runtime));
        boolean formsOwnCluster = pekko.getStringList("weft.cluster.seed-nodes").isEmpty();
        return ManagementToken.load(settings.httpToken(), dataDir, runtimeDir, formsOwnCluster);
    }

    /**
     * Starts incarnation {@code number}: actor system, services, join, HTTP, JMX. On failure whatever it started is
     * terminated again and the exception thrown.
     */
    private synchronized void startIncarnation(int number) {
        if (stopping) {
            return;
        }
        ActorSystem<NodeGuardian.Command> system = ActorSystem.create(
                NodeGuardian.create(configured, nodeState, transports, exporter, registry), systemName, pekko);
        try {
            Duration timeout = configured.askTimeout();
            NodeGuardian.Services services = AskPattern.<NodeGuardian.Command, NodeGuardian.Services>ask(system,
                    NodeGuardian.GetServices::new, timeout, system.scheduler()).toCompletableFuture()
                    .get(timeout.toMillis(), TimeUnit.MILLISECONDS);
            // Weft's seed procedure (ClusterFormation): a restarted first seed joins the running cluster.
            ClusterFormation.start(system, pekko);
            system.systemActorOf(Behaviors.supervise(ClusterTokenActor.create(managementToken))
                    .onFailure(SupervisorStrategy.restart()), NodeServices.MANAGEMENT_TOKEN.name(), Props.empty());
            Incarnation incarnation = new Incarnation(number, system, services);
            settings = configured.withNodeName(services.nodeName());
            BY_SYSTEM.put(Adapter.toClassic(system), this);
            current = incarnation;
            if (configured.httpEnabled()) {
                var bound = PekkoManagement.get(Adapter.toClassic(system)).start().toCompletableFuture()
                        .get(timeout.toMillis(), TimeUnit.MILLISECONDS);
                incarnation.httpUri = Optional.of(URI.create(bound.toString()));
                managementToken.publish(configured.httpHostname(), incarnation.httpUri.get().getPort());
            }
            if (configured.jmxEnabled()) {
                incarnation.jmx = JmxPublisher.start(this);
            }
            pinPorts(incarnation);
            between = false;
            system.getWhenTerminated().thenRun(() -> onIncarnationEnded(incarnation));
            CoordinatedShutdown.get(Adapter.toClassic(system)).addTask(
                    CoordinatedShutdown.PhaseBeforeActorSystemTerminate(), "weft-bound-incarnation-end", () -> {
                        watchTermination(incarnation);
                        return CompletableFuture.completedFuture(org.apache.pekko.Done.getInstance());
                    });
        } catch (Exception e) {
            registry.abandoning(system);
            system.terminate();
            BY_SYSTEM.remove(Adapter.toClassic(system));
            throw new IllegalStateException("weft node did not start: " + e, e);
        }
    }

    /** Later incarnations bind the ports this one did (a port configured 0 is picked once per process). */
    private void pinPorts(Incarnation incarnation) {
        Config pinned = pekko;
        var address = Cluster.get(incarnation.system).selfMember().address();
        if (address.port().isDefined()) {
            pinned = pinned.withValue("pekko.remote.artery.canonical.port",
                    ConfigValueFactory.fromAnyRef(address.port().get()));
        }
        if (incarnation.httpUri.isPresent()) {
            pinned = pinned.withValue("pekko.management.http.port",
                    ConfigValueFactory.fromAnyRef(incarnation.httpUri.get().getPort()));
        }
        pekko = pinned;
    }

    /**
     * A downed or removed incarnation's system is about to terminate: if it has not within
     * {@code weft.node.rejoin.termination-timeout}, the node stops waiting for it. Artery's TLS connections close
     * only when the peer closes them (Pekko's {@code IgnoreComplete}): an outbound connection to a live member can
     * stay open after its stream ended, and Artery unbinds the cluster port only once every stream completed, with no
     * deadline (Pekko 1.7) - so the old system may never terminate and the next incarnation could never bind the
     * port. The node then releases the old system's sockets itself ({@link #releaseSockets}) and starts the next
     * incarnation; the old system's threads are left to finish (or not) on their own.
     */
    private void watchTermination(Incarnation incarnation) {
        if (stopping || !DeviceRegistry.membershipEnded(incarnation.system)) {
            return;
        }
        try {
            rejoiner.schedule(() -> {
                if (incarnation.ended.get() || stopping) {
                    return;
                }
                LOG.warn("weft node '{}': actor-system incarnation {} did not terminate within {} ms of being "
                        + "downed or removed; releasing its sockets and starting the next incarnation without it",
                        settings.nodeName(), incarnation.number, rejoinTerminationTimeout.toMillis());
                releaseSockets(incarnation.system);
                onIncarnationEnded(incarnation);
            }, rejoinTerminationTimeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.RejectedExecutionException e) {
            // The node has finished: nothing to start.
        }
    }

    /**
     * Closes every TCP socket {@code system} still holds through Pekko IO (Artery's cluster port and connections,
     * the management HTTP port): listeners are unbound, connections aborted (reset), which also fails the streams
     * that held the old system's termination up. Commands other than a socket's own are ignored by it.
     */
    private static void releaseSockets(ActorSystem<?> system) {
        var sockets = Adapter.toClassic(system).actorSelection("/system/IO-TCP/selectors/*/*");
        sockets.tell(org.apache.pekko.io.TcpMessage.unbind(), org.apache.pekko.actor.ActorRef.noSender());
        sockets.tell(org.apache.pekko.io.TcpMessage.abort(), org.apache.pekko.actor.ActorRef.noSender());
    }

    /** An incarnation's actor system terminated: the end of the node, or (downed, removed) the start of the next. */
    private void onIncarnationEnded(Incarnation ended) {
        if (!ended.ended.compareAndSet(false, true)) {
            return; // already ended by the termination watch, or the system terminated after it
        }
        BY_SYSTEM.remove(Adapter.toClassic(ended.system));
        JmxPublisher published = ended.jmx;
        if (published != null) {
            published.close();
        }
        boolean membershipEnded = DeviceRegistry.membershipEnded(ended.system);
        synchronized (this) {
            if (!stopping && !membershipEnded) {
                // Not the cluster's doing (the JVM exits, or the guardian failed): the node ends here.
                stopping = true;
                registry.stopping();
                LOG.warn("weft node '{}': actor system terminated ({}); the node stops", settings.nodeName(),
                        CoordinatedShutdown.get(Adapter.toClassic(ended.system)).getShutdownReason()
                                .map(Object::toString).orElse("no reason given"));
            }
            if (!stopping) {
                between = true;
                rejoinBackoff.reset();
                Duration first = rejoinBackoff.nextDelay();
                LOG.warn("weft node '{}': actor-system incarnation {} ended (downed or removed from the cluster); "
                        + "devices keep their exports and queue IO (up to {} ms); starting incarnation {} in {} ms",
                        settings.nodeName(), ended.number, configured.ioTimeout().toMillis(), ended.number + 1,
                        first.toMillis());
                scheduleIncarnation(ended.number + 1, first);
                scheduleOrphanExpiry();
                return;
            }
        }
        finish();
    }

    private void scheduleIncarnation(int number, Duration delay) {
        rejoiner.schedule(() -> {
            try {
                startIncarnation(number);
                if (!stopping) {
                    LOG.info("weft node '{}': incarnation {} started; rejoining the cluster, devices re-open their "
                            + "mappings", settings.nodeName(), number);
                }
            } catch (RuntimeException e) {
                Duration next = rejoinBackoff.nextDelay();
                LOG.warn("weft node '{}': incarnation {} did not start ({}); trying again in {} ms",
                        settings.nodeName(), number, e.toString(), next.toMillis());
                scheduleIncarnation(number, next);
            }
        }, delay.toMillis(), TimeUnit.MILLISECONDS);
    }

    /** Between incarnations no device actor fails expired IO: this does, so no request waits past the io-timeout. */
    private void scheduleOrphanExpiry() {
        long tick = Math.max(20, Math.min(1000, configured.ioTimeout().toMillis() / 4));
        rejoiner.schedule(() -> {
            if (between && !stopping) {
                registry.expireOrphans(System.nanoTime());
                scheduleOrphanExpiry();
            }
        }, tick, TimeUnit.MILLISECONDS);
    }

    /** The last incarnation has ended: release the data plane (devices, exports) and the transports. */
    private void finish() {
        managementToken.unpublish();
        registry.closeAll();
        transports.close();
        rejoiner.shutdownNow();
        sampler.close();
        terminated.complete(null);
    }

    /** The runtime a management route or health check runs in. */
    public static Optional<WeftRuntime> of(org.apache.pekko.actor.ActorSystem classicSystem) {
        return Optional.ofNullable(BY_SYSTEM.get(classicSystem));
    }

    /** The current incarnation's actor system (a terminated one between two incarnations). */
    @Override
    public ActorSystem<NodeGuardian.Command> system() {
        return current.system;
    }

    /** The current actor-system incarnation: 1 for the first, one more each time the node was downed and rejoined. */
    public int incarnation() {
        return current.number;
    }

    /** The node's record of its mappings and owner of their data plane. */
    public DeviceRegistry registry() {
        return registry;
    }

    @Override
    public WeftSettings settings() {
        return settings;
    }

    /** What {@code Authorization: Bearer} must carry (docs/security.md, "Management"). */
    public ManagementToken managementToken() {
        return managementToken;
    }

    /** The console's one-time sign-in codes and browser sessions. */
    public SignIn signIn() {
        return signIn;
    }

    /** This node's {@code weft.node.name} (resolved when it was configured empty). */
    @Override
    public String nodeName() {
        return current.services.nodeName();
    }

    /** This node's cluster address. */
    public Address clusterAddress() {
        return Cluster.get(system()).selfMember().address();
    }

    /** Management HTTP base URI, when enabled. */
    public Optional<URI> httpUri() {
        return current.httpUri;
    }

    @Override
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

    /** The last minutes of every device's IO, one sample per interval (the console's charts). */
    public io.weft.actors.management.DeviceSampler samples() {
        return sampler;
    }

    /** Maps a device on this (client) node. Completes when it is ready or the map failed. */
    @Override
    public CompletionStage<Reply> map(MapSpec spec) {
        if (services().client().isEmpty()) {
            return CompletableFuture.completedFuture(Reply.error("node " + nodeName() + " has no client role"));
        }
        Duration timeout = settings.mapTimeout().plus(settings.askTimeout());
        return AskPattern.ask(services().client().get(), replyTo -> new ClientService.Map(spec, replyTo), timeout,
                system().scheduler());
    }

    /** Unmaps a device; {@code force} fails in-flight IO with EIO instead of waiting for it. */
    @Override
    public CompletionStage<Reply> unmap(String deviceId, boolean force) {
        if (services().client().isEmpty()) {
            return CompletableFuture.completedFuture(Reply.error("node " + nodeName() + " has no client role"));
        }
        Duration timeout = settings.unmapDrainTimeout().plus(settings.askTimeout());
        return AskPattern.ask(services().client().get(), replyTo -> new ClientService.Unmap(deviceId, force, replyTo),
                timeout, system().scheduler());
    }

    /** Drops a device's path and opens it again. */
    @Override
    public CompletionStage<Reply> remap(String deviceId) {
        if (services().client().isEmpty()) {
            return CompletableFuture.completedFuture(Reply.error("node " + nodeName() + " has no client role"));
        }
        return AskPattern.ask(services().client().get(), replyTo -> new ClientService.Remap(deviceId, replyTo),
                settings.askTimeout(), system().scheduler());
    }

    // ---- Mirror legs at run time (docs/mirror.md "Adding and removing legs") ----

    /**
     * Adds a leg to a mirrored device on this (client) node. Completes once the leg has opened and its full sync has
     * started in the background (or with the reason it was refused); the leg serves no reads until in sync.
     */
    @Override
    public CompletionStage<Reply> addLeg(String deviceId, MapSpec.Leg leg) {
        if (services().client().isEmpty()) {
            return CompletableFuture.completedFuture(Reply.error("node " + nodeName() + " has no client role"));
        }
        Duration timeout = settings.mapTimeout().plus(settings.askTimeout());
        return AskPattern.ask(services().client().get(), replyTo -> new ClientService.AddLeg(deviceId, leg, replyTo),
                timeout, system().scheduler());
    }

    /**
     * Removes the leg at {@code index} (as in the device status) from a mirrored device; never the last in-sync one.
     */
    @Override
    public CompletionStage<Reply> removeLeg(String deviceId, int index) {
        if (services().client().isEmpty()) {
            return CompletableFuture.completedFuture(Reply.error("node " + nodeName() + " has no client role"));
        }
        return AskPattern.ask(services().client().get(),
                replyTo -> new ClientService.RemoveLeg(deviceId, index, replyTo), settings.askTimeout(),
                system().scheduler());
    }

    /**
     * Resyncs the leg at {@code index} of a mirrored device from an in-sync leg ({@code full}: every region). Answered
     * once the copy has started in the background; refused for the only in-sync leg, which is the source.
     */
    @Override
    public CompletionStage<Reply> resyncLeg(String deviceId, int index, boolean full) {
        if (services().client().isEmpty()) {
            return CompletableFuture.completedFuture(Reply.error("node " + nodeName() + " has no client role"));
        }
        return AskPattern.ask(services().client().get(),
                replyTo -> new ClientService.ResyncLeg(deviceId, index, full, replyTo), settings.askTimeout(),
                system().scheduler());
    }

    /**
     * Probes a device's data path: reads its first block through the device exactly as the NBD export would, and
     * reports the status and how long it took. While the device has no path the probe waits like any IO and fails
     * with EIO after the io-timeout. Allocates a buffer per call: an operator tool, not an IO path.
     */
    @Override
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
                        (System.nanoTime() - start) / 1000,
                        e.snapshot().state().name().toLowerCase(java.util.Locale.ROOT))));
        return result;
    }

    /** Resizes a backing store on a storage node (any node, by name); mapped clients learn the new size. */
    @Override
    public CompletionStage<Reply> resize(String storageNode, String path, long newSize) {
        return onStorage(storageNode, replyTo -> new ResizeStore(path, newSize, replyTo));
    }

    /** Creates a sparse volume under an export root of a storage node. {@code size <= 0}: the node's default. */
    @Override
    public CompletionStage<Reply> createVolume(String storageNode, String path, long size) {
        return onStorage(storageNode, replyTo -> new CreateVolume(path, size, replyTo));
    }

    /** Storage nodes currently reachable, by name: those whose storage service answers. */
    public CompletionStage<List<String>> storageNodes() {
        List<CompletableFuture<String>> names = ClusterDirectory.snapshot(system()).find(NodeServices.STORAGE).stream()
                .map(located -> AskPattern.<StorageServiceCommand, BackendList>ask(located.ref(),
                        ListBackends::new, settings.askTimeout(), system().scheduler())
                        .thenApply(BackendList::node).toCompletableFuture()
                        .exceptionally(t -> null))
                .toList();
        return CompletableFuture.allOf(names.toArray(new CompletableFuture<?>[0]))
                .thenApply(v -> names.stream().map(CompletableFuture::join)
                        .filter(java.util.Objects::nonNull).sorted().toList());
    }

    private CompletionStage<Reply> onStorage(String storageNode,
                                             java.util.function.Function<ActorRef<Reply>, StorageServiceCommand> msg) {
        long deadline = System.nanoTime() + settings.storageLookupTimeout().toNanos();
        return findStorage(storageNode, deadline).thenCompose(ref -> ref == null
                ? CompletableFuture.completedFuture(Reply.error("storage node '" + storageNode
                        + "' not found in the cluster (check its weft.node.name, its storage role and that it is up)"))
                : AskPattern.ask(ref, msg::apply, settings.askTimeout(), system().scheduler()));
    }

    /** Looks a storage node up, retrying until the deadline: right after start-up it may not be Up yet. */
    private CompletionStage<ActorRef<StorageServiceCommand>> findStorage(String storageNode, long deadlineNanos) {
        var found = ClusterDirectory.snapshot(system()).findOne(NodeServices.STORAGE, storageNode);
        if (found.isPresent()) {
            return CompletableFuture.completedFuture(found.get().ref());
        }
        if (System.nanoTime() - deadlineNanos > 0) {
            return CompletableFuture.completedFuture(null);
        }
        return CompletableFuture.supplyAsync(() -> null, CompletableFuture.delayedExecutor(100, TimeUnit.MILLISECONDS))
                .thenCompose(ignored -> findStorage(storageNode, deadlineNanos));
    }

    // ------------------------------------------------------------------ drills (issue 6, docs/drills.md)

    /** Starts a drill on this (client) node: answers once it runs, or why it cannot. */
    public CompletionStage<io.weft.actors.drill.DrillService.StartReply> startDrill(
            io.weft.actors.drill.DrillRequest request) {
        if (services().drills().isEmpty()) {
            return CompletableFuture.completedFuture(new io.weft.actors.drill.DrillService.Refused(404,
                    "node " + nodeName() + " has no client role, so no device " + request.device()));
        }
        // Kill and freeze ask the target which process it is first: two asks.
        return AskPattern.ask(services().drills().get(),
                replyTo -> new io.weft.actors.drill.DrillService.Start(request, replyTo),
                settings.askTimeout().multipliedBy(3), system().scheduler());
    }

    /**
     * Compares the legs of mirrored device {@code device} block by block over {@code [0, length)} ({@code length}
     * -1: the whole device), each leg read directly (docs/drills.md, "Leg comparison").
     */
    public CompletionStage<io.weft.actors.drill.DrillService.CompareReply> compareLegs(String device, long length) {
        if (services().drills().isEmpty()) {
            return CompletableFuture.completedFuture(new io.weft.actors.drill.DrillService.Refused(404,
                    "node " + nodeName() + " has no client role, so no device " + device));
        }
        return AskPattern.ask(services().drills().get(),
                replyTo -> new io.weft.actors.drill.DrillService.CompareLegs(device, length, replyTo),
                settings.askTimeout(), system().scheduler());
    }

    /** The last drills run on this node, oldest first (empty without the client role). */
    public CompletionStage<List<io.weft.actors.drill.DrillStatus>> drills() {
        if (services().drills().isEmpty()) {
            return CompletableFuture.completedFuture(List.of());
        }
        return AskPattern.ask(services().drills().get(), io.weft.actors.drill.DrillService.ListDrills::new,
                settings.askTimeout(), system().scheduler());
    }

    /** One drill's status, if this node ran it recently. */
    public CompletionStage<Optional<io.weft.actors.drill.DrillStatus>> drill(String id) {
        if (services().drills().isEmpty()) {
            return CompletableFuture.completedFuture(Optional.empty());
        }
        return AskPattern.ask(services().drills().get(),
                replyTo -> new io.weft.actors.drill.DrillService.GetDrill(id, replyTo),
                settings.askTimeout(), system().scheduler());
    }

    /** Waits until this node is an Up member of the cluster; false if it is not within {@code timeout}. */
    public boolean awaitUp(Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (Cluster.get(system()).selfMember().status() != org.apache.pekko.cluster.MemberStatus.up()) {
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

    private NodeGuardian.Services services() {
        return current.services;
    }

    /**
     * Leaves the cluster and stops the actor system, then closes the devices, their exports and the transports;
     * returns when done (bounded by ask-timeout). No new incarnation starts afterwards.
     */
    public void shutdown() {
        Incarnation last;
        synchronized (this) {
            if (stopping) {
                last = null;
            } else {
                stopping = true;
                registry.stopping();
                last = current;
            }
        }
        if (last == null) {
            awaitTerminated();
            return;
        }
        BY_SYSTEM.remove(Adapter.toClassic(last.system));
        if (last.ended.get() || last.system.getWhenTerminated().toCompletableFuture().isDone()) {
            // Between two incarnations: nothing will end this one again.
            finish();
        } else {
            last.system.terminate();
        }
        awaitTerminated();
    }

    private void awaitTerminated() {
        try {
            terminated.get(settings.askTimeout().toMillis(), TimeUnit.MILLISECONDS);
        } catch (Exception e) {
            // The JVM is exiting or the test is done: nothing more to do than report.
            LOG.warn("weft node '{}': actor system did not terminate in time: {}", settings.nodeName(), e.toString());
        }
    }

    @Override
    public void close() {
        shutdown();
    }

    /** Completes when the node has stopped for good ({@link #shutdown}); a downed node's incarnations do not. */
    public CompletionStage<?> whenTerminated() {
        return terminated;
    }
}
