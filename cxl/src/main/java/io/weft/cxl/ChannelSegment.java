package io.weft.cxl;

import io.weft.cxl.layout.ChannelLayout;
import io.weft.cxl.layout.FenceCode;
import io.weft.cxl.layout.Records;
import io.weft.cxl.map.SharedMapping;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import org.agrona.concurrent.UnsafeBuffer;

/**
 * Buffers over one channel segment (see {@link ChannelLayout} for the byte diagram): the control area, both rings and
 * the data area. Both sides build one of these per channel at attach time; nothing here allocates afterwards.
 * Index reads use acquire ({@code getLongVolatile}) and index writes use release ({@code putLongRelease}).
 */
public final class ChannelSegment {
    final int segmentId;
    final ChannelLayout layout;
    final UnsafeBuffer control;
    final UnsafeBuffer submissions;
    final UnsafeBuffer completions;
    final UnsafeBuffer data;
    final ByteBuffer dataView;
    final int depth;
    final int mask;
    final int slotSize;

    ChannelSegment(SharedMapping mapping, long segmentOffset, int segmentId, ChannelLayout layout) {
        this.segmentId = segmentId;
        this.layout = layout;
        long base = mapping.address() + segmentOffset;
        this.control = new UnsafeBuffer(base, layout.controlSize());
        this.submissions = new UnsafeBuffer(base + layout.submissionRingOffset(),
                ChannelLayout.SUB_ENTRY_SIZE * layout.depth());
        this.completions = new UnsafeBuffer(base + layout.completionRingOffset(),
                ChannelLayout.COMP_ENTRY_SIZE * layout.depth());
        this.dataView = mapping.byteBuffer(segmentOffset + layout.dataAreaOffset(), (int) layout.dataAreaSize());
        this.data = new UnsafeBuffer(dataView);
        this.depth = layout.depth();
        this.mask = layout.mask();
        this.slotSize = layout.slotSize();
    }

    public int segmentId() {
        return segmentId;
    }

    /** Backend, at channel creation: resets indexes and records the geometry the client will check. */
    void initialise(int channelIndex, int backendSlot, int flags) {
        control.setMemory(0, control.capacity(), (byte) 0);
        control.putInt(ChannelLayout.CHANNEL_FLAGS, flags);
        control.putInt(ChannelLayout.CHANNEL_DEPTH, depth);
        control.putInt(ChannelLayout.CHANNEL_SLOT_SIZE, slotSize);
        control.putInt(ChannelLayout.CHANNEL_INDEX, channelIndex);
        control.putIntVolatile(ChannelLayout.CHANNEL_BACKEND_SLOT, backendSlot);
    }

    /** @return null when the control area matches the region geometry, else what disagrees */
    String geometryMismatch() {
        int d = control.getIntVolatile(ChannelLayout.CHANNEL_DEPTH);
        int s = control.getIntVolatile(ChannelLayout.CHANNEL_SLOT_SIZE);
        if (d != depth || s != slotSize) {
            return "control area says depth " + d + " slot " + s + ", region says depth " + depth + " slot " + slotSize;
        }
        return null;
    }

    public int flags() {
        return control.getIntVolatile(ChannelLayout.CHANNEL_FLAGS);
    }

    public int channelIndex() {
        return control.getIntVolatile(ChannelLayout.CHANNEL_INDEX);
    }

    public int backendSlot() {
        return control.getIntVolatile(ChannelLayout.CHANNEL_BACKEND_SLOT);
    }

    public long submissionTail() {
        return control.getLongVolatile(ChannelLayout.SUB_TAIL);
    }

    public long submissionHead() {
        return control.getLongVolatile(ChannelLayout.SUB_HEAD);
    }

    public long completionTail() {
        return control.getLongVolatile(ChannelLayout.COMP_TAIL);
    }

    public long completionHead() {
        return control.getLongVolatile(ChannelLayout.COMP_HEAD);
    }

    public long backendHeartbeat() {
        return control.getLongVolatile(ChannelLayout.BACKEND_BEAT);
    }

    public long clientHeartbeat() {
        return control.getLongVolatile(ChannelLayout.CLIENT_BEAT);
    }

    public int backendState() {
        return control.getIntVolatile(ChannelLayout.BACKEND_STATE);
    }

    public int clientState() {
        return control.getIntVolatile(ChannelLayout.CLIENT_STATE);
    }

    public FenceCode backendFence() {
        return FenceCode.of(control.getIntVolatile(ChannelLayout.BACKEND_FENCE));
    }

    public FenceCode clientFence() {
        return FenceCode.of(control.getIntVolatile(ChannelLayout.CLIENT_FENCE));
    }

    public String backendFenceReason() {
        return readReason(ChannelLayout.BACKEND_REASON);
    }

    public String clientFenceReason() {
        return readReason(ChannelLayout.CLIENT_REASON);
    }

    public long clientClaim() {
        return control.getLongVolatile(ChannelLayout.CLIENT_CLAIM);
    }

    boolean casClientClaim(long expected, long update) {
        return control.compareAndSetLong(ChannelLayout.CLIENT_CLAIM, expected, update);
    }

    long doneMark(int slot) {
        return control.getLongVolatile(ChannelLayout.DONE_MARKS + 8 * slot);
    }

    private String readReason(int offset) {
        int n = Math.max(0, Math.min(control.getShortVolatile(offset) & 0xFFFF, ChannelLayout.REASON_MAX));
        byte[] bytes = new byte[n];
        control.getBytes(offset + 2, bytes);
        return new String(bytes, StandardCharsets.UTF_8);
    }

    /** Writes a fence on one side: reason first, then code, then state (the state is what peers poll). */
    void writeFence(boolean backendSide, FenceCode code, String reason) {
        int reasonOffset = backendSide ? ChannelLayout.BACKEND_REASON : ChannelLayout.CLIENT_REASON;
        byte[] bytes = reason.getBytes(StandardCharsets.UTF_8);
        int n = Math.min(bytes.length, ChannelLayout.REASON_MAX);
        control.putBytes(reasonOffset + 2, bytes, 0, n);
        control.putShort(reasonOffset, (short) n);
        control.putIntRelease(backendSide ? ChannelLayout.BACKEND_FENCE : ChannelLayout.CLIENT_FENCE, code.ordinal());
        control.putIntRelease(backendSide ? ChannelLayout.BACKEND_STATE : ChannelLayout.CLIENT_STATE,
                ChannelLayout.SIDE_FENCED);
    }

    /** Status text for operators. */
    public String describe() {
        return "segment " + segmentId + " channel " + channelIndex() + " backend " + backendSlot()
                + " sub " + submissionHead() + "/" + submissionTail()
                + " comp " + completionHead() + "/" + completionTail()
                + " backend " + sideName(backendState()) + (backendFence() != FenceCode.NONE
                ? " (" + backendFence() + ": " + backendFenceReason() + ")" : "")
                + " client " + sideName(clientState()) + (clientFence() != FenceCode.NONE
                ? " (" + clientFence() + ": " + clientFenceReason() + ")" : "");
    }

    static String sideName(int state) {
        switch (state) {
            case ChannelLayout.SIDE_IDLE: return "idle";
            case ChannelLayout.SIDE_ACTIVE: return "active";
            case ChannelLayout.SIDE_STOPPED: return "stopped";
            case ChannelLayout.SIDE_FENCED: return "fenced";
            default: return Records.stateName(state);
        }
    }
}
