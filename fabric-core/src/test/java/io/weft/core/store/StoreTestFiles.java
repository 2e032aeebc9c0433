package io.weft.core.store;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/** Temp directories on tmpfs and on a disk file system, and the external checks store tests rely on. */
final class StoreTestFiles {
    private StoreTestFiles() {
    }

    /** Where the store files of one test live. */
    enum Medium {
        TMPFS, DISK;

        Path newDirectory() throws IOException {
            Path base = this == TMPFS ? Path.of("/dev/shm") : Path.of("target").toAbsolutePath();
            Path dir = base.resolve("weft-store-test-" + UUID.randomUUID());
            Files.createDirectories(dir);
            String type = run("stat", "-f", "-c", "%T", dir.toString()).trim();
            if (this == TMPFS) {
                assertEquals("tmpfs", type, dir + " should be on tmpfs");
            } else {
                assertNotEquals("tmpfs", type, dir + " should be on a disk file system");
            }
            return dir;
        }
    }

    static void deleteRecursively(Path dir) throws IOException {
        if (dir == null || !Files.exists(dir)) {
            return;
        }
        try (Stream<Path> walk = Files.walk(dir)) {
            for (Path p : (Iterable<Path>) walk.sorted(Comparator.reverseOrder())::iterator) {
                Files.deleteIfExists(p);
            }
        }
    }

    /** Bytes the file system has allocated for {@code file} (st_blocks x block unit), as stat(1) reports them. */
    static long allocatedBytes(Path file) throws IOException {
        String[] parts = run("stat", "-c", "%b %B", file.toString()).trim().split(" ");
        return Long.parseLong(parts[0]) * Long.parseLong(parts[1]);
    }

    static String run(String... command) throws IOException {
        Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
        try {
            String out = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!process.waitFor(30, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                throw new IOException(String.join(" ", command) + " did not finish");
            }
            if (process.exitValue() != 0) {
                throw new IOException(String.join(" ", command) + " failed (" + process.exitValue() + "): " + out);
            }
            return out;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException(e);
        }
    }
}
