package io.weft.actors.client;

import io.weft.actors.MapSpec;
import io.weft.actors.NodeStateFiles;
import io.weft.core.mirror.WriteIntentBitmap;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Where each leg of a mirrored device sits, and the two files that remember it across client restarts: the
 * write-intent bitmap ({@code <data-dir>/<device>.wib}, whose in-sync and full-sync masks are per position) and the
 * leg file ({@code <data-dir>/<device>.legs}, see {@link LegFile}). {@link MirroredDeviceActor} places the mapped legs
 * here when it starts and opens the bitmap here once every leg has opened.
 *
 * <p>Not an actor: it belongs to one {@link MirroredDeviceActor} and runs on its thread.
 */
final class MirrorLayout {
    private final String deviceId;
    private final Path wib;
    private final LegFile legFile;
    /** Positions whose leg the leg file did not know: they get a full sync when the bitmap is opened. */
    private int unknownLegs;
    private String error = "";

    MirrorLayout(Path dataDir, String deviceId) {
        this.deviceId = deviceId;
        this.wib = dataDir.resolve(deviceId + NodeStateFiles.BITMAP_SUFFIX);
        this.legFile = new LegFile(dataDir.resolve(deviceId + NodeStateFiles.LEGS_SUFFIX));
    }

    LegFile legFile() {
        return legFile;
    }

    /** Why the legs cannot be placed (the map must fail), or "". */
    String error() {
        return error;
    }

    /**
     * Decides each mapped leg's position, into {@code legs} (index = position). A fresh mirror (no bitmap yet): the
     * map's order. An existing bitmap with a leg file: a leg the file names goes back to its position; a leg it does
     * not name takes a free position and a full sync; legs the file names but the map does not are left out (their
     * positions become empty, so a later map of them full-syncs them too).
     */
    void place(List<MapSpec.Leg> wanted, MapSpec.Leg[] legs) {
        MapSpec.Leg[] known = null;
        if (Files.exists(wib)) {
            try {
                known = legFile.read();
            } catch (IOException | RuntimeException e) {
                error = legFile.path() + " is unreadable (" + e.getMessage() + "); to start over, remove it"
                        + " and " + wib.getFileName() + ", map the legs again (a new mirror assumes its legs"
                        + " identical) and run `weft leg resync " + deviceId + " INDEX --full` for"
                        + " every leg but the one that holds the data";
            }
        }
        if (known == null) {
            for (int i = 0; i < wanted.size(); i++) {
                legs[i] = wanted.get(i);
            }
            return;
        }
        List<MapSpec.Leg> unknown = new ArrayList<>();
        for (MapSpec.Leg leg : wanted) {
            int at = Arrays.asList(known).indexOf(leg);
            if (at >= 0) {
                legs[at] = leg;
            } else {
                unknown.add(leg);
            }
        }
        if (unknown.size() == wanted.size()) {
            error = "none of the legs " + wanted + " is one of the legs " + legFile.describe(known) + " that "
                    + wib + " tracks; map at least one of those, or remove " + wib.getFileName() + " and "
                    + legFile.path().getFileName() + " to start a new mirror (its legs are then assumed identical)";
        }
        for (MapSpec.Leg leg : unknown) {
            for (int i = 0; i < legs.length; i++) {
                if (legs[i] == null && (known[i] == null || !wanted.contains(known[i]))) {
                    legs[i] = leg;
                    unknownLegs |= 1 << i;
                    break;
                }
            }
        }
    }

    /**
     * Opens the bitmap (or creates it for a new mirror of {@code size} bytes), gives the legs it never tracked a full
     * sync, and writes the leg file for {@code legs}. Throws when the bitmap is for another size or a file cannot be
     * written; the map then fails.
     */
    WriteIntentBitmap openBitmap(long size, MapSpec.Leg[] legs) throws IOException {
        Files.createDirectories(wib.getParent());
        boolean reopened = Files.exists(wib);
        WriteIntentBitmap bitmap = reopened ? WriteIntentBitmap.open(wib)
                : WriteIntentBitmap.create(wib, size, WriteIntentBitmap.DEFAULT_REGION_SIZE);
        if (bitmap.deviceSize() != size) {
            bitmap.close();
            throw new IOException(wib + " is for a " + bitmap.deviceSize() + "-byte device, the legs have "
                    + size + " bytes; to start over, remove it and " + legFile.path().getFileName() + ", map"
                    + " the legs again (a new mirror assumes its legs identical) and run `weft leg resync "
                    + deviceId + " INDEX --full` for every leg but the one that holds the data");
        }
        if (reopened && unknownLegs != 0) {
            // Legs the bitmap never tracked: copy everything to them (before the leg file names them).
            bitmap.updateLegs(bitmap.inSyncMask() & ~unknownLegs, bitmap.fullSyncMask() | unknownLegs);
        }
        // Before the mirror clears the masks of positions this map leaves empty: a leg file naming a leg whose
        // masks are gone would later resync it partially instead of fully.
        legFile.write(legs);
        return bitmap;
    }
}
