package io.weft.multijvm;

import java.nio.file.Path;
import java.util.List;

/**
 * The configuration the cluster ITs give their nodes. {@link #member} is what every node has (name, roles, seeds, a
 * storage node's export root); {@link #SOFTWARE_RDMA} the data transport of every IT that moves data;
 * {@link #of} the whole configuration of the drill and console ITs. A test appends what it needs besides.
 */
final class ClusterNodeHocon {
    /** The software RDMA provider on an ephemeral loopback port. */
    static final String SOFTWARE_RDMA = "weft.rdma.provider = software\n"
            + "weft.rdma.listen = [\"127.0.0.1:0\"]\n";

    private ClusterNodeHocon() {
    }

    /**
     * A node's name and roles, the seeds it names, and its export root.
     *
     * @param exportRoot the storage node's export root, or {@code null} for a client-only node
     */
    static String member(String name, String roles, Path exportRoot, List<String> seeds) {
        StringBuilder s = new StringBuilder();
        s.append("weft.node.name = \"").append(name).append("\"\n");
        s.append("weft.node.roles = [").append(roles).append("]\n");
        s.append("weft.cluster.seed-nodes = [");
        for (int i = 0; i < seeds.size(); i++) {
            s.append(i == 0 ? "" : ", ").append('"').append(seeds.get(i)).append('"');
        }
        s.append("]\n");
        if (exportRoot != null) {
            s.append("weft.storage.export-roots = [\"").append(exportRoot).append("\"]\n");
        }
        return s.toString();
    }

    /**
     * A {@link #member} over software RDMA with its own data directory, JMX off and the timeouts that hold on a
     * loaded 2-core machine, for ITs that kill and restart nodes.
     *
     * @param exportRoot the storage node's export root, or {@code null} for a client-only node
     * @param ioTimeout  {@code weft.client.io-timeout}: how long the test lets a device's IO queue while a leg is down
     */
    static String of(String name, String roles, Path exportRoot, Path dataDir, List<String> seeds, String ioTimeout) {
        StringBuilder s = new StringBuilder(member(name, roles, exportRoot, seeds));
        // Nodes come back by themselves (the drills restart them, same host:port); nothing is downed by the SBR
        // meanwhile, even while a test kills two of the three nodes.
        s.append("weft.cluster.split-brain-resolver.stable-after = 60s\n");
        // A restarted node (same host:port) is first refused while its old incarnation is removed; Pekko's
        // default retry after 10 s would dominate every kill drill's time to resync.
        s.append("weft.pekko.cluster.retry-unsuccessful-join-after = 1s\n");
        s.append("weft.data-dir = \"").append(dataDir).append("\"\n");
        s.append("weft.management.jmx.enabled = false\n");
        s.append("weft.client.io-timeout = ").append(ioTimeout).append('\n');
        s.append("weft.client.map-timeout = 30s\n");
        s.append("weft.management.ask-timeout = 40s\n");
        s.append(SOFTWARE_RDMA);
        return s.toString();
    }
}
