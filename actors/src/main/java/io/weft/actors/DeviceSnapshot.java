package io.weft.actors;

import io.weft.core.io.BlockDevice;
import io.weft.core.mirror.MirrorBlockDevice;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * What a device's actor ({@code client.DeviceActor} or {@code client.MirroredDeviceActor}) last decided about its
 * device, as one immutable value: {@link NodeState.DeviceEntry#snapshot()} hands a reader the whole of one moment, so
 * a reader never pairs a state with another moment's error. Only the owning actor publishes a new one
 * ({@link NodeState.DeviceEntry#update}); every change is a copy ({@code with…}).
 *
 * <p>The mirror and the leg devices are data-plane handles, not state, but they are carried here rather than as
 * separate references: which leg sits at which position ({@code legPositions}), its session's publication slot
 * ({@code legSessions}) and its device ({@code legDevices}) must agree by index for a reader (a drill compares the
 * legs through {@code legDevices}), and the mirror exists from one moment on. The sessions' own state is not here:
 * each session publishes its own {@link SessionSnapshot} in its {@link NodeState.SessionView}.
 *
 * @param state        the device's state machine position
 * @param stateSince   when it entered that state (unchanged by a publication that keeps the state)
 * @param transport    the transport the device's path uses ("" before any)
 * @param exportedAs   where the device is exported ("" while not)
 * @param exportError  why the export failed ("" if it did not)
 * @param lastError    why the device (or, for a mirror, which leg) last lost its path or failed ("" before any)
 * @param reconnects   how many times a path came back after it was lost
 * @param mirror       a mirrored device's mirror once every leg has opened, else null
 * @param legPositions per mirror position, the leg there, null for an empty position (empty until published; legs
 *                     are added and removed at run time, so this, not {@code spec.legs()}, is the current leg set)
 * @param legSessions  per mirror position, that leg's session view, null for an empty position
 * @param legDevices   per mirror position, the leg's own device as the mirror sees it (read directly, it bypasses
 *                     the mirror's read policy), null for an empty position
 */
public record DeviceSnapshot(DeviceState state, Instant stateSince, String transport, String exportedAs,
                             String exportError, String lastError, long reconnects, MirrorBlockDevice mirror,
                             List<MapSpec.Leg> legPositions, List<NodeState.SessionView> legSessions,
                             List<BlockDevice> legDevices) {

    public DeviceSnapshot {
        legPositions = frozen(legPositions);
        legSessions = frozen(legSessions);
        legDevices = frozen(legDevices);
    }

    /** A device just being mapped over {@code transport}. */
    public static DeviceSnapshot mapping(String transport) {
        return new DeviceSnapshot(DeviceState.MAPPING, Instant.now(), transport == null ? "" : transport, "", "", "",
                0, null, List.of(), List.of(), List.of());
    }

    /** In {@code next}; {@code stateSince} moves only when the state changes. */
    public DeviceSnapshot withState(DeviceState next) {
        if (next == state) {
            return this;
        }
        return new DeviceSnapshot(next, Instant.now(), transport, exportedAs, exportError, lastError, reconnects,
                mirror, legPositions, legSessions, legDevices);
    }

    public DeviceSnapshot withTransport(String next) {
        return new DeviceSnapshot(state, stateSince, next, exportedAs, exportError, lastError, reconnects, mirror,
                legPositions, legSessions, legDevices);
    }

    /** The export's outcome: where it is, or why it failed. */
    public DeviceSnapshot withExport(String nextExportedAs, String nextExportError) {
        return new DeviceSnapshot(state, stateSince, transport, nextExportedAs, nextExportError, lastError,
                reconnects, mirror, legPositions, legSessions, legDevices);
    }

    public DeviceSnapshot withLastError(String next) {
        return new DeviceSnapshot(state, stateSince, transport, exportedAs, exportError, next, reconnects, mirror,
                legPositions, legSessions, legDevices);
    }

    /** One more path came back. */
    public DeviceSnapshot withReconnect() {
        return new DeviceSnapshot(state, stateSince, transport, exportedAs, exportError, lastError, reconnects + 1,
                mirror, legPositions, legSessions, legDevices);
    }

    public DeviceSnapshot withMirror(MirrorBlockDevice next) {
        return new DeviceSnapshot(state, stateSince, transport, exportedAs, exportError, lastError, reconnects, next,
                legPositions, legSessions, legDevices);
    }

    /** A mirrored device's legs by position: the three lists are indexed alike. */
    public DeviceSnapshot withLegs(List<MapSpec.Leg> positions, List<NodeState.SessionView> sessions,
                                   List<BlockDevice> devices) {
        return new DeviceSnapshot(state, stateSince, transport, exportedAs, exportError, lastError, reconnects,
                mirror, positions, sessions, devices);
    }

    /** An unmodifiable copy that, unlike {@link List#copyOf}, keeps the nulls of empty positions. */
    private static <T> List<T> frozen(List<T> list) {
        if (list == null || list.isEmpty()) {
            return List.of();
        }
        return Collections.unmodifiableList(new ArrayList<>(list));
    }
}
