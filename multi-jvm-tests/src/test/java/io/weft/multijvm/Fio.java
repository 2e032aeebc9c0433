package io.weft.multijvm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.testing.RequiredTool;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * fio over a node's NBD export with crc32c verification: what a test writes (and has acknowledged) it can verify
 * later with {@link #verify}, from any node that maps the same backend.
 */
final class Fio {
    private final String fio = RequiredTool.require("fio", "fio").toString();
    private final Path dir;

    Fio(Path dir) {
        this.dir = dir;
    }

    /** A 4 MiB area ({@code area} × 8 MiB into the device) of verified random 8 KiB writes. */
    private List<String> job(NodeProcess node, String id, int area, String... extra) {
        List<String> cmd = new ArrayList<>(List.of(fio, "--name=" + id + "-" + area, "--ioengine=nbd",
                "--uri=nbd://" + node.ready.getProperty("nbd") + "/" + id, "--rw=randwrite", "--bs=8k",
                "--iodepth=8", "--size=4m", "--offset=" + (area * 8) + "m", "--randseed=" + (1000 + area),
                "--verify=crc32c", "--verify_fatal=1", "--verify_state_save=0"));
        cmd.addAll(List.of(extra));
        return cmd;
    }

    /** Writes the area and reads it back; every write acknowledged. */
    void write(NodeProcess node, String id, int area) throws Exception {
        run(node.name + "-" + id + "-write-" + area, job(node, id, area, "--do_verify=1"));
    }

    /** Checks that the area holds what {@link #write} wrote (through whichever node maps the backend now). */
    void verify(NodeProcess node, String id, int area) throws Exception {
        run(node.name + "-" + id + "-verify-" + area, job(node, id, area, "--verify_only"));
    }

    private void run(String label, List<String> cmd) throws Exception {
        Path out = dir.resolve("fio-" + label + ".log");
        Process p = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true)
                .redirectOutput(out.toFile()).start();
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("fio " + label + " did not finish within 60 s:\n" + text(out));
        }
        String text = text(out);
        assertEquals(0, p.exitValue(), text);
        assertTrue(text.contains("err= 0"), text);
        assertTrue(!text.contains("verify:") && !text.contains("bad magic"), text);
    }

    private static String text(Path out) {
        try {
            return Files.readString(out, StandardCharsets.UTF_8);
        } catch (java.io.IOException e) {
            return "(no output: " + e + ")";
        }
    }

}
