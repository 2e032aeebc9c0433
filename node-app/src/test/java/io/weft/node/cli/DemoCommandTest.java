package io.weft.node.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code weft demo}'s plan: ports, node settings, child command lines, and its usage errors. */
class DemoCommandTest {
    @TempDir
    Path dir;

    @Test
    void aBasePortLaysOutSevenConsecutivePorts() throws Exception {
        List<DemoCommand.NodePlan> plan = DemoCommand.plan(dir, 30000);
        assertEquals(List.of("a", "b", "c"), plan.stream().map(DemoCommand.NodePlan::name).toList());
        assertEquals(List.of(30000, 30001, 30002), plan.stream().map(DemoCommand.NodePlan::clusterPort).toList());
        assertEquals(List.of(30003, 30004, 30005), plan.stream().map(DemoCommand.NodePlan::httpPort).toList());
        assertEquals(List.of(0, 0, 30006), plan.stream().map(DemoCommand.NodePlan::nbdPort).toList());
        assertEquals(List.of("storage", "storage", "client"), plan.stream().map(DemoCommand.NodePlan::roles).toList());
        assertEquals(dir.resolve("c").resolve("nbd.sock"), plan.get(2).socket());
    }

    @Test
    void freePortsAreDistinct() throws Exception {
        List<DemoCommand.NodePlan> plan = DemoCommand.plan(dir, -1);
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
        List<DemoCommand.NodePlan> plan = DemoCommand.plan(dir, 30000);
        String cxl = DemoCommand.config(Path.of("/dev/shm/weft-demo-x"), plan);
        // the client first: the drill never kills it, and a restarted first seed could form a cluster of its own
        assertTrue(cxl.contains("weft.cluster.seed-nodes = [\"127.0.0.1:30002\", \"127.0.0.1:30000\", "
                + "\"127.0.0.1:30001\"]"), cxl);
        assertTrue(cxl.contains("weft.cxl.regions = [\"/dev/shm/weft-demo-x\"]"), cxl);
        assertTrue(cxl.contains("weft.volumes = []"), cxl);
        String rdma = DemoCommand.config(null, plan);
        assertFalse(rdma.contains("weft.cxl.regions"), rdma);
        assertTrue(rdma.contains("weft.rdma.provider = software"), rdma);
        // the file must be valid HOCON
        com.typesafe.config.Config parsed = com.typesafe.config.ConfigFactory.parseString(cxl);
        assertEquals(3, parsed.getStringList("weft.cluster.seed-nodes").size());
        assertEquals("2s", parsed.getString("weft.cluster.seed-node-timeout"));
    }

    @Test
    void aNodeRunsWeftMainWithTheLauncherFlagsAndItsOwnPorts() throws Exception {
        DemoCommand.NodePlan a = DemoCommand.plan(dir, 30000).get(0);
        List<String> cmd = DemoCommand.nodeCommand(a, dir.resolve("demo.conf"));
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
        List<String> on17 = DemoCommand.jvmFlags(17, null);
        assertFalse(on17.contains("--enable-native-access=ALL-UNNAMED"), on17.toString());
        List<String> on23 = DemoCommand.jvmFlags(23, " -Xmx1g  -Dweft.stats.log=true ");
        assertTrue(on23.containsAll(List.of("--enable-native-access=ALL-UNNAMED",
                "--sun-misc-unsafe-memory-access=allow")), on23.toString());
        assertEquals(List.of("-Xmx1g", "-Dweft.stats.log=true"), on23.subList(on23.size() - 2, on23.size()));
        assertTrue(on23.indexOf("-Xmx512m") < on23.indexOf("-Xmx1g"), "the user's heap wins: " + on23);
    }

    @Test
    void onlyProcessesRunningWeftMainAreSignalled() throws Exception {
        assertFalse(DemoCommand.isWeftNode(ProcessHandle.current()), "this test JVM runs no WeftMain");
        // a long argument first, as a node's class path is: the main class lies beyond the first page of cmdline
        Process p = new ProcessBuilder("sh", "-c", "sleep 60; true", "x".repeat(8192), WeftMain.class.getName())
                .start();
        try {
            assertTrue(DemoCommand.isWeftNode(p.toHandle()));
        } finally {
            p.destroyForcibly();
            p.waitFor();
        }
        assertFalse(DemoCommand.isWeftNode(p.toHandle()), "a process that exited is not signalled");
    }

    @Test
    void usageErrorsExitTwoBeforeAnythingStarts() throws Exception {
        StringWriter err = new StringWriter();
        var cli = WeftMain.commandLine();
        cli.setErr(new PrintWriter(err, true));
        cli.setOut(new PrintWriter(new StringWriter(), true));
        Path kept = dir.resolve("kept");
        assertEquals(2, cli.execute("demo", "--transport", "tcp", "--dir", kept.toString()));
        assertTrue(err.toString().contains("--transport is cxl or rdma; got 'tcp'"), err.toString());
        assertEquals(2, cli.execute("demo", "--base-port", "65533", "--dir", kept.toString()));
        assertTrue(err.toString().contains("--base-port must leave room for 7 ports"), err.toString());
        assertFalse(Files.exists(kept), "nothing created");
    }
}
