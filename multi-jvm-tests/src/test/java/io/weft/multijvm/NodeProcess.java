package io.weft.multijvm;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
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
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.function.BooleanSupplier;
import javax.management.MBeanServerConnection;
import javax.management.ObjectName;
import javax.management.remote.JMXConnector;
import javax.management.remote.JMXConnectorFactory;
import javax.management.remote.JMXServiceURL;

/**
 * One Weft node in a child JVM on loopback, started through {@link NodeMain}. Ports are picked by binding port 0
 * first; logs go to {@code target/multi-jvm/<name>-<n>.log}.
 */
final class NodeProcess {
    private static final ObjectMapper JSON = new ObjectMapper();
    static final Duration START_TIMEOUT = Duration.ofSeconds(90);
    private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    final String name;
    final Process process;
    final Path log;
    final int jmxPort;
    final Properties ready = new Properties();

    private NodeProcess(String name, Process process, Path log, int jmxPort) {
        this.name = name;
        this.process = process;
        this.log = log;
        this.jmxPort = jmxPort;
    }

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    /**
     * @param hocon the node's {@code weft { ... }} config (ports are added here)
     */
    static NodeProcess start(Path dir, String name, int incarnation, String hocon, int clusterPort)
            throws Exception {
        Files.createDirectories(dir);
        Path conf = dir.resolve(name + "-" + incarnation + ".conf");
        Path readyFile = dir.resolve(name + "-" + incarnation + ".ready");
        Path log = dir.resolve(name + "-" + incarnation + ".log");
        Files.deleteIfExists(readyFile);
        Files.writeString(conf, hocon + "\nweft.cluster.port = " + clusterPort
                + "\nweft.management.http.port = " + freePort() + "\n", StandardCharsets.UTF_8);
        int jmxPort = freePort();
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        for (String flag : System.getProperty("weft.jvm.opens", "").split("\\s+")) {
            if (!flag.isBlank()) {
                cmd.add(flag);
            }
        }
        cmd.addAll(List.of("-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                "-Dcom.sun.management.jmxremote.port=" + jmxPort,
                "-Dcom.sun.management.jmxremote.rmi.port=" + jmxPort,
                "-Dcom.sun.management.jmxremote.host=127.0.0.1",
                "-Djava.rmi.server.hostname=127.0.0.1",
                "-Dcom.sun.management.jmxremote.authenticate=false",
                "-Dcom.sun.management.jmxremote.ssl=false",
                "-cp", System.getProperty("java.class.path"),
                NodeMain.class.getName(), conf.toString(), readyFile.toString()));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        NodeProcess node = new NodeProcess(name, p, log, jmxPort);
        await(name + " started (see " + log + ")", START_TIMEOUT, () -> Files.exists(readyFile) || !p.isAlive());
        if (!p.isAlive()) {
            throw new AssertionError(name + " exited with " + p.exitValue() + " before it was ready; log:\n"
                    + Files.readString(log));
        }
        try (var in = Files.newBufferedReader(readyFile)) {
            node.ready.load(in);
        }
        return node;
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

    long pid() {
        return process.pid();
    }

    /** A real kill -9. */
    void kill9() throws InterruptedException {
        process.destroyForcibly();
        process.waitFor();
    }

    /** SIGTERM: the node leaves the cluster gracefully. */
    void stop() throws InterruptedException {
        if (process.isAlive()) {
            process.destroy();
            if (!process.waitFor(30, java.util.concurrent.TimeUnit.SECONDS)) {
                process.destroyForcibly();
            }
        }
    }

    void signal(String sig) throws Exception {
        Process kill = new ProcessBuilder("kill", "-" + sig, Long.toString(pid())).start();
        if (kill.waitFor() != 0) {
            throw new AssertionError("kill -" + sig + " " + pid() + " failed");
        }
    }

    HttpResponse<String> get(String path) throws Exception {
        return HTTP.send(HttpRequest.newBuilder(http().resolve(path)).timeout(Duration.ofSeconds(20)).GET().build(),
                HttpResponse.BodyHandlers.ofString());
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
                        .header("Content-Type", "application/json")
                        .POST(HttpRequest.BodyPublishers.ofString(json)).build(),
                HttpResponse.BodyHandlers.ofString());
    }

    /** Reads one MBean attribute over remote JMX, from outside the node's JVM. */
    Object jmxAttribute(String objectName, String attribute) throws Exception {
        JMXServiceURL url = new JMXServiceURL("service:jmx:rmi:///jndi/rmi://127.0.0.1:" + jmxPort + "/jmxrmi");
        try (JMXConnector c = JMXConnectorFactory.connect(url)) {
            MBeanServerConnection mbs = c.getMBeanServerConnection();
            return mbs.getAttribute(new ObjectName(objectName), attribute);
        }
    }

    /** Invokes a no-argument MBean operation over remote JMX. */
    Object jmxInvoke(String objectName, String operation) throws Exception {
        JMXServiceURL url = new JMXServiceURL("service:jmx:rmi:///jndi/rmi://127.0.0.1:" + jmxPort + "/jmxrmi");
        try (JMXConnector c = JMXConnectorFactory.connect(url)) {
            return c.getMBeanServerConnection().invoke(new ObjectName(objectName), operation, new Object[0],
                    new String[0]);
        }
    }

    String logText() {
        try {
            return Files.readString(log);
        } catch (IOException e) {
            return "(no log: " + e + ")";
        }
    }

    static void await(String what, Duration timeout, BooleanSupplier condition) {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() - deadline > 0) {
                throw new AssertionError("timed out after " + timeout.toSeconds() + " s waiting for: " + what);
            }
            try {
                Thread.sleep(50);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError("interrupted waiting for " + what);
            }
        }
    }
}
