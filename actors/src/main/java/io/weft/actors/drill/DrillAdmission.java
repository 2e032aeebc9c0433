package io.weft.actors.drill;

import io.weft.actors.DeviceSnapshot;
import io.weft.actors.DeviceState;
import io.weft.actors.MapSpec;
import io.weft.actors.NodeState;
import io.weft.actors.SessionSnapshot;
import io.weft.actors.drill.harness.DrillOptions;
import java.util.List;
import java.util.Locale;

/**
 * Whether a drill may run, as {@link DrillService} decides before it starts one: which storage nodes hold the
 * device, whether the device can take the workload now, whether a cut has sessions (and paths) to cut, and whether
 * the target's membership proves who it is. Each answer is null (go) or the refusal's message.
 */
final class DrillAdmission {
    private DrillAdmission() {
    }

    static List<String> storageNodes(MapSpec spec) {
        return spec.legs().isEmpty() ? List.of(spec.storageNode())
                : spec.legs().stream().map(MapSpec.Leg::storageNode).distinct().toList();
    }

    /** Why the device cannot take this workload now, or null. Messages about the device's state start "device". */
    static String unfit(NodeState.DeviceEntry entry, DrillOptions options) {
        String id = entry.spec.deviceId();
        DeviceSnapshot now = entry.snapshot();
        if (now.state() == DeviceState.MAPPING || now.state() == DeviceState.CLOSED) {
            return "device " + id + " is " + now.state().name().toLowerCase(Locale.ROOT) + "; drill a ready device";
        }
        if (!entry.spec.legs().isEmpty() && now.mirror() == null) {
            return "device " + id + " has no mirror yet (its legs are still opening)";
        }
        var info = entry.device.info();
        if (info.readOnly()) {
            return "device " + id + " is read-only; a drill writes";
        }
        if (options.workingSetBytes() > info.size()) {
            return "working set " + options.workingSetBytes() + " bytes exceeds the size of " + id + " ("
                    + info.size() + " bytes)";
        }
        if (options.maxIoBytes() > info.maxIoSize()) {
            return "maxIo " + options.maxIoBytes() + " exceeds what " + id + " takes per request ("
                    + info.maxIoSize() + " bytes)";
        }
        return null;
    }

    /** The session views of the device's legs on {@code target} (the device's own for a single-backend device). */
    static List<NodeState.SessionView> sessionsTo(NodeState.DeviceEntry entry, String target) {
        if (entry.spec.legs().isEmpty()) {
            return List.of(entry.sessionView);
        }
        return entry.snapshot().legSessions().stream().filter(l -> l != null && l.storageNode.equals(target)).toList();
    }

    static String cutRefusal(NodeState.DeviceEntry entry, List<NodeState.SessionView> legs,
                             DrillRequest req) {
        if (legs.isEmpty()) {
            return "device " + req.device() + " has no session to " + req.target() + " yet";
        }
        for (NodeState.SessionView view : legs) {
            SessionSnapshot leg = view.snapshot();
            if (leg.session() == null) {
                return "device " + req.device() + " has no session to " + req.target() + " yet";
            }
            if (req.path() != null) {
                int paths = leg.transportPaths();
                if (paths <= 1) {
                    return "device " + req.device() + "'s session to " + req.target() + " has "
                            + (paths == 0 ? "no connected transport path" : "a single transport path ("
                            + entry.snapshot().transport() + ")") + "; \"path\" cuts one path of a multipath session"
                            + " (rdma with"
                            + " several weft.rdma.listen addresses on the storage node): leave it out to cut the"
                            + " whole session";
                }
                if (req.path() >= paths) {
                    return "path " + req.path() + " out of range: device " + req.device() + "'s session to "
                            + req.target() + " has paths 0.." + (paths - 1);
                }
            }
        }
        return null;
    }

    /**
     * Null when the target's membership proves who it is; else why a drill must not trust what it says about itself
     * (its pid, its host). A drill signals the pid the target reports, so a process that joined under a storage
     * node's name could direct signals at any process of the drilling node's user. Trusted: every member of a cluster
     * whose transport is TLS with mutual authentication (only holders of a certificate of the cluster's CA are
     * members), and, without TLS, a member reached over loopback (only a process on this host can be one).
     */
    static String unauthenticatedTarget(com.typesafe.config.Config pekko, org.apache.pekko.actor.Address target,
                                        String name) {
        String artery = "pekko.remote.artery.";
        boolean mutualTls = "tls-tcp".equals(pekko.getString(artery + "transport"))
                && pekko.getBoolean(artery + "ssl.config-ssl-engine.require-mutual-authentication");
        if (mutualTls) {
            return null;
        }
        String host = target.host().isDefined() ? target.host().get() : null;
        if (host != null && io.weft.actors.security.NetworkExposure.isLoopback(host)) {
            return null;
        }
        return "storage node " + name + " is a member at " + (host == null ? target : host) + ", not over loopback,"
                + " and the cluster does not run TLS with mutual authentication, so nothing proves that member is the"
                + " storage node it claims to be; a drill signals the process it names. Set weft.tls.certificates on"
                + " every node (docs/security.md, \"Drills\")";
    }
}
