package io.weft.cxl.layout;

/**
 * Byte layout of one channel segment. All ring indexes are 64-bit counters that only grow; the slot of index
 * {@code i} is {@code i & (depth - 1)}. Completion {@code i} answers submission {@code i} (the handler completes in
 * submission order) and data slot {@code i & (depth - 1)} belongs to request {@code i} until its completion is
 * consumed. Each index has exactly one writer and sits on its own 64-byte cache line.
 *
 * <pre>
 * control area (CONTROL_SIZE = 4 KiB + DONE marks, page aligned)
 *   0    subTail        (8)  client:  next submission index to be published
 *   64   compHead       (8)  client:  next completion index the client will consume
 *   128  clientBeat     (8)  client:  heartbeat counter
 *   136  clientState    (4)  client:  0 detached, 1 attached, 3 fenced
 *   140  clientFence    (4)  client:  fence code (FenceCode), 0 = none
 *   144  clientReason   (2 + 62) client: fence reason text
 *   256  subHead        (8)  backend: next submission index the handler will take
 *   320  compTail       (8)  backend: next completion index to be published
 *   384  backendBeat    (8)  backend: heartbeat counter
 *   392  backendState   (4)  backend: 0 idle, 1 serving, 2 stopped, 3 fenced
 *   396  backendFence   (4)  backend: fence code, 0 = none
 *   400  backendReason  (2 + 62) backend: fence reason text
 *   512  channelFlags   (4)  backend at creation: ENTRY_CRC | DATA_CRC
 *   516  depth (4) | 520 slotSize (4) | 524 channelIndex (4) | 528 backendSlot (4)   backend at creation
 *   532  doorbellSegment (4) backend at attach: 1 + segment id whose HANDLER_DOORBELL this channel's handler
 *                            agent sleeps on (the agent's first channel), 0 = none (peer predates the doorbell)
 *   576  clientClaim    (8)  CAS: token of the blkdev attached to this channel, 0 = none
 *   640  handlerDoorbell (4) handler agent sets 1 (futex word) when it goes to sleep; a client that publishes a
 *                            submission and finds 1 sets it back to 0 and wakes the sleeper (its own cache line)
 *   704  clientDoorbell (4)  a client thread waiting for a completion sets 1 (futex word) before it sleeps; the
 *                            handler, after publishing a completion tail, finds 1, sets it back to 0 and wakes it
 *                            (its own cache line; a handler that predates it never wakes: the client's wait is
 *                            bounded)
 *   1024 DONE marks     (8 × depth) backend: (requestId << 8) | status of the last request applied in each slot
 * submission ring  (64 × depth)
 *   0 requestId (8) | 8 device offset (8) | 16 length (4) | 20 op (4) | 24 flags (4) | 28 data CRC32C (4)
 *   32 data offset in data area (8) | 40..56 zero | 56 entry CRC32C over [0,56) (4) | 60 zero
 * completion ring  (32 × depth)
 *   0 requestId (8) | 8 status (4) | 12 data CRC32C (4) | 16 length (4) | 20 zero | 28 entry CRC32C over [0,28) (4)
 * data area        (slotSize × depth, page aligned)
 * </pre>
 */
public record ChannelLayout(int depth, int slotSize) {
    public static final int SUB_TAIL = 0;
    public static final int COMP_HEAD = 64;
    public static final int CLIENT_BEAT = 128;
    public static final int CLIENT_STATE = 136;
    public static final int CLIENT_FENCE = 140;
    public static final int CLIENT_REASON = 144;
    public static final int SUB_HEAD = 256;
    public static final int COMP_TAIL = 320;
    public static final int BACKEND_BEAT = 384;
    public static final int BACKEND_STATE = 392;
    public static final int BACKEND_FENCE = 396;
    public static final int BACKEND_REASON = 400;
    public static final int REASON_MAX = 62;
    public static final int CHANNEL_FLAGS = 512;
    public static final int CHANNEL_DEPTH = 516;
    public static final int CHANNEL_SLOT_SIZE = 520;
    public static final int CHANNEL_INDEX = 524;
    public static final int CHANNEL_BACKEND_SLOT = 528;
    public static final int DOORBELL_SEGMENT = 532;
    public static final int CLIENT_CLAIM = 576;
    public static final int HANDLER_DOORBELL = 640;
    public static final int CLIENT_DOORBELL = 704;
    public static final int DOORBELL_AWAKE = 0;
    public static final int DOORBELL_ASLEEP = 1;
    public static final int DONE_MARKS = 1024;

    public static final int FLAG_ENTRY_CRC = 1;
    public static final int FLAG_DATA_CRC = 1 << 1;

    public static final int SIDE_IDLE = 0;
    public static final int SIDE_ACTIVE = 1;
    public static final int SIDE_STOPPED = 2;
    public static final int SIDE_FENCED = 3;

    public static final int SUB_ENTRY_SIZE = 64;
    public static final int SUB_REQUEST_ID = 0;
    public static final int SUB_DEVICE_OFFSET = 8;
    public static final int SUB_LENGTH = 16;
    public static final int SUB_OP = 20;
    public static final int SUB_FLAGS = 24;
    public static final int SUB_DATA_CRC = 28;
    public static final int SUB_DATA_OFFSET = 32;
    public static final int SUB_CRC = 56;

    public static final int COMP_ENTRY_SIZE = 32;
    public static final int COMP_REQUEST_ID = 0;
    public static final int COMP_STATUS = 8;
    public static final int COMP_DATA_CRC = 12;
    public static final int COMP_LENGTH = 16;
    public static final int COMP_CRC = 28;

    public ChannelLayout {
        if (depth < 2 || Integer.bitCount(depth) != 1) {
            throw new IllegalArgumentException("depth must be a power of two >= 2: " + depth);
        }
    }

    public int controlSize() {
        return (int) RegionGeometry.alignUp(DONE_MARKS + 8L * depth, RegionGeometry.PAGE);
    }

    public int submissionRingOffset() {
        return controlSize();
    }

    public int completionRingOffset() {
        return submissionRingOffset() + SUB_ENTRY_SIZE * depth;
    }

    public int dataAreaOffset() {
        return (int) RegionGeometry.alignUp(completionRingOffset() + (long) COMP_ENTRY_SIZE * depth,
                RegionGeometry.PAGE);
    }

    public long dataAreaSize() {
        return (long) depth * slotSize;
    }

    public long segmentSize() {
        return dataAreaOffset() + dataAreaSize();
    }

    public int mask() {
        return depth - 1;
    }

    /** Packs a DONE mark. Statuses are errno values below 256. */
    public static long doneMark(long requestId, int status) {
        return (requestId << 8) | (status & 0xFF);
    }
}
