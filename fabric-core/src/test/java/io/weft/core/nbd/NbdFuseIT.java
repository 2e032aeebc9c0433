package io.weft.core.nbd;

import static io.weft.testkit.Await.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.testing.RequiredTool;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A real filesystem on the export: nbdfuse exposes it as a file, a loop device makes that a block device, then
 * mkfs.ext4, mount, file IO, umount and a forced read-only fsck that must find nothing to fix. Needs root (loop
 * devices and mounts); every mount, loop device and FUSE mount is undone even when an assertion fails.
 */
@Timeout(240)
class NbdFuseIT {
    private static final long SIZE = 128L << 20;
    private static final Duration TOOL_TIMEOUT = Duration.ofSeconds(90);

    @Test
    void ext4OnLoopOverNbdfuseSurvivesFsck() throws Exception {
        String nbdfuse = RequiredTool.require("nbdfuse", "libnbd-bin").toString();
        String fusermount = RequiredTool.require("fusermount3", "fuse3").toString();
        String losetup = RequiredTool.require("losetup", "mount").toString();
        String mkfs = RequiredTool.require("mkfs.ext4", "e2fsprogs").toString();
        String e2fsck = RequiredTool.require("e2fsck", "e2fsprogs").toString();
        String mount = RequiredTool.require("mount", "mount").toString();
        String umount = RequiredTool.require("umount", "mount").toString();
        assertEquals("root", System.getProperty("user.name"), "this test needs root for losetup and mount");

        try (NbdFixture fx = new NbdFixture(SIZE)) {
            Path fuseDir = Files.createDirectory(fx.dir.resolve("fuse"));
            Path mountDir = Files.createDirectory(fx.dir.resolve("mnt"));
            Path pidFile = fx.dir.resolve("nbdfuse.pid");
            Path image = fuseDir.resolve("disk");
            Process fuse = null;
            String loop = null;
            boolean mounted = false;
            try {
                fuse = new ProcessBuilder(nbdfuse, "-P", pidFile.toString(), image.toString(),
                        fx.unixUri("vol0")).redirectErrorStream(true)
                        .redirectOutput(fx.dir.resolve("nbdfuse.log").toFile()).start();
                Process started = fuse;
                await("nbdfuse mounted", Duration.ofSeconds(30), () -> Files.exists(pidFile) || !started.isAlive());
                assertTrue(fuse.isAlive(), () -> "nbdfuse exited: " + readQuietly(fx.dir.resolve("nbdfuse.log")));
                assertEquals(SIZE, Files.size(image));

                loop = ExternalTool.run(TOOL_TIMEOUT, losetup, "--find", "--show", image.toString()).assertOk()
                        .output().trim();
                assertTrue(loop.startsWith("/dev/loop"), loop);
                ExternalTool.run(TOOL_TIMEOUT, mkfs, "-q", "-F", loop).assertOk();
                ExternalTool.run(TOOL_TIMEOUT, mount, loop, mountDir.toString()).assertOk();
                mounted = true;

                Random random = new Random(9);
                List<byte[]> contents = new ArrayList<>();
                for (int i = 0; i < 20; i++) {
                    byte[] data = new byte[1 + random.nextInt(1 << 20)];
                    random.nextBytes(data);
                    contents.add(data);
                    Files.write(mountDir.resolve("file-" + i), data);
                }
                ExternalTool.run(TOOL_TIMEOUT, "sync", "-f", mountDir.toString()).assertOk();
                ExternalTool.run(TOOL_TIMEOUT, umount, mountDir.toString()).assertOk();
                mounted = false;
                // Drop the loop device's cached pages so the second mount reads through NBD again.
                ExternalTool.run(TOOL_TIMEOUT, "blockdev", "--flushbufs", loop).assertOk();

                ExternalTool.Result fsck = ExternalTool.run(TOOL_TIMEOUT, e2fsck, "-fn", loop);
                assertEquals(0, fsck.exitCode(), "e2fsck found problems:\n" + fsck.output());

                ExternalTool.run(TOOL_TIMEOUT, mount, "-o", "ro", loop, mountDir.toString()).assertOk();
                mounted = true;
                for (int i = 0; i < contents.size(); i++) {
                    assertArrayEquals(contents.get(i), Files.readAllBytes(mountDir.resolve("file-" + i)),
                            "file-" + i);
                }
            } finally {
                if (mounted) {
                    ExternalTool.run(TOOL_TIMEOUT, umount, mountDir.toString());
                }
                if (loop != null && loop.startsWith("/dev/loop")) {
                    ExternalTool.run(TOOL_TIMEOUT, losetup, "-d", loop);
                }
                if (fuse != null) {
                    ExternalTool.run(TOOL_TIMEOUT, fusermount, "-u", fuseDir.toString());
                    if (!fuse.waitFor(30, TimeUnit.SECONDS)) {
                        fuse.destroyForcibly();
                    }
                }
            }
        }
    }

    private static String readQuietly(Path p) {
        try {
            return Files.readString(p);
        } catch (IOException e) {
            return "(no log)";
        }
    }
}
