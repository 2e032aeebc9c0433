package io.weft.rdma;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/** A storage JVM ({@link RdmaTestServer}) started as a child process; {@link #kill()} is a real kill -9. */
public final class StorageProcess implements AutoCloseable {
    private final Process process;
    private final LinkedBlockingQueue<String> lines = new LinkedBlockingQueue<>();
    private final Writer stdin;
    private final List<InetSocketAddress> addresses = new ArrayList<>();

    private StorageProcess(Process process) {
        this.process = process;
        this.stdin = new OutputStreamWriter(process.getOutputStream(), StandardCharsets.UTF_8);
        Thread reader = new Thread(() -> {
            try (BufferedReader r = new BufferedReader(
                    new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
                String line;
                while ((line = r.readLine()) != null) {
                    lines.add(line);
                }
            } catch (IOException e) {
                // child gone
            }
        }, "storage-stdout");
        reader.setDaemon(true);
        reader.start();
    }

    /** Starts the child and waits for its READY line. {@code listen}: "127.0.0.1:0,127.0.0.2:0". */
    public static StorageProcess start(Path file, long size, String listen, int agents, Path log) throws Exception {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add("--add-opens");
        cmd.add("java.base/jdk.internal.misc=ALL-UNNAMED");
        cmd.add("--add-opens");
        cmd.add("java.base/sun.nio.ch=ALL-UNNAMED");
        cmd.add("--add-opens");
        cmd.add("java.base/java.nio=ALL-UNNAMED");
        cmd.add("-Xmx256m");
        for (String prop : new String[] {"weft.rdma.idle.spins", "weft.rdma.idle.yields", "weft.bench.rdma.tls"}) {
            if (System.getProperty(prop) != null) {
                cmd.add("-D" + prop + "=" + System.getProperty(prop));
            }
        }
        // Extra JVM options for the child only, e.g. a flight recording of the storage side of a benchmark.
        String childOptions = System.getProperty("weft.bench.storage.jvm", "").trim();
        if (!childOptions.isEmpty()) {
            cmd.addAll(List.of(childOptions.split("\\s+")));
        }
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(RdmaTestServer.class.getName());
        cmd.add(file.toString());
        cmd.add(Long.toString(size));
        cmd.add(listen);
        cmd.add(Integer.toString(agents));
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().put(TestGrants.ENV, TestGrants.GRANT.encodedCapability());
        pb.redirectError(ProcessBuilder.Redirect.appendTo(log.toFile()));
        StorageProcess sp = new StorageProcess(pb.start());
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
        stdin.write(command + "\n");
        stdin.flush();
        return expect(replyPrefix, 30);
    }

    private String expect(String prefix, int seconds) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        while (true) {
            long left = deadline - System.nanoTime();
            String line = lines.poll(Math.max(1, left), TimeUnit.NANOSECONDS);
            if (line == null) {
                throw new AssertionError("storage process did not print '" + prefix + "' within " + seconds
                        + " s (alive=" + process.isAlive() + ")");
            }
            if (line.startsWith(prefix)) {
                return line;
            }
        }
    }

    /** Sends a signal (STOP / CONT) to the storage JVM, e.g. to freeze it like a hung host. */
    public void signal(String name) throws Exception {
        Process kill = new ProcessBuilder("kill", "-" + name, Long.toString(process.pid())).inheritIO().start();
        if (!kill.waitFor(10, TimeUnit.SECONDS) || kill.exitValue() != 0) {
            throw new AssertionError("kill -" + name + " failed");
        }
    }

    /** kill -9 and wait for the process to be gone. */
    public void kill() throws InterruptedException {
        process.destroyForcibly();
        process.waitFor(30, TimeUnit.SECONDS);
    }

    @Override
    public void close() {
        if (process.isAlive()) {
            process.destroyForcibly();
            try {
                process.waitFor(30, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    static File logFile(Path dir, String name) {
        return dir.resolve(name).toFile();
    }
}
