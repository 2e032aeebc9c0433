package io.weft.rdma.client;

import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoOp;
import java.nio.ByteBuffer;

/**
 * The request slots of a session, one per permit (= the local and the storage chunk of the same index): what was
 * asked, by whom, until when. Parallel arrays, so a request costs no allocation.
 *
 * <p>Ownership of slot {@code p}: the submitter that acquired permit {@code p} writes it with {@link #fill} and
 * publishes it through the queue agent's ring buffer (the ring's release/acquire orders the plain writes); from then
 * on only the agent of queue {@code p % queueCount} reads it and ends it ({@link #takeCompletion}), until the permit
 * is released again. Threads outside the agent only scan it to find a request to cancel (the {@code isLiveFor}
 * methods); what they find is re-checked on the agent against {@link #use}, so a stale read never cancels
 * a later use of the slot.
 */
final class RequestTable {
    private final IoOp[] ops;
    private final long[] offsets;
    private final int[] lengths;
    private final int[] flags;
    private final ByteBuffer[] buffers;
    private final long[] tags;
    private final IoCompletion[] completions;
    private final long[] deadlines;
    /** Bumped for each use of a slot: a cancel names the use, so it never hits a later one. */
    private final long[] uses;
    private final RdmaBlockDevice[] devices;

    RequestTable(int slots) {
        this.ops = new IoOp[slots];
        this.offsets = new long[slots];
        this.lengths = new int[slots];
        this.flags = new int[slots];
        this.buffers = new ByteBuffer[slots];
        this.tags = new long[slots];
        this.completions = new IoCompletion[slots];
        this.deadlines = new long[slots];
        this.uses = new long[slots];
        this.devices = new RdmaBlockDevice[slots];
    }

    int size() {
        return ops.length;
    }

    /** Submitter holding the permit: records a new use of {@code slot}. */
    void fill(int slot, RdmaBlockDevice device, IoOp op, long offset, int length, int ioFlags, ByteBuffer buffer,
              long tag, IoCompletion completion, long deadlineNanos) {
        ops[slot] = op;
        offsets[slot] = offset;
        lengths[slot] = length;
        flags[slot] = ioFlags;
        buffers[slot] = buffer;
        tags[slot] = tag;
        completions[slot] = completion;
        deadlines[slot] = deadlineNanos;
        devices[slot] = device;
        uses[slot]++;
    }

    IoOp op(int slot) {
        return ops[slot];
    }

    long offset(int slot) {
        return offsets[slot];
    }

    int length(int slot) {
        return lengths[slot];
    }

    int flags(int slot) {
        return flags[slot];
    }

    long tag(int slot) {
        return tags[slot];
    }

    long deadline(int slot) {
        return deadlines[slot];
    }

    long use(int slot) {
        return uses[slot];
    }

    RdmaBlockDevice device(int slot) {
        return devices[slot];
    }

    /** True while the caller of {@code slot}'s current use has not been completed. */
    boolean holdsCaller(int slot) {
        return completions[slot] != null;
    }

    /** Agent: copies a READ's answer from {@code source} (the local chunk) into the caller's buffer. */
    void deliverRead(int slot, ByteBuffer source, int sourceOffset) {
        ByteBuffer dst = buffers[slot];
        dst.put(dst.position(), source, sourceOffset, lengths[slot]);
    }

    /**
     * Agent: ends the caller's use of the slot and returns its completion to run (null if it already ran): the buffer
     * is forgotten first, so nothing touches it once the completion runs. Read {@link #tag} before this.
     */
    IoCompletion takeCompletion(int slot) {
        IoCompletion c = completions[slot];
        buffers[slot] = null;
        completions[slot] = null;
        return c;
    }

    /** Any thread (a scan, cancel is rare): the slot whose live request was submitted with this tag and completion. */
    boolean isLiveFor(int slot, long tag, IoCompletion completion) {
        return completions[slot] == completion && tags[slot] == tag;
    }

    /** Any thread: is {@code slot}'s live request one of {@code device}'s? */
    boolean isLiveFor(int slot, RdmaBlockDevice device) {
        return devices[slot] == device && completions[slot] != null;
    }
}
