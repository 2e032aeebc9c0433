package io.weft.node.cli;

import io.weft.node.WeftNode;
import io.weft.node.config.NodeSettings;
import io.weft.node.config.SettingsLoader;
import java.nio.file.Path;
import java.util.LinkedHashMap;
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
            "Runs a node: serves the configured volumes over NBD until SIGINT or SIGTERM.",
            "",
            "Opens each volume (creating a missing file sparse). On SIGINT or SIGTERM it",
            "stops accepting, lets in-flight IO finish, flushes every volume, exits 0.",
            "With no options: volume vol0, a sparse 1 GiB file ./data/vol0.img, served",
            "at nbd://127.0.0.1:10809/vol0 and on the Unix socket ./data/nbd.sock.",
            ""},
        footer = {"",
            "Precedence, lowest first: reference.conf, the --config file, JVM system",
            "properties, -D options, the options above. docs/configuration.md lists",
            "every key.",
            "Exit codes: 0 stopped cleanly, 1 start-up or shutdown failed, 2 invalid",
            "usage or setting."})
public final class NodeCommand implements Callable<Integer> {
    private static final Logger LOG = LoggerFactory.getLogger(NodeCommand.class);

    @Option(names = "--config", paramLabel = "FILE", description = "HOCON file with weft.* settings.")
    Path config;

    @Option(names = "--data-dir", paramLabel = "DIR", description = "Sets weft.data-dir (default ./data).")
    String dataDir;

    @Option(names = "--nbd-listen", paramLabel = "HOST:PORT",
            description = "Sets weft.nbd.listen (default 127.0.0.1:10809; port 0 = any free port; off).")
    String nbdListen;

    @Option(names = "--nbd-unix", paramLabel = "PATH",
            description = "Sets weft.nbd.unix-socket (default nbd.sock in the data dir; off).")
    String nbdUnix;

    @Option(names = "--http-listen", paramLabel = "HOST:PORT",
            description = "Sets weft.http.listen (default 127.0.0.1:7626; off).")
    String httpListen;

    @Option(names = "-D", paramLabel = "KEY=VALUE", mapFallbackValue = "",
            description = "Overrides one setting, e.g. -Dweft.store.io-threads=2.")
    Map<String, String> properties = new LinkedHashMap<>();

    @Override
    public Integer call() throws Exception {
        Map<String, String> cli = new LinkedHashMap<>();
        putIfSet(cli, "weft.data-dir", dataDir);
        putIfSet(cli, "weft.nbd.listen", nbdListen);
        putIfSet(cli, "weft.nbd.unix-socket", nbdUnix);
        putIfSet(cli, "weft.http.listen", httpListen);
        NodeSettings settings = SettingsLoader.parse(
                SettingsLoader.load(Optional.ofNullable(config), properties, cli),
                Path.of("").toAbsolutePath());

        ShutdownSignals signals = ShutdownSignals.install();
        WeftNode node = WeftNode.start(settings);
        Thread fallbackHook = new Thread(node::shutdown, "weft-shutdown");
        Runtime.getRuntime().addShutdownHook(fallbackHook);
        node.printWelcome(System.out);
        String signal = signals.await();
        LOG.info("{} received", signal);
        boolean flushed = node.shutdown();
        return flushed ? 0 : WeftMain.EXIT_FAILURE;
    }

    private static void putIfSet(Map<String, String> map, String key, String value) {
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
