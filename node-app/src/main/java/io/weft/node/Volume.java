package io.weft.node;

import io.weft.core.io.BlockDevice;
import io.weft.core.stats.IoStats;
import io.weft.core.stats.StatsBlockDevice;
import io.weft.core.store.FileBackingStore;
import io.weft.core.store.IoWorkerBlockDevice;
import io.weft.core.store.StoreBlockDevice;
import io.weft.node.config.NodeSettings;
import io.weft.node.config.VolumeSettings;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One served volume: its backing store and the device chain exported over NBD,
 * {@code StatsBlockDevice -> [IoWorkerBlockDevice ->] StoreBlockDevice -> FileBackingStore}.
 */
public final class Volume implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(Volume.class);

    private final VolumeSettings settings;
    private final FileBackingStore store;
    private final StatsBlockDevice device;
    private final boolean created;

    private Volume(VolumeSettings settings, FileBackingStore store, StatsBlockDevice device, boolean created) {
        this.settings = settings;
        this.store = store;
        this.device = device;
        this.created = created;
    }

    /** Opens (or creates, sparse) the volume's store and builds its device chain. */
    public static Volume open(VolumeSettings settings, NodeSettings node) throws StartupException {
        Path path = settings.path();
        FileBackingStore store;
        boolean created = false;
        try {
            if (Files.exists(path)) {
                store = FileBackingStore.open(path, settings.readOnly(), settings.directIo());
                if (settings.size().isPresent() && settings.size().getAsLong() != store.size()) {
                    LOG.info("volume {}: {} exists with {} bytes; keeping that size (the configured {} applies "
                            + "only when creating it)", settings.name(), path, store.size(), settings.size().getAsLong());
                }
            } else if (settings.readOnly()) {
                throw new StartupException(settings.key() + ".path: " + path
                        + " does not exist (a read-only volume is never created)");
            } else if (settings.size().isEmpty()) {
                throw new StartupException(settings.key() + ".size: " + path
                        + " does not exist; give a size to create it");
            } else {
                Path parent = path.getParent();
                if (parent != null) {
                    Files.createDirectories(parent);
                }
                store = FileBackingStore.createSparse(path, settings.size().getAsLong(), settings.directIo());
                created = true;
            }
            try {
                store.lock();
            } catch (IOException e) {
                store.close();
                throw e;
            }
        } catch (IOException e) {
            throw new StartupException(settings.key() + ".path: cannot open " + path + ": " + e.getMessage(), e);
        } catch (RuntimeException e) {
            // e.g. the native library failed to load: still the user's environment, not a Weft bug.
            throw new StartupException(settings.key() + ".path: cannot open " + path + ": " + e, e);
        }
        StoreBlockDevice storeDevice = new StoreBlockDevice(store, settings.readOnly(), node.maxIoSize());
        BlockDevice chain = settings.ioThreads() > 0
                ? new IoWorkerBlockDevice(storeDevice, settings.ioThreads(), node.ioQueueDepth(), settings.name())
                : storeDevice;
        StatsBlockDevice measured = new StatsBlockDevice(chain, new IoStats(settings.name()),
                node.statsInFlightSlots());
        return new Volume(settings, store, measured, created);
    }

    public String name() {
        return settings.name();
    }

    public VolumeSettings settings() {
        return settings;
    }

    /** The device exported over NBD (measured). */
    public StatsBlockDevice device() {
        return device;
    }

    public IoStats stats() {
        return device.stats();
    }

    public FileBackingStore store() {
        return store;
    }

    /** True if this start created the file. */
    public boolean created() {
        return created;
    }

    /** Makes every completed write durable. */
    public void flush() throws IOException {
        store.flush();
    }

    /** Closes the device chain (IO workers drain first) and the store. */
    @Override
    public void close() {
        device.close();
    }
}
