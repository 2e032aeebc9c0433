package io.weft.core.store;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.weft.core.store.StoreTestFiles.Medium;
import io.weft.core.testing.RequiredTool;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Hostile: two writers on one image. Every store takes an open-file-description lock when it opens (exclusive for
 * read-write, shared for read-only), so a second writer in this JVM, another Weft process or qemu is refused and
 * writes nothing.
 */
class ImageLockTest {
    private static final int MIB = 1 << 20;

    private Path dir;
    private Path image;
    private byte[] original;

    @BeforeEach
    void setUp() throws IOException {
        dir = Medium.DISK.newDirectory();
        image = dir.resolve("vol.img");
        original = new byte[MIB];
        Arrays.fill(original, (byte) 0x5a);
        Files.write(image, original);
    }

    @AfterEach
    void tearDown() throws IOException {
        StoreTestFiles.deleteRecursively(dir);
    }

    @Test
    void aSecondReadWriteOpenInTheSameJvmIsRefusedAndNamesTheImage() throws IOException {
        try (FileBackingStore first = FileBackingStore.open(image, false)) {
            IOException refused = assertThrows(IOException.class, () -> FileBackingStore.open(image, false).close());
            assertTrue(refused.getMessage().contains(image.toString()), refused.getMessage());
            assertTrue(refused.getMessage().contains("locked by another process"), refused.getMessage());
            // A reader is refused too while a writer holds the image: it could read torn data.
            assertThrows(IOException.class, () -> FileBackingStore.open(image, true).close());
            first.read(0, ByteBuffer.allocate(512)); // the holder is unaffected
        }
        assertArrayEquals(original, Files.readAllBytes(image), "nothing was written by the refused opens");
    }

    @Test
    void readersShareAndKeepWritersOut() throws IOException {
        try (FileBackingStore reader1 = FileBackingStore.open(image, true);
             FileBackingStore reader2 = FileBackingStore.open(image, true)) {
            assertThrows(IOException.class, () -> FileBackingStore.open(image, false).close());
            reader1.read(0, ByteBuffer.allocate(512));
            reader2.read(0, ByteBuffer.allocate(512));
        }
    }

    @Test
    void theLockGoesWithClose() throws IOException {
        FileBackingStore.open(image, false).close();
        try (FileBackingStore again = FileBackingStore.open(image, false)) {
            again.write(0, ByteBuffer.wrap(new byte[512]), true);
        }
    }

    /** Both ways this process holds an image (read-write and read-only) keep qemu from writing it. */
    @ParameterizedTest(name = "held read-only: {0}")
    @ValueSource(booleans = {false, true})
    void qemuCannotWriteAnImageThisProcessHolds(boolean readOnly) throws Exception {
        Path qemuIo = RequiredTool.require("qemu-io", "qemu-utils");
        try (FileBackingStore held = FileBackingStore.open(image, readOnly)) {
            Process qemu = new ProcessBuilder(qemuIo.toString(), "-f", "raw", "-c", "write -P 0xab 0 4k",
                    image.toString()).redirectErrorStream(true).start();
            String out = new String(qemu.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertTrue(qemu.waitFor(60, TimeUnit.SECONDS), "qemu-io finished");
            System.out.println("qemu-io against a held image: " + out);
            assertTrue(out.contains("lock"), "qemu-io reports a lock conflict: " + out);
            assertNotEquals(0, qemu.exitValue(), "qemu-io failed: " + out);
        }
        assertArrayEquals(original, Files.readAllBytes(image), "qemu wrote nothing");
    }

    @Test
    void thisProcessCannotOpenReadWriteAnImageQemuHolds() throws Exception {
        Path qemuIo = RequiredTool.require("qemu-io", "qemu-utils");
        Process qemu = new ProcessBuilder(qemuIo.toString(), "-f", "raw", image.toString())
                .redirectErrorStream(true).start();
        try {
            OutputStream commands = qemu.getOutputStream();
            BufferedReader out = new BufferedReader(new InputStreamReader(qemu.getInputStream(),
                    StandardCharsets.UTF_8));
            // qemu-io has the image open (and locked) once it answered a read.
            commands.write("read 0 512\n".getBytes(StandardCharsets.US_ASCII));
            commands.flush();
            StringBuilder seen = new StringBuilder();
            String line;
            while ((line = out.readLine()) != null && !line.contains("read 512/512 bytes")) {
                seen.append(line).append('\n');
            }
            assertTrue(line != null, "qemu-io opened the image: " + seen);
            IOException refused = assertThrows(IOException.class, () -> FileBackingStore.open(image, false).close());
            assertTrue(refused.getMessage().contains("locked by another process"), refused.getMessage());
            commands.write("quit\n".getBytes(StandardCharsets.US_ASCII));
            commands.flush();
            assertTrue(qemu.waitFor(60, TimeUnit.SECONDS), "qemu-io quit");
        } finally {
            qemu.destroyForcibly();
        }
        try (FileBackingStore free = FileBackingStore.open(image, false)) {
            free.read(0, ByteBuffer.allocate(512)); // qemu's locks went with its exit
        }
    }
}
