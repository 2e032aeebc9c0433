package io.weft.actors.client;

import io.weft.actors.MapSpec;
import io.weft.actors.NodeStateFiles;
import io.weft.core.mirror.MirrorBlockDevice;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.List;

/**
 * Which leg sits at which mirror position, next to the write-intent bitmap ({@code <data-dir>/<device>.legs}). The
 * bitmap's in-sync and full-sync masks are per position, so a later map (after a client restart) must put each leg
 * back where the masks expect it. Text, one line per occupied position, for people as much as for the client:
 * <pre>
 *   # weft mirror legs of device m0: position storage:path
 *   0 a:m0.img
 *   2 c:m0.img
 * </pre>
 * Written whole to a temporary file, forced, then renamed over the old one, so a crash leaves the old or the new
 * list, never a mix. Callers order the writes against the bitmap so that the file never names a leg whose masks
 * the bitmap has already forgotten (see {@link MirroredDeviceActor}).
 */
final class LegFile {
    private final Path path;

    LegFile(Path path) {
        this.path = path;
    }

    Path path() {
        return path;
    }

    /** @return the leg at each position (null = empty), or null when the file does not exist */
    MapSpec.Leg[] read() throws IOException {
        if (!Files.exists(path)) {
            return null;
        }
        MapSpec.Leg[] legs = new MapSpec.Leg[MirrorBlockDevice.MAX_LEGS];
        List<String> lines = Files.readAllLines(path, StandardCharsets.UTF_8);
        for (String raw : lines) {
            String line = raw.strip();
            if (line.isEmpty() || line.startsWith("#")) {
                continue;
            }
            int space = line.indexOf(' ');
            int position;
            try {
                position = space < 0 ? -1 : Integer.parseInt(line.substring(0, space));
            } catch (NumberFormatException e) {
                position = -1;
            }
            if (position < 0 || position >= legs.length || legs[position] != null) {
                throw new IOException("bad line '" + line + "' (expected 'POSITION STORAGE:PATH', position 0.."
                        + (legs.length - 1) + ", each once)");
            }
            legs[position] = MapSpec.Leg.parse(line.substring(space + 1).strip());
        }
        return legs;
    }

    void write(MapSpec.Leg[] legs) throws IOException {
        StringBuilder text = new StringBuilder("# weft mirror legs of device " + deviceName()
                + ": position storage:path (written by the client node; read at the next map)\n");
        for (int i = 0; i < legs.length; i++) {
            if (legs[i] != null) {
                text.append(i).append(' ').append(legs[i]).append('\n');
            }
        }
        Path tmp = path.resolveSibling(path.getFileName() + ".tmp");
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            ByteBuffer bytes = ByteBuffer.wrap(text.toString().getBytes(StandardCharsets.UTF_8));
            while (bytes.hasRemaining()) {
                ch.write(bytes);
            }
            ch.force(true);
        }
        Files.move(tmp, path, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    }

    String describe(MapSpec.Leg[] legs) {
        StringBuilder b = new StringBuilder("[");
        for (MapSpec.Leg leg : legs) {
            if (leg != null) {
                b.append(b.length() == 1 ? "" : ", ").append(leg);
            }
        }
        return b.append(']').toString();
    }

    private String deviceName() {
        String name = path.getFileName().toString();
        return name.endsWith(NodeStateFiles.LEGS_SUFFIX)
                ? name.substring(0, name.length() - NodeStateFiles.LEGS_SUFFIX.length()) : name;
    }
}
