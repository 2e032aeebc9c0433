package io.weft.cxl.layout;

import java.nio.charset.StandardCharsets;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * Body layouts of the four metadata tables (each body lives inside a {@link MetaEntry} copy, 468 bytes). Strings are a
 * 2-byte length followed by UTF-8 bytes; every length read back is clamped to its field so a corrupt record cannot
 * make a reader run past the body.
 *
 * <pre>
 * host:     | nodeId (8) | state (4) | name (2 + 62)                                                      |
 * backend:  | hostSlot (4) | state (4) | size (8) | logicalBlock (4) | maxIo (4) | capabilities (4) |
 *           | channels (4) | channel segment ids (4 × 32) @32 | store path (2 + 254) @160 | nodeId (8) @416 |
 *           | grant digest (32) @424: SHA-256 of the mapping's capability, all zero = open to any blkdev        |
 * blkdev:   | backendSlot (4) | hostSlot (4) | queues (4) | state (4) | nodeId (8)                      |
 * segment:  | type (4) | state (4) | backendSlot (4) | channelIndex (4)                                  |
 * </pre>
 */
public final class Records {
    public static final int MAX_CHANNELS_PER_BACKEND = 32;

    /** Object states kept in records. */
    public static final int STATE_FREE = 0;
    public static final int STATE_RUNNING = 1;
    public static final int STATE_STOPPED = 2;

    public static final int SEGMENT_TYPE_NONE = 0;
    public static final int SEGMENT_TYPE_CHANNEL = 1;

    /* Capability bits: DeviceInfo.capabilityBits(), one definition for every wire. */

    // host
    public static final int HOST_NODE_ID = 0;
    public static final int HOST_STATE = 8;
    public static final int HOST_NAME = 12;
    public static final int HOST_NAME_MAX = 62;

    // backend
    public static final int BACKEND_HOST_SLOT = 0;
    public static final int BACKEND_STATE = 4;
    public static final int BACKEND_SIZE = 8;
    public static final int BACKEND_LOGICAL_BLOCK = 16;
    public static final int BACKEND_MAX_IO = 20;
    public static final int BACKEND_CAPS = 24;
    public static final int BACKEND_CHANNELS = 28;
    public static final int BACKEND_SEGMENTS = 32;
    public static final int BACKEND_PATH = 160;
    public static final int BACKEND_PATH_MAX = 254;
    public static final int BACKEND_NODE_ID = 416;
    /** SHA-256 of the capability a blkdev must hold to open the backend; all zero = no grant (any blkdev). */
    public static final int BACKEND_GRANT_DIGEST = 424;
    public static final int GRANT_DIGEST_LENGTH = 32;

    // blkdev
    public static final int BLKDEV_BACKEND_SLOT = 0;
    public static final int BLKDEV_HOST_SLOT = 4;
    public static final int BLKDEV_QUEUES = 8;
    public static final int BLKDEV_STATE = 12;
    public static final int BLKDEV_NODE_ID = 16;

    // segment
    public static final int SEGMENT_TYPE = 0;
    public static final int SEGMENT_STATE = 4;
    public static final int SEGMENT_BACKEND_SLOT = 8;
    public static final int SEGMENT_CHANNEL_INDEX = 12;

    private Records() {
    }

    public static void putString(UnsafeBuffer body, int offset, int max, String value) {
        byte[] bytes = value.getBytes(StandardCharsets.UTF_8);
        int n = Math.min(bytes.length, max);
        body.putShort(offset, (short) n);
        body.putBytes(offset + 2, bytes, 0, n);
    }

    public static String getString(UnsafeBuffer body, int offset, int max) {
        int n = Math.max(0, Math.min(body.getShort(offset) & 0xFFFF, max));
        byte[] bytes = new byte[n];
        body.getBytes(offset + 2, bytes);
        return new String(bytes, StandardCharsets.UTF_8);
    }

    public static String stateName(int state) {
        switch (state) {
            case STATE_FREE: return "free";
            case STATE_RUNNING: return "running";
            case STATE_STOPPED: return "stopped";
            default: return "state-" + state;
        }
    }
}
