package io.weft.node.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code weft demo}'s local cluster: ports, node settings, child command lines, which pids it signals. */
class LocalClusterTest {
    @TempDir
    Path dir;

    @Test
    void aBasePortLaysOutSevenConsecutivePorts() throws Exception {
        List<LocalCluster.NodePlan> plan = LocalCluster.plan(dir, 30000);
        assertEquals(List.of("a", "b", "c"), plan.stream().map(LocalCluster.NodePlan::name).toList());
        assertEquals(List.of(30000, 30001, 30002), plan.stream().map(LocalCluster.NodePlan::clusterPort).toList());
        assertEquals(List.of(30003, 30004, 30005), plan.stream().map(LocalCluster.NodePlan::httpPort).toList());
        assertEquals(List.of(0, 0, 30006), plan.stream().map(LocalCluster.NodePlan::nbdPort).toList());
        assertEquals(List.of("storage", "storage", "client"), plan.stream().map(LocalCluster.NodePlan::roles).toList());
        assertEquals(dir.resolve("c").resolve("nbd.sock"), plan.get(2).socket());
    }

    @Test
    void freePortsAreDistinct() throws Exception {
        List<LocalCluster.NodePlan> plan = LocalCluster.plan(dir, -1);
        List<Integer> ports = new java.util.ArrayList<>();
        plan.forEach(n -> {
            ports.add(n.clusterPort());
            ports.add(n.httpPort());
        });
        ports.add(plan.get(2).nbdPort());
        assertEquals(7, ports.stream().distinct().count(), ports.toString());
        assertTrue(ports.stream().allMatch(p -> p > 0), ports.toString());
    }

    @Test
    void everyNodeSeedsAllThreeClientFirstAndAttachesTheRegion() throws Exception {
        List<LocalCluster.NodePlan> plan = LocalCluster.plan(dir, 30000);
        String cxl = LocalCluster.config(Path.of("/dev/shm/weft-demo-x"), plan);
        // the client first: the drill never kills it, and a restarted first seed could form a cluster of its own
        assertTrue(cxl.contains("weft.cluster.seed-nodes = [\"127.0.0.1:30002\", \"127.0.0.1:30000\", "
                + "\"127.0.0.1:30001\"]"), cxl);
        assertTrue(cxl.contains("weft.cxl.regions = [\"/dev/shm/weft-demo-x\"]"), cxl);
        assertTrue(cxl.contains("weft.volumes = []"), cxl);
        String rdma = LocalCluster.config(null, plan);
        assertFalse(rdma.contains("weft.cxl.regions"), rdma);
        assertTrue(rdma.contains("weft.rdma.provider = software"), rdma);
        // the file must be valid HOCON
        com.typesafe.config.Config parsed = com.typesafe.config.ConfigFactory.parseString(cxl);
        assertEquals(3, parsed.getStringList("weft.cluster.seed-nodes").size());
        assertEquals("2s", parsed.getString("weft.cluster.seed-node-timeout"));
    }

    @Test
    void aNodeRunsWeftMainWithTheLauncherFlagsAndItsOwnPorts() throws Exception {
        LocalCluster.NodePlan a = LocalCluster.plan(dir, 30000).get(0);
        List<String> cmd = LocalCluster.nodeCommand(a, dir.resolve("demo.conf"));
        int main = cmd.indexOf(WeftMain.class.getName());
        assertTrue(main > 0, cmd.toString());
        assertTrue(cmd.subList(0, main).containsAll(List.of("--add-opens", "java.base/jdk.internal.misc=ALL-UNNAMED",
                "-cp")), cmd.toString());
        String cp = cmd.get(cmd.indexOf("-cp") + 1);
        assertTrue(List.of(cp.split(java.io.File.pathSeparator)).stream().allMatch(e -> Path.of(e).isAbsolute()), cp);
        List<String> args = cmd.subList(main + 1, cmd.size());
        assertEquals(List.of("node", "--config", dir.resolve("demo.conf").toString(), "--name", "a", "--roles",
                "storage", "--data-dir", dir.resolve("a").toString(), "--cluster-port", "30000", "--http-listen",
                "127.0.0.1:30003", "--nbd-listen", "off", "--nbd-unix", dir.resolve("a/nbd.sock").toString()), args);
    }

    @Test
    void jvmFlagsFollowTheJavaVersionAndWeftJavaOptsComeLast() {
        List<String> on17 = LocalCluster.jvmFlags(17, null);
        assertFalse(on17.contains("--enable-native-access=ALL-UNNAMED"), on17.toString());
        List<String> on23 = LocalCluster.jvmFlags(23, " -Xmx1g  -Dweft.stats.log=true ");
        assertTrue(on23.containsAll(List.of("--enable-native-access=ALL-UNNAMED",
                "--sun-misc-unsafe-memory-access=allow")), on23.toString());
        assertEquals(List.of("-Xmx1g", "-Dweft.stats.log=true"), on23.subList(on23.size() - 2, on23.size()));
        assertTrue(on23.indexOf("-Xmx512m") < on23.indexOf("-Xmx1g"), "the user's heap wins: " + on23);
    }

    @Test
    void onlyProcessesRunningWeftMainAreSignalled() throws Exception {
        assertFalse(LocalCluster.isWeftNode(ProcessHandle.current()), "this test JVM runs no WeftMain");
        // a long argument first, as a node's class path is: the main class lies beyond the first page of cmdline
        Process p = new ProcessBuilder("sh", "-c", "sleep 60; true", "x".repeat(8192), WeftMain.class.getName())
                .start();
        try {
            assertTrue(LocalCluster.isWeftNode(p.toHandle()));
        } finally {
            p.destroyForcibly();
            p.waitFor();
        }
        assertFalse(LocalCluster.isWeftNode(p.toHandle()), "a process that exited is not signalled");
    }
}
