package io.weft.rdma;

import io.weft.core.process.ChildJvm;
import java.io.File;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * A storage JVM ({@link RdmaTestServer}) started as a child process through {@link ChildJvm}: its stdout answers the
 * commands this class sends, its stderr goes to a log file; {@link #kill()} is a real kill -9.
 */
public final class StorageProcess implements AutoCloseable {
    private final ChildJvm child;
    private final List<InetSocketAddress> addresses = new ArrayList<>();

    private StorageProcess(ChildJvm child) {
        this.child = child;
    }

    /** Starts the child and waits for its READY line. {@code listen}: "127.0.0.1:0,127.0.0.2:0". */
    public static StorageProcess start(Path file, long size, String listen, int agents, Path log) throws Exception {
        ChildJvm child = ChildJvm.builder(RdmaTestServer.class).jvmOptions("-Xmx256m")
                .copySystemProperties("weft.rdma.idle.spins", "weft.rdma.idle.yields", "weft.bench.rdma.tls")
                // Extra JVM options for the child only, e.g. a flight recording of the storage side of a benchmark.
                .jvmOptions(ChildJvm.splitOptions(System.getProperty("weft.bench.storage.jvm")))
                .args(file.toString(), Long.toString(size), listen, Integer.toString(agents))
                .environment(TestGrants.ENV, TestGrants.GRANT.encodedCapability())
                .errorsTo(log).start();
        StorageProcess sp = new StorageProcess(child);
        String ready = sp.expect("READY", 60);
        for (String hp : ready.substring("READY".length()).trim().split(" ")) {
            sp.addresses.add(RdmaTestServer.parse(hp));
        }
        return sp;
    }

    public List<InetSocketAddress> addresses() {
        return addresses;
    }

    /** "host:port,host:port" of the bound listeners, to restart on the same ports. */
    public String listenSpec() {
        StringBuilder b = new StringBuilder();
        for (InetSocketAddress a : addresses) {
            if (b.length() > 0) {
                b.append(',');
            }
            b.append(a.getAddress().getHostAddress()).append(':').append(a.getPort());
        }
        return b.toString();
    }

    public String command(String command, String replyPrefix) throws Exception {
        child.send(command);
        return expect(replyPrefix, 30);
    }

    private String expect(String prefix, int seconds) {
        return child.awaitLine(prefix, Duration.ofSeconds(seconds));
    }

    /** Sends a signal (STOP / CONT) to the storage JVM, e.g. to freeze it like a hung host. */
    public void signal(String name) throws Exception {
        child.signal(name);
    }

    /** kill -9 and wait for the process to be gone. */
    public void kill() throws InterruptedException {
        child.kill9();
    }

    @Override
    public void close() {
        child.close();
    }

    static File logFile(Path dir, String name) {
        return dir.resolve(name).toFile();
    }
}
