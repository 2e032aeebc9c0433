package io.weft.multijvm;

import static io.weft.testkit.Await.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.weft.core.process.ChildJvm;
import io.weft.node.cli.WeftMain;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import javax.management.MBeanServerConnection;
import javax.management.ObjectName;
import javax.management.remote.JMXConnector;
import javax.management.remote.JMXConnectorFactory;
import javax.management.remote.JMXServiceURL;

/**
 * One Weft node in a child JVM on loopback, started as a user starts one: node-app's entry point ({@code weft node},
 * {@link WeftMain}) with {@code --config FILE}, through the one launcher ({@link ChildJvm}). The test's settings
 * (the caller's HOCON plus {@link #testSettings}: ports picked by binding port 0 first, no volumes of its own, the
 * token in the test's runtime directory) go in {@code <dir>/<name>-<n>.conf}; the node's data directory is
 * {@link #dataDir} (kept across incarnations); the NBD listener takes a free port and no Unix
 * socket. Output goes to {@code <dir>/<name>-<n>.log}; the node is ready when it prints {@code weft node ready:}
 * there, the line that tells where its NBD, HTTP and cluster endpoints are.
 *
 * <p>A node may be killed and started again by someone else (a kill drill restarts it from the client node's JVM
 * with the same command line): it keeps its ports, so {@link #refreshPid()} asks it for its current pid and every
 * pid it ever had is remembered for {@link #killAll}.
 */
final class NodeProcess {
    private static final ObjectMapper JSON = new ObjectMapper();
    /**
     * Until the ready line: 180 s, as {@code weft demo} waits (90 s with the former NodeMain; on a loaded 2-core
     * machine a node's JVM took 25 s from its NBD listener to Pekko's start, and its ready line came after 90 s).
     */
    static final Duration START_TIMEOUT = Duration.ofSeconds(180);
    private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    /** The line {@code weft node} prints last when it is up (WeftNode#printWelcome). */
    static final String READY_LINE = "weft node ready:";

    final String name;
    final ChildJvm process;
    final Path log;
    final int jmxPort;
    /** name, address (cluster host:port), http (URI), pid, nbd (host:port): from the config and the ready line. */
    final Properties ready = new Properties();
    private final Path runtimeDir;
    /** The pid of the node's current incarnation (this process, or one a drill restarted). */
    private volatile long pid;
    /** Every pid this node has had, for the final clean-up. */
    private final Set<Long> pids = ConcurrentHashMap.newKeySet();

    private NodeProcess(String name, ChildJvm process, Path log, int jmxPort, Path runtimeDir) {
        this.runtimeDir = runtimeDir;
        this.name = name;
        this.process = process;
        this.log = log;
        this.jmxPort = jmxPort;
        this.pid = process.pid();
        pids.add(pid);
    }

    static Path runtimeDir(Path dir) {
        return dir.toAbsolutePath().resolve("runtime");
    }

    /**
     * {@code Bearer <token>}: the management token the node left for its HTTP address in the runtime directory. A
     * node that joined a cluster receives the cluster's token a moment after it is up: waits for it (up to 30 s).
     */
    String bearer() {
        URI http = http();
        java.util.concurrent.atomic.AtomicReference<String> token = new java.util.concurrent.atomic.AtomicReference<>();
        await(name + " has left its management token in " + runtimeDir, Duration.ofSeconds(30), () -> {
            token.set(io.weft.actors.management.ManagementToken.findForAddress(runtimeDir, http.getHost(),
                    http.getPort()).orElse(null));
            return token.get() != null;
        });
        return "Bearer " + token.get();
    }

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    /**
     * @param hocon       the node's {@code weft { ... }} config (ports are added here)
     * @param clusterPort its cluster port, or 0 to pick a free one
     */
    static NodeProcess start(Path dir, String name, int incarnation, String hocon, int clusterPort)
            throws Exception {
        // A port picked free can be taken by another test on this machine before the child binds it: try again
        // with new ports (the cluster port too, unless the caller needs that one: a restart keeps its address).
        for (int attempt = 1; ; attempt++) {
            int port = clusterPort == 0 ? freePort() : clusterPort;
            try {
                return startOnce(dir, name, incarnation, hocon, port);
            } catch (PortTaken e) {
                if (attempt == 3) {
                    throw new AssertionError(e.getMessage());
                }
                System.out.println("[node] " + name + ": a port was taken meanwhile, starting again (" + attempt
                        + ")");
            }
        }
    }

    /** The child exited at start-up because a port it was given is in use. */
    private static final class PortTaken extends Exception {
        PortTaken(String message) {
            super(message);
        }
    }

    /**
     * What every test node gets on top of its own HOCON: its cluster and HTTP ports, no {@code weft.volumes} (a
     * node with both roles would otherwise create and map vol0), and the management token left in {@code
     * <dir>/runtime} (instead of the user's runtime directory), where {@link #bearer()} reads it: the test's nodes
     * need no extra step and leave nothing behind in the user's home.
     */
    static String testSettings(int clusterPort, int httpPort, Path runtimeDir) {
        return "\nweft.cluster.port = " + clusterPort + "\nweft.management.http.port = " + httpPort
                + "\nweft.volumes = []\nweft.management.http.runtime-dir = \"" + runtimeDir + "\"\n";
    }

    /**
     * The node's data directory: the first export root its config names (weft node makes the data dir the first
     * export root, and relative volume paths resolve against that one: they must land where the test looks for
     * them), else the {@code weft.data-dir} its config names, else {@code <dir>/<name>-data}.
     */
    static Path dataDir(Path dir, String name, Config config) {
        if (config.hasPath("weft.storage.export-roots") && !config.getStringList("weft.storage.export-roots")
                .isEmpty()) {
            return Path.of(config.getStringList("weft.storage.export-roots").get(0));
        }
        if (config.hasPath("weft.data-dir")) {
            return Path.of(config.getString("weft.data-dir"));
        }
        return dir.resolve(name + "-data");
    }

    private static NodeProcess startOnce(Path dir, String name, int incarnation, String hocon, int clusterPort)
            throws Exception {
        dir = dir.toAbsolutePath();
        Files.createDirectories(dir);
        Path conf = dir.resolve(name + "-" + incarnation + ".conf");
        Path log = dir.resolve(name + "-" + incarnation + ".log");
        String settings = hocon + ItTls.settings(name, hocon)
                + testSettings(clusterPort, freePort(), runtimeDir(dir));
        Files.writeString(conf, settings, StandardCharsets.UTF_8);
        Config config = ConfigFactory.parseString(settings).resolve();
        int jmxPort = freePort();
        Path[] jmxFiles = jmxAuthFiles(dir);
        ChildJvm child = ChildJvm.builder(WeftMain.class)
                .jvmOptions("-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                        // names the run's directory before the long class path, for killAll's search
                        // (not a weft.* key: weft node refuses unknown ones)
                        "-Dmultijvm.run=" + dir)
                .systemProperty("com.sun.management.jmxremote.port", Integer.toString(jmxPort))
                .systemProperty("com.sun.management.jmxremote.rmi.port", Integer.toString(jmxPort))
                .systemProperty("com.sun.management.jmxremote.host", "127.0.0.1")
                .systemProperty("java.rmi.server.hostname", "127.0.0.1")
                // Authenticated JMX (docs/security.md): weft.management.jmx.allow-changes applies only then.
                .systemProperty("com.sun.management.jmxremote.authenticate", "true")
                .systemProperty("com.sun.management.jmxremote.password.file", jmxFiles[0].toString())
                .systemProperty("com.sun.management.jmxremote.access.file", jmxFiles[1].toString())
                .systemProperty("com.sun.management.jmxremote.ssl", "false")
                .args("node", "--config", conf.toString(), "--data-dir", dataDir(dir, name, config).toString(),
                        "--nbd-listen", "127.0.0.1:0", "--nbd-unix", "off")
                .directory(dir).logTo(log, false).start();
        NodeProcess node = new NodeProcess(name, child, log, jmxPort, runtimeDir(dir));
        String line;
        try {
            line = child.awaitLine(READY_LINE, START_TIMEOUT);
        } catch (IllegalStateException e) {
            String text = child.output();
            if (!child.isAlive() && text.contains("already in use")) {
                throw new PortTaken(name + " exited with " + child.exitValue() + " before it was ready; log:\n"
                        + text);
            }
            child.close();
            throw new AssertionError(name + " did not start (see " + log + "): " + e.getMessage());
        }
        node.ready.setProperty("name", config.getString("weft.node.name"));
        Map<String, String> fields = readyFields(line);
        node.ready.setProperty("address", fields.get("cluster"));
        node.ready.setProperty("http", "http://" + fields.get("http"));
        node.ready.setProperty("pid", fields.get("pid"));
        node.ready.setProperty("nbd", fields.get("nbd"));
        return node;
    }

    /** {@code weft node ready: nbd=H:P http=H:P cluster=H:P volumes=0 pid=N} as key → value. */
    static Map<String, String> readyFields(String line) {
        Map<String, String> fields = new HashMap<>();
        for (String field : line.substring(line.indexOf(READY_LINE) + READY_LINE.length()).trim().split(" ")) {
            int eq = field.indexOf('=');
            if (eq > 0) {
                fields.put(field.substring(0, eq), field.substring(eq + 1));
            }
        }
        return fields;
    }

    String nodeName() {
        return ready.getProperty("name");
    }

    /** "host:port" of the node's cluster (Artery) endpoint, for seed-nodes. */
    String clusterAddress() {
        return ready.getProperty("address");
    }

    URI http() {
        return URI.create(ready.getProperty("http"));
    }

    /** The last known pid of the node's current incarnation (see {@link #refreshPid()}). */
    long pid() {
        return pid;
    }

    /** Every pid this node has had so far. */
    Set<Long> pids() {
        return Set.copyOf(pids);
    }

    /**
     * Asks the node for its pid ({@code GET /weft/node} → {@code "pid"}; the last ready line in its log when the
     * node does not say), remembers it and returns it. Use after someone else restarted the node.
     */
    long refreshPid() throws Exception {
        HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(http().resolve("/weft/node"))
                .header("Authorization", bearerIfAny()).timeout(Duration.ofSeconds(5)).GET().build(),
                HttpResponse.BodyHandlers.ofString());
        JsonNode node = r.statusCode() == 200 ? json(r).get("pid") : null;
        long now;
        if (node != null && node.canConvertToLong()) {
            now = node.asLong();
        } else {
            // a restarted node writes to the same log: its last ready line names its pid
            String last = null;
            for (String line : Files.readAllLines(log, StandardCharsets.UTF_8)) {
                if (line.startsWith(READY_LINE)) {
                    last = line;
                }
            }
            now = Long.parseLong(readyFields(java.util.Objects.requireNonNull(last, "no ready line in " + log))
                    .get("pid"));
        }
        pids.add(now);
        pid = now;
        return now;
    }

    /** Remembers a pid found some other way (e.g. a child of another node's JVM) so that clean-up kills it. */
    void remember(long otherPid) {
        pids.add(otherPid);
    }

    /** A real kill -9 of the current incarnation; returns once the process is gone. */
    void kill9() throws InterruptedException {
        long target = pid;
        if (target == process.pid()) {
            process.kill9();
            return;
        }
        ProcessHandle.of(target).ifPresent(ProcessHandle::destroyForcibly);
        await(name + " (pid " + target + ") gone after kill -9", Duration.ofSeconds(30),
                () -> ProcessHandle.of(target).map(h -> !h.isAlive()).orElse(true));
    }

    /** SIGTERM: the node leaves the cluster gracefully (kill -9 after 30 s). */
    void stop() throws InterruptedException {
        long target = pid;
        if (target == process.pid()) {
            process.stop(Duration.ofSeconds(30));
            return;
        }
        ProcessHandle.of(target).ifPresent(h -> {
            h.destroy();
            try {
                h.onExit().get(30, TimeUnit.SECONDS);
            } catch (Exception e) {
                h.destroyForcibly();
            }
        });
    }

    /**
     * Makes sure no node of a test run survives it, even when the test failed half-way: asks every node for its
     * current pid (briefly), collects every pid each has had, their descendants (a kill drill's restarted node is a
     * child of the client node's JVM) and any process of this user whose command line names {@code runDir} (a
     * restarted node whose parent died), sends SIGTERM, then SIGKILL to whatever is left after a few seconds, and
     * checks with {@link ProcessHandle} that all are gone.
     *
     * @return the pids that were still alive and had to be ended
     */
    static Set<Long> killAll(Collection<NodeProcess> nodes, Path runDir) {
        Set<Long> pids = new TreeSet<>();
        for (NodeProcess n : nodes) {
            try {
                n.refreshPid();
            } catch (Exception | AssertionError ignored) {
                // dead or frozen: its known pids are enough
            }
            pids.addAll(n.pids);
        }
        Set<ProcessHandle> targets = new HashSet<>();
        for (long p : pids) {
            ProcessHandle.of(p).ifPresent(h -> {
                targets.add(h);
                h.descendants().forEach(targets::add);
            });
        }
        String marker = runDir.toAbsolutePath().toString();
        String me = ProcessHandle.current().info().user().orElse("");
        ProcessHandle.allProcesses()
                .filter(h -> h.pid() != ProcessHandle.current().pid())
                .filter(h -> h.info().user().orElse("?").equals(me))
                .filter(h -> h.info().commandLine().orElse("").contains(marker))
                .forEach(targets::add);
        Set<Long> ended = new TreeSet<>();
        for (ProcessHandle h : targets) {
            if (h.isAlive()) {
                ended.add(h.pid());
                h.destroy();
            }
        }
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (targets.stream().anyMatch(ProcessHandle::isAlive) && System.nanoTime() < deadline) {
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(100));
        }
        targets.stream().filter(ProcessHandle::isAlive).forEach(ProcessHandle::destroyForcibly);
        await("every node process of " + marker + " gone", Duration.ofSeconds(30),
                () -> targets.stream().noneMatch(ProcessHandle::isAlive));
        for (NodeProcess n : nodes) {
            n.process.close();
        }
        return ended;
    }

    void signal(String sig) throws Exception {
        Process kill = new ProcessBuilder("kill", "-" + sig, Long.toString(pid)).start();
        if (kill.waitFor() != 0) {
            throw new AssertionError("kill -" + sig + " " + pid() + " failed");
        }
    }

    /** The token header without waiting (clean-up and polling of a node that may be gone): "" when none yet. */
    private String bearerIfAny() {
        URI http = http();
        return io.weft.actors.management.ManagementToken.findForAddress(runtimeDir, http.getHost(), http.getPort())
                .map(t -> "Bearer " + t).orElse("Bearer none");
    }

    HttpResponse<String> get(String path) throws Exception {
        return HTTP.send(HttpRequest.newBuilder(http().resolve(path)).header("Authorization", bearer())
                .timeout(Duration.ofSeconds(20)).GET().build(), HttpResponse.BodyHandlers.ofString());
    }

    /** Parses a management answer's JSON body. */
    static JsonNode json(HttpResponse<String> r) throws Exception {
        return JSON.readTree(r.body());
    }

    /** Cluster members this node sees Up and reachable, or -1 while it does not answer. */
    int upMembers() {
        try {
            int up = 0;
            for (JsonNode m : json(get("/weft/node")).get("members")) {
                if ("Up".equals(m.get("status").asText()) && "true".equals(m.get("reachable").asText())) {
                    up++;
                }
            }
            return up;
        } catch (Exception e) {
            return -1;
        }
    }

    HttpResponse<String> post(String path, String json) throws Exception {
        return HTTP.send(HttpRequest.newBuilder(http().resolve(path)).timeout(Duration.ofSeconds(30))
                        .header("Content-Type", "application/json").header("Authorization", bearer())
                        .POST(HttpRequest.BodyPublishers.ofString(json)).build(),
                HttpResponse.BodyHandlers.ofString());
    }

    static final String JMX_USER = "weft";
    static final String JMX_PASSWORD = "weft-test-" + Long.toHexString(new java.security.SecureRandom().nextLong());

    /**
     * The JMX password file (0600, as the JDK insists) and access file of the test's nodes, in {@code dir}: written
     * once per directory (nodes of one test start in parallel and share them; a restarted node reads them again).
     */
    private static synchronized Path[] jmxAuthFiles(Path dir) throws IOException {
        Path password = dir.resolve("jmx.password");
        Path access = dir.resolve("jmx.access");
        String expected = JMX_USER + " " + JMX_PASSWORD + "\n";
        if (!Files.exists(password) || !Files.readString(password, StandardCharsets.UTF_8).equals(expected)) {
            Path tmp = Files.createTempFile(dir, "jmx.password", ".tmp",
                    java.nio.file.attribute.PosixFilePermissions.asFileAttribute(
                            java.nio.file.attribute.PosixFilePermissions.fromString("rw-------")));
            Files.writeString(tmp, expected, StandardCharsets.UTF_8);
            Files.move(tmp, password, java.nio.file.StandardCopyOption.REPLACE_EXISTING,
                    java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        }
        if (!Files.exists(access)) {
            Files.writeString(access, JMX_USER + " readwrite\n", StandardCharsets.UTF_8);
        }
        return new Path[] {password, access};
    }

    private JMXConnector jmx() throws IOException {
        JMXServiceURL url = new JMXServiceURL("service:jmx:rmi:///jndi/rmi://127.0.0.1:" + jmxPort + "/jmxrmi");
        return JMXConnectorFactory.connect(url, java.util.Map.of(JMXConnector.CREDENTIALS,
                new String[] {JMX_USER, JMX_PASSWORD}));
    }

    /** Reads one MBean attribute over remote JMX, from outside the node's JVM. */
    Object jmxAttribute(String objectName, String attribute) throws Exception {
        try (JMXConnector c = jmx()) {
            MBeanServerConnection mbs = c.getMBeanServerConnection();
            return mbs.getAttribute(new ObjectName(objectName), attribute);
        }
    }

    /** Invokes a no-argument MBean operation over remote JMX. */
    Object jmxInvoke(String objectName, String operation) throws Exception {
        try (JMXConnector c = jmx()) {
            return c.getMBeanServerConnection().invoke(new ObjectName(objectName), operation, new Object[0],
                    new String[0]);
        }
    }

    String logText() {
        return process.output();
    }
}
