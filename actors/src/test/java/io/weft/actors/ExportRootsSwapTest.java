package io.weft.actors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.weft.core.store.FileBackingStore;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Hostile: a symlink swapped into an export root after the path was checked and before the store is opened. The
 * storage node checks a client's path when the open arrives and opens the store in the backend actor afterwards;
 * the open must not follow what was swapped in.
 */
class ExportRootsSwapTest {
    @TempDir
    Path tmp;

    private static byte[] pattern(int value) {
        byte[] b = new byte[1 << 20];
        Arrays.fill(b, (byte) value);
        return b;
    }

    /** As the storage node does it: check (StorageService), then open (BackendActor), with the swap in between. */
    private static FileBackingStore checkThenOpen(ExportRoots roots, String requested, Runnable betweenCheckAndOpen)
            throws Exception {
        Path real = roots.resolveExisting(requested);
        betweenCheckAndOpen.run();
        return roots.open(real, false);
    }

    private static void swap(Path inside, Path target) {
        try {
            Files.move(inside, inside.resolveSibling(inside.getFileName() + ".moved"));
            Files.createSymbolicLink(inside, target);
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    @Test
    void aDirectorySwappedForASymlinkOutOfTheRootIsNotFollowed() throws Exception {
        Path root = Files.createDirectories(tmp.resolve("exports"));
        Path outside = Files.createDirectories(tmp.resolve("outside"));
        Files.createDirectories(root.resolve("team"));
        Files.write(root.resolve("team/vol.img"), pattern(1));
        Path victim = Files.write(outside.resolve("vol.img"), pattern(0x77));
        ExportRoots roots = new ExportRoots(List.of(root));

        assertThrows(IOException.class, () -> {
            try (FileBackingStore store = checkThenOpen(roots, "team/vol.img",
                    () -> swap(root.resolve("team"), outside))) {
                store.write(0, ByteBuffer.wrap(new byte[4096]), true);
            }
        });
        assertArrayEquals(pattern(0x77), Files.readAllBytes(victim), "nothing outside the root changed");
    }

    @Test
    void anImageSwappedForAnAbsoluteSymlinkIsNotFollowed() throws Exception {
        Path root = Files.createDirectories(tmp.resolve("exports"));
        Files.write(root.resolve("vol.img"), pattern(1));
        Path victim = Files.write(tmp.resolve("victim.img"), pattern(0x77));
        ExportRoots roots = new ExportRoots(List.of(root));

        assertThrows(IOException.class, () -> {
            try (FileBackingStore store = checkThenOpen(roots, "vol.img", () -> swap(root.resolve("vol.img"),
                    victim))) {
                store.write(0, ByteBuffer.wrap(new byte[4096]), true);
            }
        });
        assertArrayEquals(pattern(0x77), Files.readAllBytes(victim), "nothing outside the root changed");
    }
}
