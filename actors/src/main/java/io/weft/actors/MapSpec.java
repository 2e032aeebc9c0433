package io.weft.actors;

import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * What a client asks for when it maps a device, as with IBNBD: a storage node, a path there, an access mode — or,
 * for a mirrored device, 2 or 3 legs on different storage nodes (then {@code storageNode}/{@code path} are the
 * first leg's).
 *
 * @param deviceId    name of the device on this client node (also its NBD export name); letters, digits, {@code -_.}
 * @param storageNode the storage node's {@code weft.node.name}
 * @param path        backing store path on that node, absolute or relative to its first export root
 * @param mode        access mode
 * @param transport   transport name, or null/empty for {@code weft.transport.default}
 * @param legs        empty for a single-leg device; else the mirror legs, 2 or 3, on different storage nodes
 */
public record MapSpec(String deviceId, String storageNode, String path, AccessMode mode, String transport,
                      List<Leg> legs) {

    /** Most legs a mirrored device can have (the mirror's limit). */
    public static final int MAX_LEGS = 3;

    /** One mirror leg: a storage node and a path there. */
    public record Leg(String storageNode, String path) {
        public Leg {
            if (storageNode == null || storageNode.isBlank()) {
                throw new IllegalArgumentException("leg storage node missing");
            }
            if (path == null || path.isBlank()) {
                throw new IllegalArgumentException("leg path missing (on " + storageNode + ")");
            }
        }

        /** Parses {@code storage:path} (the path may itself contain ':'). */
        public static Leg parse(String text) {
            int colon = text == null ? -1 : text.indexOf(':');
            if (colon <= 0 || colon == text.length() - 1) {
                throw new IllegalArgumentException("a leg is STORAGE:PATH, e.g. a:x.img; got '" + text + "'");
            }
            return new Leg(text.substring(0, colon), text.substring(colon + 1));
        }

        @Override
        public String toString() {
            return storageNode + ":" + path;
        }
    }

    public MapSpec {
        if (deviceId == null || !deviceId.matches("[A-Za-z0-9][A-Za-z0-9._-]{0,63}")) {
            throw new IllegalArgumentException("device id must be 1-64 of [A-Za-z0-9._-] starting with a letter or"
                    + " digit: " + deviceId);
        }
        legs = legs == null ? List.of() : List.copyOf(legs);
        if (!legs.isEmpty()) {
            if (legs.size() < 2 || legs.size() > MAX_LEGS) {
                throw new IllegalArgumentException("a mirrored device needs 2 or 3 legs, got " + legs.size());
            }
            Set<String> nodes = new HashSet<>();
            for (Leg leg : legs) {
                if (!nodes.add(leg.storageNode())) {
                    throw new IllegalArgumentException("mirror legs must be on different storage nodes: '"
                            + leg.storageNode() + "' is named twice");
                }
            }
            if (storageNode == null || storageNode.isBlank()) {
                storageNode = legs.get(0).storageNode();
                path = legs.get(0).path();
            } else if (!storageNode.equals(legs.get(0).storageNode()) || !legs.get(0).path().equals(path)) {
                throw new IllegalArgumentException("give either storageNode/path or legs, not both");
            }
        }
        if (storageNode == null || storageNode.isBlank()) {
            throw new IllegalArgumentException("storage node missing");
        }
        if (path == null || path.isBlank()) {
            throw new IllegalArgumentException("path missing");
        }
        if (mode == null) {
            throw new IllegalArgumentException("access mode missing: use ro, rw or migration");
        }
    }

    /** A single-leg device. */
    public MapSpec(String deviceId, String storageNode, String path, AccessMode mode, String transport) {
        this(deviceId, storageNode, path, mode, transport, List.of());
    }

    /** A mirrored device over {@code legs} (2 or 3, different storage nodes). */
    public static MapSpec mirrored(String deviceId, List<Leg> legs, AccessMode mode, String transport) {
        if (legs == null || legs.isEmpty()) {
            throw new IllegalArgumentException("a mirrored device needs 2 or 3 legs, got none");
        }
        return new MapSpec(deviceId, null, null, mode, transport, legs);
    }

    public boolean mirrored() {
        return !legs.isEmpty();
    }

    public MapSpec withTransport(String t) {
        return new MapSpec(deviceId, storageNode, path, mode, t, legs);
    }

    /** The single-leg spec one leg's session opens (same device id: each leg is on its own storage node). */
    public MapSpec leg(int index) {
        Leg leg = legs.get(index);
        return new MapSpec(deviceId, leg.storageNode(), leg.path(), mode, transport);
    }
}
