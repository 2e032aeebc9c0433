package io.weft.multijvm;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.weft.actors.WeftRuntime;
import io.weft.actors.client.NbdServerExporter;
import io.weft.core.nbd.NbdServer;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/**
 * A Weft node in a child JVM: {@code NodeMain <config.conf> <ready-file>}. Starts an {@link NbdServer} on a free
 * loopback port and the node through {@link WeftRuntime#start(Config, io.weft.actors.client.DeviceExporter)} with an
 * {@link NbdServerExporter} (what node-app's {@code weft node} will do), then writes the ready file (node name,
 * cluster address, HTTP URI, pid, NBD address) atomically so the test knows where to find it. SIGTERM shuts the node
 * down gracefully; the test's {@code destroyForcibly()} is a real {@code kill -9}. Like {@code weft node}, the process
 * stays up until it is stopped, also when the cluster downs the node.
 */
public final class NodeMain {
    private NodeMain() {
    }

    public static void main(String[] args) throws Exception {
        Config config = ConfigFactory.parseFile(Path.of(args[0]).toFile()).withFallback(ConfigFactory.load());
        // Mapped devices are exported through the real NBD server, as node-app does (loopback, free port).
        NbdServer nbd = new NbdServer();
        InetSocketAddress nbdAt = nbd.bindTcp("127.0.0.1", 0);
        WeftRuntime node = WeftRuntime.start(config,
                new NbdServerExporter(nbd, "nbd://127.0.0.1:" + nbdAt.getPort() + "/"));
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            node.shutdown();
            nbd.close();
        }, "weft-shutdown"));
        Path ready = Path.of(args[1]);
        Path tmp = ready.resolveSibling(ready.getFileName() + ".tmp");
        String address = node.clusterAddress().host().get() + ":" + node.clusterAddress().port().get();
        Files.writeString(tmp, "name=" + node.nodeName() + "\naddress=" + address + "\nhttp="
                + node.httpUri().map(Object::toString).orElse("") + "\npid=" + ProcessHandle.current().pid()
                + "\nnbd=127.0.0.1:" + nbdAt.getPort() + "\n",
                StandardCharsets.UTF_8);
        Files.move(tmp, ready, StandardCopyOption.ATOMIC_MOVE);
        // Stay up until the node is stopped (shutdown hook), as `weft node` does: a node the cluster downs keeps
        // its process, its NBD server and its devices.
        new java.util.concurrent.CountDownLatch(1).await();
    }
}
