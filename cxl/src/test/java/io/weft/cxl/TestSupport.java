package io.weft.cxl;

import io.weft.core.store.FileBackingStore;
import io.weft.core.store.StoreBlockDevice;
import io.weft.cxl.layout.ChannelLayout;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/** Shared helpers: unique /dev/shm paths, stores, and polling with a deadline (never a sleep as synchronisation). */
public final class TestSupport {
    private TestSupport() {
    }

    /**
     * Heartbeat 50 ms, dead after 1 s (the default is 100 ms / 1 s): twenty missed beats before a verdict, so a test
     * JVM starved by a busy CI machine is not declared dead by mistake.
     */
    public static CxlOptions fastOptions() {
        return CxlOptions.defaults().withDeadTimeout(Duration.ofMillis(50), Duration.ofSeconds(1))
                .withIoTimeout(Duration.ofSeconds(60));
    }

    public static Path shmPath(String what) {
        Path dir = Path.of("/dev/shm");
        if (!Files.isDirectory(dir)) {
            dir = Path.of(System.getProperty("java.io.tmpdir"));
        }
        return dir.resolve("weft-cxl-test-" + what + "-" + UUID.randomUUID());
    }

    public static StoreBlockDevice newStore(Path path, long size) throws IOException {
        return new StoreBlockDevice(FileBackingStore.createSparse(path, size));
    }

    public static void deleteQuietly(Path... paths) {
        for (Path p : paths) {
            try {
                Files.deleteIfExists(p);
            } catch (IOException e) {
                // best effort cleanup of a temp file
            }
        }
    }

    /**
     * A client channel on segment 0 of {@code region} (initialised with entry CRCs, claimed with {@code token}) whose
     * producer of index 0 is "preempted" after writing its entry and before publishing it, the window a loaded
     * scheduler opens: it counts {@code paused} down, then waits for {@code resume} (30 s at most).
     */
    static ClientChannel channelPausingFirstProducer(CxlRegion region, long token, CountDownLatch paused,
                                                     CountDownLatch resume) {
        ChannelSegment seg = region.channel(0);
        seg.initialise(0, 0, ChannelLayout.FLAG_ENTRY_CRC);
        if (!seg.casClientClaim(0, token)) {
            throw new AssertionError("segment 0 is claimed already");
        }
        return new ClientChannel(seg, token, System.nanoTime(), null, index -> {
            if (index == 0) {
                paused.countDown();
                try {
                    resume.await(30, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        });
    }
}
