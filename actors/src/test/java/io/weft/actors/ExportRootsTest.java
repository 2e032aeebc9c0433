package io.weft.actors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ExportRootsTest {
    @TempDir
    Path tmp;

    private ExportRoots roots(Path root) {
        return new ExportRoots(List.of(root));
    }

    @Test
    void servesFilesUnderTheRootByAbsoluteOrRelativePath() throws Exception {
        Path root = Files.createDirectories(tmp.resolve("exports"));
        Path vol = Files.createFile(root.resolve("vol0"));
        ExportRoots r = roots(root);
        assertEquals(vol.toRealPath(), r.resolveExisting(vol.toString()));
        assertEquals(vol.toRealPath(), r.resolveExisting("vol0"));
    }

    @Test
    void refusesDotDotEvenWhenItWouldStayInside() throws Exception {
        Path root = Files.createDirectories(tmp.resolve("exports"));
        Files.createDirectories(root.resolve("a"));
        Files.createFile(root.resolve("vol0"));
        var e = assertThrows(ExportRoots.RefusedPathException.class,
                () -> roots(root).resolveExisting(root + "/a/../vol0"));
        assertTrue(e.getMessage().contains(".."), e.getMessage());
    }

    @Test
    void refusesPathsOutsideEveryRoot() throws Exception {
        Path root = Files.createDirectories(tmp.resolve("exports"));
        Path outside = Files.createFile(tmp.resolve("secret"));
        var e = assertThrows(ExportRoots.RefusedPathException.class,
                () -> roots(root).resolveExisting(outside.toString()));
        assertTrue(e.getMessage().contains("outside"), e.getMessage());
    }

    @Test
    void refusesSymlinksThatEscapeButFollowOnesThatStayInside() throws Exception {
        Path root = Files.createDirectories(tmp.resolve("exports"));
        Path outside = Files.createFile(tmp.resolve("secret"));
        Path inside = Files.createFile(root.resolve("real"));
        Files.createSymbolicLink(root.resolve("escape"), outside);
        Files.createSymbolicLink(root.resolve("alias"), inside);
        Files.createSymbolicLink(root.resolve("dir-escape"), tmp);
        ExportRoots r = roots(root);
        assertThrows(ExportRoots.RefusedPathException.class, () -> r.resolveExisting("escape"));
        assertThrows(ExportRoots.RefusedPathException.class, () -> r.resolveExisting("dir-escape/secret"));
        assertEquals(inside.toRealPath(), r.resolveExisting("alias"));
    }

    @Test
    void refusesTheRootItselfDirectoriesMissingFilesAndNoRoots() throws Exception {
        Path root = Files.createDirectories(tmp.resolve("exports"));
        Files.createDirectories(root.resolve("dir"));
        ExportRoots r = roots(root);
        assertThrows(ExportRoots.RefusedPathException.class, () -> r.resolveExisting(root.toString()));
        assertThrows(ExportRoots.RefusedPathException.class, () -> r.resolveExisting("dir"));
        assertThrows(ExportRoots.RefusedPathException.class, () -> r.resolveExisting("missing"));
        var none = assertThrows(ExportRoots.RefusedPathException.class,
                () -> new ExportRoots(List.of()).resolveExisting("x"));
        assertTrue(none.getMessage().contains("export-roots"), none.getMessage());
    }

    @Test
    void newVolumesMustLandUnderARootAndNotExist() throws Exception {
        Path root = Files.createDirectories(tmp.resolve("exports"));
        Files.createSymbolicLink(root.resolve("out"), tmp);
        Files.createFile(root.resolve("taken"));
        ExportRoots r = roots(root);
        assertEquals(root.toRealPath().resolve("sub/new.img"), r.resolveNew("sub/new.img"));
        assertThrows(ExportRoots.RefusedPathException.class, () -> r.resolveNew("out/new.img"));
        assertThrows(ExportRoots.RefusedPathException.class, () -> r.resolveNew("taken"));
        assertThrows(ExportRoots.RefusedPathException.class, () -> r.resolveNew("../new.img"));
        assertThrows(ExportRoots.RefusedPathException.class, () -> r.resolveNew(tmp.resolve("x.img").toString()));
    }
}
