package io.weft.core.store;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.store.StoreTestFiles.Medium;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Hostile: paths under an export root that try to lead out of it, including symlinks swapped in after the path was
 * checked. Run with openat2 (RESOLVE_BENEATH) and with the O_NOFOLLOW walk that kernels without it use.
 */
class OpenBeneathTest {
    private static final int MIB = 1 << 20;

    enum Resolver { OPENAT2, NOFOLLOW_WALK }

    private Path dir;
    private Path root;
    private Path outside;

    private void setUp(Resolver resolver) throws IOException {
        LinuxIo.openat2Disabled = resolver == Resolver.NOFOLLOW_WALK;
        dir = Medium.DISK.newDirectory();
        root = Files.createDirectories(dir.resolve("exports"));
        outside = Files.createDirectories(dir.resolve("outside"));
    }

    @AfterEach
    void tearDown() throws IOException {
        LinuxIo.openat2Disabled = false;
        StoreTestFiles.deleteRecursively(dir);
    }

    private static byte[] pattern(int value) {
        byte[] b = new byte[MIB];
        Arrays.fill(b, (byte) value);
        return b;
    }

    /** The check a storage node makes before it opens: the real path lies under the root. */
    private boolean checkedInside(Path relative) throws IOException {
        return root.resolve(relative).toRealPath().startsWith(root.toRealPath());
    }

    private void swapForSymlink(Path inside, Path target) throws IOException {
        Files.move(inside, inside.resolveSibling(inside.getFileName() + ".moved"));
        Files.createSymbolicLink(inside, target);
    }

    @ParameterizedTest
    @EnumSource(Resolver.class)
    void anImageSwappedForASymlinkOutOfTheRootAfterTheCheckIsRefused(Resolver resolver) throws IOException {
        setUp(resolver);
        Files.write(root.resolve("vol.img"), pattern(1));
        Path victim = Files.write(outside.resolve("victim.img"), pattern(0x77));
        assertTrue(checkedInside(Path.of("vol.img")));
        swapForSymlink(root.resolve("vol.img"), victim);

        IOException refused = assertThrows(IOException.class,
                () -> FileBackingStore.openBeneath(root, Path.of("vol.img"), false, false).close());
        assertTrue(refused.getMessage().contains("refused") || refused.getMessage().contains("symbolic"),
                refused.getMessage());
        assertArrayEquals(pattern(0x77), Files.readAllBytes(victim), "nothing outside the root changed");
    }

    @ParameterizedTest
    @EnumSource(Resolver.class)
    void aDirectorySwappedForASymlinkOutOfTheRootAfterTheCheckIsRefused(Resolver resolver) throws IOException {
        setUp(resolver);
        Files.createDirectories(root.resolve("team"));
        Files.write(root.resolve("team/vol.img"), pattern(1));
        Path victim = Files.write(outside.resolve("vol.img"), pattern(0x77));
        assertTrue(checkedInside(Path.of("team/vol.img")));
        swapForSymlink(root.resolve("team"), outside);

        IOException refused = assertThrows(IOException.class,
                () -> FileBackingStore.openBeneath(root, Path.of("team/vol.img"), false, false).close());
        assertTrue(refused.getMessage().contains("refused"), refused.getMessage());
        assertArrayEquals(pattern(0x77), Files.readAllBytes(victim), "nothing outside the root changed");
        assertThrows(IOException.class,
                () -> FileBackingStore.createBeneath(root, Path.of("team/new.img"), MIB).close());
        assertFalse(Files.exists(outside.resolve("new.img")), "nothing created outside the root");
    }

    @ParameterizedTest
    @EnumSource(Resolver.class)
    void dotDotAndAbsolutePathsAndAbsoluteSymlinksAreRefused(Resolver resolver) throws IOException {
        setUp(resolver);
        Path victim = Files.write(outside.resolve("victim.img"), pattern(0x77));
        Files.createSymbolicLink(root.resolve("abs"), victim);
        Files.createDirectories(root.resolve("a"));
        for (Path hostile : new Path[] {Path.of("../outside/victim.img"), Path.of("a/../../outside/victim.img"),
                Path.of("a/../abs"), victim, Path.of("abs")}) {
            assertThrows(IOException.class, () -> FileBackingStore.openBeneath(root, hostile, false, false).close(),
                    hostile.toString());
        }
        // A new image may not be created through a symlink either, not even a dangling one.
        Files.createSymbolicLink(root.resolve("dangling"), outside.resolve("created.img"));
        assertThrows(IOException.class,
                () -> FileBackingStore.createBeneath(root, Path.of("dangling"), MIB).close());
        assertFalse(Files.exists(outside.resolve("created.img")));
        assertArrayEquals(pattern(0x77), Files.readAllBytes(victim), "nothing outside the root changed");
    }

    @ParameterizedTest
    @EnumSource(Resolver.class)
    void createsAndOpensImagesBelowTheRootLocked(Resolver resolver) throws IOException {
        setUp(resolver);
        try (FileBackingStore created = FileBackingStore.createBeneath(root, Path.of("team/a/vol.img"), MIB)) {
            assertEquals(MIB, created.size());
            created.write(0, ByteBuffer.wrap(pattern(3), 0, 4096), true);
            assertThrows(IOException.class,
                    () -> FileBackingStore.openBeneath(root, Path.of("team/a/vol.img"), false, false).close(),
                    "the created image is locked");
        }
        assertThrows(java.nio.file.FileAlreadyExistsException.class,
                () -> FileBackingStore.createBeneath(root, Path.of("team/a/vol.img"), MIB).close());
        try (FileBackingStore opened = FileBackingStore.openBeneath(root, Path.of("team/a/vol.img"), true, false)) {
            ByteBuffer back = ByteBuffer.allocate(4096);
            opened.read(0, back);
            assertArrayEquals(Arrays.copyOf(pattern(3), 4096), back.array());
        }
    }

    @ParameterizedTest
    @EnumSource(Resolver.class)
    void aSymlinkThatStaysInsideIsFollowedOnlyByOpenat2(Resolver resolver) throws IOException {
        setUp(resolver);
        Files.write(root.resolve("real.img"), pattern(1));
        Files.createSymbolicLink(root.resolve("alias.img"), Path.of("real.img"));
        if (resolver == Resolver.OPENAT2) {
            FileBackingStore.openBeneath(root, Path.of("alias.img"), true, false).close();
        } else {
            assertThrows(IOException.class,
                    () -> FileBackingStore.openBeneath(root, Path.of("alias.img"), true, false).close());
        }
    }
}
