package io.weft.node.cli;

import com.typesafe.config.Config;
import io.weft.node.WeftNode;
import io.weft.node.config.HostPort;
import io.weft.node.config.NodeSettings;
import io.weft.node.config.SettingsLoader;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code weft node}: runs a node in the foreground until SIGINT or SIGTERM. */
@Command(name = "node",
        mixinStandardHelpOptions = true,
        description = {
            "Runs one node until SIGINT or SIGTERM: a Pekko Cluster member (roles",
            "storage and client by default) whose mapped devices are NBD exports, with",
            "management HTTP (/weft/..., /metrics, /ready), JMX and the configured volumes.",
            "",
            "With no options: a single-node cluster; volume vol0, a sparse 1 GiB file",
            "./data/vol0.img mapped in-process and served at nbd://127.0.0.1:10809/vol0",
            "and on the Unix socket ./data/nbd.sock; HTTP on 127.0.0.1:7626.",
            "On SIGINT or SIGTERM it stops accepting NBD connections, lets in-flight IO",
            "finish, flushes every device, leaves the cluster and exits 0.",
            ""},
        footer = {"",
            "Three nodes on one machine (every node names every seed, itself included):",
            "  SEEDS=\"--seed 127.0.0.1:25520 --seed 127.0.0.1:25521 --seed 127.0.0.1:25522\"",
            "  ./weft node --data-dir data/a --name a $SEEDS",
            "  ./weft node --data-dir data/b --name b --cluster-port 25521 $SEEDS \\",
            "      --nbd-listen 127.0.0.1:10810 --http-listen 127.0.0.1:7627",
            "  ./weft node --data-dir data/c --name c --cluster-port 25522 $SEEDS \\",
            "      --nbd-listen 127.0.0.1:10811 --http-listen 127.0.0.1:7628",
            "",
            "Precedence, lowest first: reference.conf, the --config file, JVM system",
            "properties, -D options, the options above. docs/configuration.md lists",
            "every key.",
            "Exit codes: 0 stopped cleanly, 1 start-up or shutdown failed, 2 invalid",
            "usage or setting."})
public final class NodeCommand implements Callable<Integer> {
    private static final Logger LOG = LoggerFactory.getLogger(NodeCommand.class);

    @Option(names = "--config", paramLabel = "FILE", description = "HOCON file with weft.* settings.")
    Path config;

    @Option(names = "--data-dir", paramLabel = "DIR",
            description = "Sets weft.data-dir (default ./data): volume files, NBD socket, default export root.")
    String dataDir;

    @Option(names = "--nbd-listen", paramLabel = "HOST:PORT",
            description = "Sets weft.nbd.listen (default 127.0.0.1:10809; port 0 = any free port; off).")
    String nbdListen;

    @Option(names = "--nbd-unix", paramLabel = "PATH",
            description = "Sets weft.nbd.unix-socket (default nbd.sock in the data dir; off).")
    String nbdUnix;

    @Option(names = "--http-listen", paramLabel = "HOST:PORT",
            description = "Management HTTP: sets weft.management.http.hostname and .port (default"
                    + " 127.0.0.1:7626; port 0 = any free port); off sets .enabled = false.")
    String httpListen;

    @Option(names = "--token", paramLabel = "TOKEN", defaultValue = "${env:WEFT_TOKEN}",
            description = "Sets weft.management.http.token (env WEFT_TOKEN): the management token, instead of the "
                    + "one the node keeps in its data dir (management.token) or receives from its cluster.")
    String token;

    @Option(names = "--name", paramLabel = "NAME",
            description = "Sets weft.node.name (default HOST:PORT of the cluster address).")
    String nodeName;

    @Option(names = "--roles", paramLabel = "ROLE", split = ",",
            description = "Sets weft.node.roles: storage, client or both (default storage,client).")
    List<String> roles;

    @Option(names = "--cluster-host", paramLabel = "HOST",
            description = "Sets weft.cluster.hostname (default 127.0.0.1).")
    String clusterHost;

    @Option(names = "--cluster-port", paramLabel = "PORT",
            description = "Sets weft.cluster.port (default 25520; 0 = any free port).")
    String clusterPort;

    @Option(names = "--seed", paramLabel = "HOST:PORT",
            description = "Adds to weft.cluster.seed-nodes (repeatable). Give every node the same seeds, its own "
                    + "address included when it is one. None: forms a cluster of its own (a single node).")
    List<String> seeds;

    @Option(names = "--export-root", paramLabel = "DIR",
            description = "Adds to weft.storage.export-roots (repeatable; default: the data dir).")
    List<String> exportRoots;

    @Option(names = "-D", paramLabel = "KEY=VALUE", mapFallbackValue = "",
            description = "Overrides one setting, e.g. -Dweft.client.io-timeout=10s.")
    Map<String, String> properties = new LinkedHashMap<>();

    @Override
    public Integer call() throws Exception {
        Map<String, Object> cli = new LinkedHashMap<>();
        putIfSet(cli, "weft.data-dir", dataDir);
        putIfSet(cli, "weft.nbd.listen", nbdListen);
        putIfSet(cli, "weft.nbd.unix-socket", nbdUnix);
        if (httpListen != null) {
            if ("off".equals(httpListen)) {
                cli.put("weft.management.http.enabled", false);
            } else {
                HostPort http = HostPort.parse("--http-listen", httpListen);
                cli.put("weft.management.http.enabled", true);
                cli.put("weft.management.http.hostname", http.host());
                cli.put("weft.management.http.port", http.port());
            }
        }
        putIfSet(cli, "weft.management.http.token", token);
        putIfSet(cli, "weft.node.name", nodeName);
        putIfSet(cli, "weft.node.roles", roles);
        putIfSet(cli, "weft.cluster.hostname", clusterHost);
        putIfSet(cli, "weft.cluster.port", clusterPort);
        putIfSet(cli, "weft.cluster.seed-nodes", seeds);
        putIfSet(cli, "weft.storage.export-roots", exportRoots == null ? null
                : exportRoots.stream().map(r -> Path.of(r).toAbsolutePath().normalize().toString()).toList());
        Config loaded = SettingsLoader.load(Optional.ofNullable(config), properties, cli);
        NodeSettings settings = SettingsLoader.parse(loaded, Path.of("").toAbsolutePath());

        ShutdownSignals signals = ShutdownSignals.install();
        WeftNode node = WeftNode.start(settings, loaded);
        Thread fallbackHook = new Thread(node::shutdown, "weft-shutdown");
        Runtime.getRuntime().addShutdownHook(fallbackHook);
        node.printWelcome(System.out);
        String signal = signals.await();
        LOG.info("{} received", signal);
        boolean flushed = node.shutdown();
        return flushed ? 0 : WeftMain.EXIT_FAILURE;
    }

    private static void putIfSet(Map<String, Object> map, String key, Object value) {
        if (value != null) {
            map.put(key, value);
        }
    }

    /**
     * Catches SIGINT and SIGTERM so the node stops in order and the process exits 0 (a JVM killed by a signal
     * through its default handler exits 128+n). A second signal while stopping exits at once. sun.misc.Signal is
     * one of the JDK's critical internal APIs kept accessible on purpose (JEP 260); javac still warns about it.
     */
    static final class ShutdownSignals {
        private final CountDownLatch received = new CountDownLatch(1);
        private final AtomicInteger count = new AtomicInteger();
        private volatile String name = "signal";

        static ShutdownSignals install() {
            ShutdownSignals signals = new ShutdownSignals();
            for (String sig : new String[] {"INT", "TERM"}) {
                sun.misc.Signal.handle(new sun.misc.Signal(sig), s -> signals.onSignal("SIG" + s.getName()));
            }
            return signals;
        }

        private void onSignal(String signal) {
            if (count.incrementAndGet() > 1) {
                System.err.println("weft node: " + signal + " again, exiting without waiting");
                Runtime.getRuntime().halt(130);
            }
            name = signal;
            received.countDown();
        }

        String await() throws InterruptedException {
            received.await();
            return name;
        }
    }
}
