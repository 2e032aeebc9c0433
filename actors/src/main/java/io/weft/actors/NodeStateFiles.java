package io.weft.actors;

import io.weft.actors.client.DeviceRegistry;
import io.weft.actors.management.ManagementToken;
import java.nio.file.Path;

/**
 * The files a node keeps its own state in, at the top of its data directory: the device record, the management
 * token, and per mirrored device its leg file and write-intent bitmap (plus the temporary files each is replaced
 * through). The data directory is also an export root, so {@link ExportRoots} refuses these by name: mapped, a
 * client could write a bitmap (a resync would then skip regions) or read the token.
 */
public final class NodeStateFiles {
    /** {@code <data-dir>/<device>.legs}: which leg sits at which mirror position. */
    public static final String LEGS_SUFFIX = ".legs";
    /** {@code <data-dir>/<device>.wib}: a mirrored device's write-intent bitmap. */
    public static final String BITMAP_SUFFIX = ".wib";
    private static final String REPLACEMENT_SUFFIX = ".tmp";

    private NodeStateFiles() {
    }

    /** Whether {@code file}, directly inside the data directory, is (or replaces) one of the node's state files. */
    public static boolean isStateFileName(String file) {
        if (file.startsWith("." + ManagementToken.FILE_NAME) && file.endsWith(REPLACEMENT_SUFFIX)) {
            return true; // the token's temporary file (created beside it, then moved over it)
        }
        String name = file.endsWith(REPLACEMENT_SUFFIX)
                ? file.substring(0, file.length() - REPLACEMENT_SUFFIX.length()) : file;
        return name.equals(DeviceRegistry.FILE_NAME) || name.equals(ManagementToken.FILE_NAME)
                || (name.endsWith(LEGS_SUFFIX) && name.length() > LEGS_SUFFIX.length())
                || (name.endsWith(BITMAP_SUFFIX) && name.length() > BITMAP_SUFFIX.length());
    }

    /**
     * The data directory as state files are compared against: its real path (every symlink resolved, as export roots
     * resolve requested paths), or its normalised absolute path while it does not exist.
     */
    public static Path resolvedDataDir(Path dataDir) {
        try {
            return dataDir.toRealPath();
        } catch (java.io.IOException e) {
            return dataDir.toAbsolutePath().normalize();
        }
    }

    /** Whether {@code path} (a real or normalised absolute path) is a node state file of {@code dataDir}. */
    public static boolean isStateFile(Path dataDir, Path path) {
        Path parent = path.getParent();
        Path name = path.getFileName();
        return parent != null && name != null && parent.equals(dataDir) && isStateFileName(name.toString());
    }
}
