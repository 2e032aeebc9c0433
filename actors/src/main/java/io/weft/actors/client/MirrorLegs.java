package io.weft.actors.client;

import io.weft.actors.DeviceState;
import io.weft.actors.MapSpec;
import io.weft.actors.NodeState;
import io.weft.actors.Reply;
import io.weft.actors.protocol.SessionCommand;
import io.weft.core.io.BlockDevice;
import io.weft.core.io.DeviceInfo;
import io.weft.core.mirror.LegState;
import io.weft.core.mirror.MirrorBlockDevice;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.apache.pekko.actor.typed.ActorRef;

/**
 * The leg membership of one mirrored device: per mirror position (index = position, null = empty) the leg, its
 * session, the session's published view, its {@link LegPath} once in the mirror, why its path last went down, and
 * — until the mirror exists — its first path. Answers what the device actor asks about its legs (which position a
 * session serves, which legs are in sync or can serve, what the device's state is) and carries out the run-time
 * removal and resync of a leg, keeping the leg file in step with the mirror ({@link LegFile}).
 *
 * <p>Not an actor: it belongs to one {@link MirroredDeviceActor}, which spawns the sessions, and runs on its thread.
 */
final class MirrorLegs {
    static final int POSITIONS = MirrorBlockDevice.MAX_LEGS;

    final MapSpec.Leg[] legs = new MapSpec.Leg[POSITIONS];
    @SuppressWarnings("unchecked")
    final ActorRef<SessionCommand>[] sessions = new ActorRef[POSITIONS];
    final NodeState.SessionView[] views = new NodeState.SessionView[POSITIONS];
    final LegPath[] paths = new LegPath[POSITIONS];
    /** Why a leg's session last lost its path (null while it has one): says what a following drop was caused by. */
    final String[] pathDownReason = new String[POSITIONS];
    // Until the mirror exists: each leg's first path.
    final BlockDevice[] pendingPaths = new BlockDevice[POSITIONS];
    final DeviceInfo[] pendingInfos = new DeviceInfo[POSITIONS];

    private final String deviceId;
    private final LegFile legFile;

    MirrorLegs(String deviceId, LegFile legFile) {
        this.deviceId = deviceId;
        this.legFile = legFile;
    }

    /** The position whose current session is {@code session}, or -1 (a removed or aborted leg's late report). */
    int positionOf(ActorRef<SessionCommand> session) {
        for (int i = 0; i < POSITIONS; i++) {
            if (session.equals(sessions[i])) {
                return i;
            }
        }
        return -1;
    }

    /** The lowest empty position, or -1. */
    int lowestFree() {
        for (int i = 0; i < POSITIONS; i++) {
            if (legs[i] == null) {
                return i;
            }
        }
        return -1;
    }

    /** True once every leg has had its first path (the mirror can be built). */
    boolean allOpened() {
        for (int i = 0; i < POSITIONS; i++) {
            if (legs[i] != null && pendingPaths[i] == null) {
                return false;
            }
        }
        return true;
    }

    /** The legs that have not opened yet, for a map that timed out. */
    String notOpened() {
        StringBuilder missing = new StringBuilder();
        for (int i = 0; i < POSITIONS; i++) {
            if (legs[i] != null && pendingPaths[i] == null) {
                missing.append(missing.length() == 0 ? "" : ", ").append(legs[i]);
            }
        }
        return missing.toString();
    }

    List<MapSpec.Leg> current() {
        List<MapSpec.Leg> out = new ArrayList<>();
        for (MapSpec.Leg l : legs) {
            if (l != null) {
                out.add(l);
            }
        }
        return out;
    }

    String describe() {
        StringBuilder b = new StringBuilder();
        for (int j = 0; j < POSITIONS; j++) {
            if (legs[j] != null) {
                b.append(b.length() == 0 ? "" : ", ").append(j).append(" = ").append(legs[j]);
            }
        }
        return b.length() == 0 ? "none" : b.toString();
    }

    int firstInSync(MirrorBlockDevice mirror) {
        for (int j = 0; j < POSITIONS; j++) {
            if (legs[j] != null && mirror.legState(j) == LegState.IN_SYNC) {
                return j;
            }
        }
        return -1;
    }

    boolean otherInSync(MirrorBlockDevice mirror, int leg) {
        for (int j = 0; j < POSITIONS; j++) {
            if (j != leg && legs[j] != null && mirror.legState(j) == LegState.IN_SYNC) {
                return true;
            }
        }
        return false;
    }

    /** True while some leg is connected and in sync: it can serve reads and be copied from. */
    boolean anyServing(MirrorBlockDevice mirror) {
        for (int j = 0; j < POSITIONS; j++) {
            if (legs[j] != null && paths[j] != null && paths[j].connected()
                    && mirror.legState(j) == LegState.IN_SYNC) {
                return true;
            }
        }
        return false;
    }

    /** READY when every leg is connected and in sync, RECONNECTING when no leg can serve, else DEGRADED. */
    DeviceState deviceState(MirrorBlockDevice mirror) {
        boolean anyServing = false;
        boolean allInSync = true;
        for (int i = 0; i < POSITIONS; i++) {
            if (legs[i] == null) {
                continue;
            }
            LegState s = mirror.legState(i);
            boolean connected = paths[i].connected();
            anyServing |= connected && s == LegState.IN_SYNC;
            allInSync &= connected && s == LegState.IN_SYNC;
        }
        return !anyServing ? DeviceState.RECONNECTING : allInSync ? DeviceState.READY : DeviceState.DEGRADED;
    }

    /** Publishes the current leg set (by position), the sessions' views and the legs' paths for HTTP, JMX, drills. */
    void publish(NodeState.DeviceEntry entry) {
        List<NodeState.SessionView> published = new ArrayList<>(POSITIONS);
        for (int i = 0; i < POSITIONS; i++) {
            published.add(legs[i] == null ? null : views[i]);
        }
        entry.update(d -> d.withLegs(Arrays.asList(legs), published, Arrays.asList(paths)));
    }

    /** The size every opened leg has, or -1 before any has opened (see {@link #differingSizes}). */
    long openedSize() {
        for (int i = 0; i < POSITIONS; i++) {
            if (legs[i] != null) {
                return pendingInfos[i].size();
            }
        }
        return -1;
    }

    /** Why the opened legs cannot make one mirror (they differ in size), or null. */
    String differingSizes() {
        long size = -1;
        MapSpec.Leg first = null;
        for (int i = 0; i < POSITIONS; i++) {
            if (legs[i] == null) {
                continue;
            }
            if (size < 0) {
                size = pendingInfos[i].size();
                first = legs[i];
            } else if (pendingInfos[i].size() != size) {
                return "mirror legs differ in size: " + first + " is " + size + " bytes, " + legs[i] + " is "
                        + pendingInfos[i].size() + " bytes; all legs must be the same size";
            }
        }
        return null;
    }

    /** Why {@code leg} cannot be added at position {@code free} (the lowest free one, -1 for none), or null. */
    String refuseNewLeg(MirrorBlockDevice mirror, MapSpec.Leg leg, int free) {
        if (free < 0) {
            return "device " + deviceId + " already has " + POSITIONS + " legs, the most a mirror can have; remove"
                    + " one first";
        } else if (current().stream().anyMatch(l -> l.storageNode().equals(leg.storageNode()))) {
            return "device " + deviceId + " already has a leg on storage node " + leg.storageNode()
                    + "; mirror legs must be on different storage nodes";
        } else if (!anyServing(mirror)) {
            return "device " + deviceId + " has no connected in-sync leg to copy from";
        } else if (mirror.legState(free) != LegState.EMPTY) {
            return "mirror position " + free + " is not free (" + mirror.legState(free) + ")";
        }
        return null;
    }

    /** Why the leg being added, now open with geometry {@code offered}, cannot join the mirror, or null. */
    String refuseOpenedLeg(MirrorBlockDevice mirror, MapSpec.Leg leg, DeviceInfo offered) {
        DeviceInfo served = mirror.info();
        if (offered.size() != served.size()) {
            return "leg " + leg + " has " + offered.size() + " bytes, the mirror " + deviceId + " has "
                    + served.size() + "; a new leg must be the same size";
        }
        if (offered.maxIoSize() < served.maxIoSize() || offered.logicalBlockSize() > served.logicalBlockSize()
                || (offered.readOnly() && !served.readOnly())) {
            // The export already promised its clients these limits; a narrower leg would refuse their requests.
            return "leg " + leg + " takes requests of at most " + offered.maxIoSize() + " bytes in "
                    + offered.logicalBlockSize() + "-byte blocks" + (offered.readOnly() ? ", read-only" : "")
                    + "; the device serves up to " + served.maxIoSize() + " bytes in " + served.logicalBlockSize()
                    + "-byte blocks: add a leg over the same transport as the others";
        }
        if (!anyServing(mirror)) {
            return "device " + deviceId + " has no connected in-sync leg to copy from";
        }
        return null;
    }

    /** Empties position {@code p}: its session is closed and its remaining events are ignored. */
    void closeSession(int p) {
        sessions[p].tell(new SessionActor.Close());
        sessions[p] = null;
        views[p] = null;
    }

    /**
     * Removes the leg at {@code i} from the mirror (refused for the last leg that holds the data). On success the
     * position is empty, its session closed, and the answer is ok; otherwise nothing changed.
     */
    Reply remove(MirrorBlockDevice mirror, int i) {
        // The bitmap's in-sync mask also names the leg that stays authoritative while every leg is down.
        boolean holdsEverything = mirror.legState(i) == LegState.IN_SYNC
                || (mirror.bitmap().inSyncMask() & (1 << i)) != 0;
        if (holdsEverything && !otherInSync(mirror, i)) {
            return Reply.error("leg " + i + " (" + legs[i] + ") is the last in-sync leg of " + deviceId
                    + "; removing it would lose the device's data (add or resync another leg first)");
        }
        MapSpec.Leg removed = legs[i];
        legs[i] = null;
        try {
            // Before the mirror forgets the position: a crash in between must not leave the file naming a leg
            // whose bitmap masks are gone (a later map would resync it partially instead of fully).
            legFile.write(legs);
            mirror.removeLeg(i);
        } catch (IOException | RuntimeException e) {
            legs[i] = removed;
            try {
                legFile.write(legs);
            } catch (IOException again) {
                // The file lacks a leg that is still there: a later map full-syncs it. Safe, only slower.
            }
            return Reply.error("leg " + i + " (" + removed + ") of " + deviceId + " not removed: " + e.getMessage());
        }
        paths[i] = null;
        pathDownReason[i] = null;
        closeSession(i);
        return Reply.ok("removed leg " + i + " (" + removed + ") from " + deviceId + "; its session is"
                + " closed, the other legs keep their indexes (" + describe() + ")");
    }

    /** Starts a resync of the leg at {@code i} from an in-sync leg; the answer says whether it started. */
    Reply resync(MirrorBlockDevice mirror, int i, boolean full) {
        if (!anyServing(mirror)) {
            return Reply.error("device " + deviceId + " has no connected in-sync leg to copy from");
        }
        if (!paths[i].connected()) {
            return Reply.error("leg " + i + " (" + legs[i] + ") of " + deviceId + " is not connected; it"
                    + " is resynced when its path returns" + (full ? " (run this again then for a full"
                    + " copy)" : ""));
        }
        try {
            mirror.resyncLeg(i, full);
        } catch (IllegalStateException e) {
            return Reply.error("leg " + i + " (" + legs[i] + ") of " + deviceId + " not resynced: " + e.getMessage());
        }
        String what = full ? "all " + mirror.info().size() + " bytes" : "the regions the bitmap marks";
        return Reply.ok("resyncing leg " + i + " (" + legs[i] + ") of " + deviceId + ": copying " + what
                + " to it in the background from an in-sync leg; it serves no reads until in sync");
    }
}
