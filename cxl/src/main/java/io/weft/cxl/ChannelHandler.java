package io.weft.cxl;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoRequests;
import io.weft.core.io.IoStatus;
import io.weft.cxl.layout.ChannelLayout;
import io.weft.cxl.layout.Checksums;
import io.weft.cxl.layout.FenceCode;
import io.weft.cxl.layout.MetaEntry;
import io.weft.cxl.map.Futex;
import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicLongArray;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * Storage side of one channel: takes submissions in ring order, validates every field read from shared memory, hands
 * the request to a {@link BlockDevice} with a pre-built ByteBuffer view of its data slot (zero copy: the store reads
 * and writes the shared data area directly) and publishes completions in submission order.
 *
 * <p>Replay: before a completion is published the handler writes the request's DONE mark ({@code requestId} and
 * status) into the control area. A restarted handler resumes at the published completion tail; a request whose DONE
 * mark is already there gets its recorded status published without being applied again, and any other pending
 * request is applied (it was never completed, so applying it once now is what the client is waiting for).
 *
 * <p>Single-threaded: only the owning handler agent calls {@link #doWork}. The device may complete on another thread;
 * the status is handed over through a release store and picked up by the agent.
 *
 * <p>The claim: the segment's table entry holds the backend's token while the backend owns it. A backend process
 * paused past the dead timeout may have been cleared and its segment handed to another backend, so the claim is
 * re-checked (acquire) at the top of every duty cycle (before the heartbeat), before each request is handed to the
 * device (which may write the data slot directly) and before each group of completions is published; a lost claim
 * stops this handler for good without another write to the segment (docs/cxl.md, "Claims").
 */
final class ChannelHandler implements IoCompletion {
    private final ChannelSegment seg;
    /** The segment's table entry and the token its claim must hold for this handler to write anything. */
    private final MetaEntry claimEntry;
    private final long token;
    /** One-way: the claim was found revoked or taken; this handler never writes to the segment again. */
    private volatile boolean claimLost;
    private final BlockDevice device;
    private final UnsafeBuffer control;
    private final UnsafeBuffer submissions;
    private final UnsafeBuffer completions;
    private final UnsafeBuffer data;
    private final ByteBuffer[] slotViews;
    private final AtomicLongArray finished;
    private final int[] statuses;
    private final long[] requestIds;
    private final int[] ops;
    private final long[] dataOffsets;
    private final int[] lengths;
    private final int depth;
    private final int mask;
    private final int slotSize;
    private final long dataAreaSize;
    private final boolean entryCrc;
    private final boolean dataCrc;
    private final long beatIntervalNs;
    private final Checksums.Calculator submissionCrc;
    private final Checksums.Calculator completionCrc;
    private final Checksums.Calculator dataCrcCalc;
    /** The channel's client doorbell: a client thread waiting for a completion sleeps on it. */
    private final Futex clientFutex;

    private volatile boolean resetRequested;
    /** 1 + segment id of the doorbell the owning agent sleeps on; 0 = none. */
    private int doorbellSegment;
    /** Requests taken per completion-tail publication at most (a power of two). */
    private static final int PUBLISH_EVERY = 8;
    private long taken;
    /** Last completion head read from the client: it never moves backwards. */
    private long clientHead;
    private long published;
    private boolean fenced;
    private boolean stopped;
    private long lastBeatNs;
    private long served;

    ChannelHandler(ChannelSegment seg, MetaEntry claimEntry, long token, BlockDevice device, long beatIntervalNs) {
        this.seg = seg;
        this.claimEntry = claimEntry;
        this.token = token;
        this.device = device;
        this.control = seg.control;
        this.submissions = seg.submissions;
        this.completions = seg.completions;
        this.data = seg.data;
        this.depth = seg.depth;
        this.mask = seg.mask;
        this.slotSize = seg.slotSize;
        this.dataAreaSize = (long) depth * slotSize;
        this.slotViews = new ByteBuffer[depth];
        for (int i = 0; i < depth; i++) {
            slotViews[i] = seg.dataView.duplicate().position(i * slotSize).limit((i + 1) * slotSize).slice();
        }
        this.finished = new AtomicLongArray(depth);
        this.statuses = new int[depth];
        this.requestIds = new long[depth];
        this.ops = new int[depth];
        this.dataOffsets = new long[depth];
        this.lengths = new int[depth];
        int flags = seg.flags();
        this.entryCrc = (flags & ChannelLayout.FLAG_ENTRY_CRC) != 0;
        this.dataCrc = (flags & ChannelLayout.FLAG_DATA_CRC) != 0;
        this.beatIntervalNs = beatIntervalNs;
        this.submissionCrc = new Checksums.Calculator(submissions);
        this.completionCrc = new Checksums.Calculator(completions);
        this.dataCrcCalc = new Checksums.Calculator(data);
        this.clientFutex = new Futex(control.addressOffset() + ChannelLayout.CLIENT_DOORBELL);
    }

    /** Resumes from the region's published completion tail (fresh channel: 0). A fence survives restarts. */
    void attach() {
        String mismatch = seg.geometryMismatch();
        if (mismatch != null) {
            fence(FenceCode.GEOMETRY, mismatch);
            return;
        }
        if (seg.backendState() == ChannelLayout.SIDE_FENCED) {
            fenced = true;
            return;
        }
        published = seg.completionTail();
        taken = published;
        clientHead = Math.min(seg.completionHead(), published);
        long tail = seg.submissionTail();
        if (tail < published || tail - published > depth) {
            fence(FenceCode.WILD_INDEX, "at attach: submission tail " + tail + ", completion tail " + published);
            return;
        }
        control.putLongRelease(ChannelLayout.SUB_HEAD, taken);
        control.putIntRelease(ChannelLayout.DOORBELL_SEGMENT, doorbellSegment);
        control.putIntRelease(ChannelLayout.BACKEND_STATE, ChannelLayout.SIDE_ACTIVE);
    }

    /** True while the segment's claim holds this backend's token (acquire); false for good once it did not. */
    boolean holdsClaim() {
        if (claimLost) {
            return false;
        }
        if (claimEntry.claim() == token) {
            return true;
        }
        claimLost = true;
        return false;
    }

    boolean claimLost() {
        return claimLost;
    }

    /** Names the segment whose doorbell word the owning agent sleeps on (clients ring it after publishing). */
    void useDoorbell(int segmentId) {
        if (doorbellSegment == segmentId + 1 || !holdsClaim()) {
            return; // unchanged, or no longer ours to write
        }
        doorbellSegment = segmentId + 1;
        control.putIntRelease(ChannelLayout.DOORBELL_SEGMENT, doorbellSegment);
    }

    /** Announces (or withdraws) that the owning agent sleeps: a client that publishes then rings the doorbell. */
    void announceSleep(boolean asleep) {
        if (claimLost) {
            return; // the flag is read, not the claim: this runs twice per idle transition on every channel
        }
        control.putIntVolatile(ChannelLayout.HANDLER_DOORBELL,
                asleep ? ChannelLayout.DOORBELL_ASLEEP : ChannelLayout.DOORBELL_AWAKE);
    }

    /** Whether a duty cycle would find something to do (called by the idle strategy before sleeping). */
    boolean hasWork() {
        if (resetRequested) {
            return true;
        }
        if (fenced || stopped || claimLost) {
            return false;
        }
        return control.getLongVolatile(ChannelLayout.SUB_TAIL) != taken || published != taken;
    }

    /** Marks the channel stopped (clean shutdown); in-flight requests stay replayable by a later attach. */
    void stop() {
        stopped = true;
        if (!fenced && holdsClaim()) {
            control.putIntRelease(ChannelLayout.BACKEND_STATE, ChannelLayout.SIDE_STOPPED);
        }
    }

    /**
     * Asks the agent to reset this channel: rings emptied, indexes and DONE marks zeroed, fence cleared. Only for a
     * channel no client holds (its requests were already failed by the client when it saw the fence).
     */
    void requestReset() {
        resetRequested = true;
    }

    boolean resetPending() {
        return resetRequested;
    }

    private void reset() {
        if (!holdsClaim()) {
            resetRequested = false;
            return;
        }
        int flags = seg.flags();
        int channelIndex = seg.channelIndex();
        int backendSlot = seg.backendSlot();
        seg.initialise(channelIndex, backendSlot, flags);
        for (int i = 0; i < depth; i++) {
            finished.set(i, 0);
        }
        fenced = false;
        attach();
        resetRequested = false;
    }

    boolean fenced() {
        return fenced;
    }

    long served() {
        return served;
    }

    ChannelSegment segment() {
        return seg;
    }

    int doWork(long nowNs) {
        if (!holdsClaim()) {
            resetRequested = false;
            return 0;
        }
        if (nowNs - lastBeatNs >= beatIntervalNs) {
            lastBeatNs = nowNs;
            control.putLongRelease(ChannelLayout.BACKEND_BEAT, control.getLong(ChannelLayout.BACKEND_BEAT) + 1);
        }
        if (resetRequested) {
            reset();
            return 1;
        }
        if (fenced || stopped) {
            return 0;
        }
        int work = 0;
        long tail = control.getLongVolatile(ChannelLayout.SUB_TAIL);
        if (tail < taken || tail - published > depth) {
            fence(FenceCode.WILD_INDEX, "submission tail " + tail + " vs taken " + taken + ", completed " + published);
            return 1;
        }
        while (taken < tail) {
            if (!take(taken)) {
                return work + 1;
            }
            taken++;
            work++;
            // Publish every few requests (not only after the whole batch): the client consumes and refills while
            // this thread serves the rest, yet pays one tail store and cache-line transfer per group, not per request.
            if ((work & (PUBLISH_EVERY - 1)) == 0) {
                work += publishFinished();
                if (fenced) {
                    return work;
                }
            }
        }
        if (work > 0 && holdsClaim()) {
            control.putLongRelease(ChannelLayout.SUB_HEAD, taken);
        }
        return work + publishFinished();
    }

    /**
     * Publishes, in order, every taken request whose device completion has arrived, then the completion tail once:
     * one read of the client's completion head and one tail store per group, not per request.
     */
    private int publishFinished() {
        if (published == taken || finished.get((int) published & mask) != published + 1 || !holdsClaim()) {
            return 0;
        }
        long head = control.getLongVolatile(ChannelLayout.COMP_HEAD);
        if (head > published || head < clientHead) {
            fence(FenceCode.WILD_INDEX, "completion head " + head + " outside [" + clientHead + ", " + published + "]");
            return 1;
        }
        clientHead = head;
        long limit = Math.min(taken, head + depth); // a ring slot is reused only after the client consumed it
        int work = 0;
        while (published < limit && finished.get((int) published & mask) == published + 1) {
            publish((int) published & mask);
            published++;
            work++;
        }
        if (work > 0) {
            // Volatile, not just release: the doorbell read below must not move before it (Dekker pairing with
            // ClientChannel.assist, which announces its sleep and then re-reads this tail).
            control.putLongVolatile(ChannelLayout.COMP_TAIL, published);
            if (control.getIntVolatile(ChannelLayout.CLIENT_DOORBELL) == ChannelLayout.DOORBELL_ASLEEP
                    && control.compareAndSetInt(ChannelLayout.CLIENT_DOORBELL, ChannelLayout.DOORBELL_ASLEEP,
                    ChannelLayout.DOORBELL_AWAKE)) {
                clientFutex.wakeAll();
            }
        }
        return work;
    }

    private boolean take(long index) {
        int slot = (int) index & mask;
        int e = slot * ChannelLayout.SUB_ENTRY_SIZE;
        long requestId = submissions.getLong(e + ChannelLayout.SUB_REQUEST_ID);
        if (entryCrc) {
            int crc = submissionCrc.compute(e, ChannelLayout.SUB_CRC);
            if (crc != submissions.getInt(e + ChannelLayout.SUB_CRC)) {
                fence(FenceCode.ENTRY_CHECKSUM, "submission " + index + " checksum mismatch");
                return false;
            }
        }
        if (requestId != index + 1) {
            fence(FenceCode.REQUEST_SEQUENCE, "submission " + index + " has request id " + requestId
                    + ", expected " + (index + 1));
            return false;
        }
        int opCode = submissions.getInt(e + ChannelLayout.SUB_OP);
        IoOp op = IoOp.fromCode(opCode);
        long offset = submissions.getLong(e + ChannelLayout.SUB_DEVICE_OFFSET);
        int length = submissions.getInt(e + ChannelLayout.SUB_LENGTH);
        int flags = submissions.getInt(e + ChannelLayout.SUB_FLAGS);
        long dataOffset = submissions.getLong(e + ChannelLayout.SUB_DATA_OFFSET);
        int check = IoRequests.check(device.info(), op, offset, length, flags);
        if (check != IoStatus.OK) {
            fence(FenceCode.BAD_REQUEST, "request " + requestId + " op " + opCode + " [" + offset + ",+" + length
                    + ") flags " + flags + ": " + IoStatus.name(check));
            return false;
        }
        boolean payload = op == IoOp.READ || op == IoOp.WRITE;
        if (payload && (dataOffset < 0 || dataOffset >= dataAreaSize || dataOffset % slotSize != 0
                || length > slotSize)) {
            fence(FenceCode.DATA_OUT_OF_BOUNDS, "request " + requestId + " data [" + dataOffset + ",+" + length
                    + ") outside " + depth + " slots of " + slotSize);
            return false;
        }
        if (op == IoOp.WRITE && dataCrc) {
            int crc = dataCrcCalc.compute((int) dataOffset, length);
            if (crc != submissions.getInt(e + ChannelLayout.SUB_DATA_CRC)) {
                fence(FenceCode.DATA_CHECKSUM, "request " + requestId + " payload checksum mismatch");
                return false;
            }
        }
        requestIds[slot] = requestId;
        ops[slot] = opCode;
        dataOffsets[slot] = dataOffset;
        lengths[slot] = length;
        long mark = seg.doneMark(slot);
        if ((mark >>> 8) == requestId) {
            // Applied before a restart but its completion was never published: publish, do not apply twice.
            statuses[slot] = (int) (mark & 0xFF);
            finished.lazySet(slot, index + 1);
            return true;
        }
        if (!holdsClaim()) {
            return false; // not handed to the device: the zero-copy store would write the slot directly
        }
        ByteBuffer view = null;
        if (payload) {
            view = slotViews[(int) (dataOffset / slotSize)];
            view.clear().limit(length);
        }
        try {
            device.submit(op, offset, length, flags, view, index, this);
        } catch (RuntimeException faulty) {
            // BlockDevice.submit must not throw; if a faulty one does, the request still completes (with EIO).
            onComplete(index, IoStatus.EIO);
        }
        return true;
    }

    /** Device completion, on any thread. */
    @Override
    public void onComplete(long index, int status) {
        int slot = (int) index & mask;
        statuses[slot] = status >= 0 && status < 256 ? status : IoStatus.EIO;
        finished.lazySet(slot, index + 1);
    }

    private void publish(int slot) {
        long requestId = requestIds[slot];
        int status = statuses[slot];
        control.putLongRelease(ChannelLayout.DONE_MARKS + 8 * slot, ChannelLayout.doneMark(requestId, status));
        int e = slot * ChannelLayout.COMP_ENTRY_SIZE;
        int length = lengths[slot];
        int crc = 0;
        if (dataCrc && ops[slot] == IoOp.READ.ordinal() && status == IoStatus.OK) {
            crc = dataCrcCalc.compute((int) dataOffsets[slot], length);
        }
        completions.putLong(e + ChannelLayout.COMP_REQUEST_ID, requestId);
        completions.putInt(e + ChannelLayout.COMP_STATUS, status);
        completions.putInt(e + ChannelLayout.COMP_DATA_CRC, crc);
        completions.putInt(e + ChannelLayout.COMP_LENGTH, length);
        completions.putLong(e + 20, 0);
        completions.putInt(e + ChannelLayout.COMP_CRC,
                entryCrc ? completionCrc.compute(e, ChannelLayout.COMP_CRC) : 0);
        served++;
    }

    private void fence(FenceCode code, String reason) {
        fenced = true;
        if (holdsClaim()) {
            seg.writeFence(true, code, reason);
        }
    }
}
