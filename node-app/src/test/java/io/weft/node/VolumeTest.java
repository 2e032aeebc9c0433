package io.weft.node;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import io.weft.node.config.NodeSettings;
import io.weft.node.config.SettingsLoader;
import io.weft.node.config.VolumeSettings;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class VolumeTest {
    @TempDir
    Path dataDir;

    private NodeSettings settings(Map<String, String> dashD) {
        return SettingsLoader.parse(SettingsLoader.load(Optional.empty(), dashD,
                Map.of("weft.data-dir", dataDir.toString())), Path.of("/"));
    }

    private static long allocatedBlocks(Path file) throws IOException {
        return ((Number) Files.getAttribute(file, "unix:size")).longValue() > 0
                ? Long.parseLong(new String(new ProcessBuilder("stat", "-c", "%b", file.toString()).start()
                        .getInputStream().readAllBytes()).trim())
                : 0;
    }

    @Test
    void theDefaultVolumeIsCreatedSparseWithOneGibibyte() throws Exception {
        NodeSettings s = settings(Map.of());
        try (Volume vol0 = Volume.open(s.volumes().get(0), s)) {
            assertTrue(vol0.created());
            Path file = dataDir.resolve("vol0.img");
            assertEquals(1L << 30, Files.size(file));
            assertTrue(allocatedBlocks(file) < 64, "sparse: " + allocatedBlocks(file) + " blocks");
            assertEquals(1L << 30, vol0.device().info().size());
            assertFalse(vol0.device().info().readOnly());

            ByteBuffer data = ByteBuffer.allocate(4096);
            data.put(0, (byte) 0x5a);
            AtomicInteger status = new AtomicInteger(-1);
            vol0.device().submit(IoOp.WRITE, 8192, 4096, 0, data, 1, (tag, st) -> status.set(st));
            assertEquals(IoStatus.OK, status.get());
            assertEquals(1, vol0.stats().snapshot().op(IoOp.WRITE).ops(), "the exported device is measured");
            vol0.flush();
        }
        try (Volume again = Volume.open(settings(Map.of()).volumes().get(0), settings(Map.of()))) {
            assertFalse(again.created());
            ByteBuffer back = ByteBuffer.allocate(4096);
            again.store().read(8192, back);
            assertEquals(0x5a, back.get(0));
        }
    }

    @Test
    void anExistingFileKeepsItsSize() throws Exception {
        Path file = dataDir.resolve("vol0.img");
        Files.write(file, new byte[64 * 1024]);
        NodeSettings s = settings(Map.of());
        try (Volume vol0 = Volume.open(s.volumes().get(0), s)) {
            assertFalse(vol0.created());
            assertEquals(64 * 1024, vol0.device().info().size());
            assertArrayEquals(new byte[64 * 1024], Files.readAllBytes(file));
        }
    }

    @Test
    void aVolumeInUseByAnotherOwnerIsRefused() throws Exception {
        NodeSettings s = settings(Map.of());
        try (Volume first = Volume.open(s.volumes().get(0), s)) {
            StartupException e = assertThrows(StartupException.class, () -> Volume.open(s.volumes().get(0), s));
            assertTrue(e.getMessage().startsWith("weft.volumes[0].path: cannot open "), e.getMessage());
            assertTrue(e.getMessage().contains("in use"), e.getMessage());
            assertTrue(first.device().info().size() > 0);
        }
    }

    @Test
    void aMissingReadOnlyVolumeOrOneWithoutSizeIsRefusedByKey() {
        VolumeSettings ro = new VolumeSettings("weft.volumes[3]", "ro", dataDir.resolve("ro.img"),
                java.util.OptionalLong.of(4096), true, "", false, 0);
        StartupException e = assertThrows(StartupException.class, () -> Volume.open(ro, settings(Map.of())));
        assertTrue(e.getMessage().startsWith("weft.volumes[3].path: "), e.getMessage());
        assertFalse(Files.exists(dataDir.resolve("ro.img")));

        VolumeSettings noSize = new VolumeSettings("weft.volumes[1]", "n", dataDir.resolve("n.img"),
                java.util.OptionalLong.empty(), false, "", false, 0);
        StartupException e2 = assertThrows(StartupException.class, () -> Volume.open(noSize, settings(Map.of())));
        assertTrue(e2.getMessage().startsWith("weft.volumes[1].size: "), e2.getMessage());
    }

    @Test
    void ioWorkersServeTheVolumeWhenConfigured() throws Exception {
        NodeSettings s = settings(Map.of("weft.store.io-threads", "2"));
        try (Volume vol0 = Volume.open(s.volumes().get(0), s)) {
            assertTrue(vol0.device().delegate() instanceof io.weft.core.store.IoWorkerBlockDevice);
            AtomicInteger status = new AtomicInteger(-1);
            vol0.device().submit(IoOp.FLUSH, 0, 0, 0, null, 9, (tag, st) -> status.set(st));
            long deadline = System.nanoTime() + 10_000_000_000L;
            while (status.get() < 0 && System.nanoTime() < deadline) {
                Thread.onSpinWait();
            }
            assertEquals(IoStatus.OK, status.get());
        }
    }
}
