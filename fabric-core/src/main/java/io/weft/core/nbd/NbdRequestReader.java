package io.weft.core.nbd;

import io.weft.core.io.BlockDevice;
import io.weft.core.io.DeviceInfo;
import io.weft.core.io.IoFlags;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoRequests;
import io.weft.core.io.IoStatus;
import io.weft.core.io.ReadLending;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The transmission phase's read loop of one {@link NbdConnection}, on its reader thread: reads as much as the socket
 * has into the receive buffer, decodes every complete request in it (flyweight {@link NbdRequestHeader}), validates
 * it with the error values the NBD document asks for, and submits it to the device from this thread (as one request
 * or as parts, or as a lending READ), or answers it itself (validation errors, CACHE, BLOCK_STATUS, unaligned writes
 * through {@link NbdUnalignedWrites}). Replies of requests that completed meanwhile on this thread go out before any
 * blocking read, when the receive buffer holds no further complete request, or when much is pending
 * ({@link NbdReplyWriter#flushInline}): a burst of N requests costs one read and one write system call.
 */
final class NbdRequestReader {
    private static final Logger LOG = LoggerFactory.getLogger(NbdRequestReader.class);
    /** Pending reply bytes that trigger a write even though more requests are still buffered. */
    private static final int FLUSH_THRESHOLD = 256 << 10;
    /** Descriptors per BLOCK_STATUS reply at most (the protocol allows returning fewer than asked). */
    private static final int MAX_EXTENTS = 1024;
    /** Part size of TRIM and WRITE_ZEROES: 1 GiB, a multiple of every block size, so a 32-bit length is 4 parts. */
    static final int ZEROING_PART = 1 << 30;
    private static final long AWAIT_COMPLETIONS_NANOS = NbdConnection.AWAIT_COMPLETIONS_NANOS;
    private static final int PHASE_BUSY = NbdConnection.PHASE_BUSY;
    private static final int PHASE_AWAITING_REQUEST = NbdConnection.PHASE_AWAITING_REQUEST;
    private static final int PHASE_IN_REQUEST = NbdConnection.PHASE_IN_REQUEST;

    private final NbdConnection c;
    private final ReadableByteChannel in;
    private final BlockDevice device;
    /** The device's lending side when it lends READs and the connection is plaintext; else null. */
    private final ReadLending lender;
    private final boolean structured;
    private final boolean baseAllocation;
    private final int transmissionFlags;
    private final int maxPayload;
    /**
     * The client did not agree to the advertised block sizes (EXPORT_NAME, or GO without NBD_INFO_BLOCK_SIZE), so
     * the protocol's defaults apply: minimum block size 1. Unaligned requests are then made aligned here.
     */
    private final boolean defaultBlockSizes;
    private final ByteBuffer receive;
    private final NbdRequestHeader request = new NbdRequestHeader();
    private final NbdExtentWriter extents = new NbdExtentWriter();

    NbdRequestReader(NbdConnection c, ReadableByteChannel in, NbdHandshake.Result negotiated, ReadLending lender,
                     int receiveBufferSize) {
        this.c = c;
        this.in = in;
        this.device = negotiated.export().device();
        this.lender = lender;
        this.structured = negotiated.structuredReplies();
        this.baseAllocation = negotiated.baseAllocation();
        this.transmissionFlags = negotiated.transmissionFlags();
        this.maxPayload = negotiated.maxPayload();
        this.defaultBlockSizes = !negotiated.blockSizeAgreed();
        this.receive = ByteBuffer.allocateDirect(receiveBufferSize);
        receive.flip(); // read mode, empty
    }

    void transmission() throws IOException {
        while (!c.draining) {
            if (receive.remaining() < NbdRequestHeader.LENGTH) {
                c.replies.flushInline();
                c.slots.reclaimReturned();
                if (c.slots.inFlight() > 0) {
                    // Nothing more to submit: let a device whose completions can run here deliver them on this
                    // thread (replies written inline) before the read blocks, instead of a completion thread.
                    device.awaitCompletions(AWAIT_COMPLETIONS_NANOS);
                    c.replies.flushInline();
                    c.slots.reclaimReturned();
                }
                if (!receive.hasRemaining() && !c.server.mayKeepIdleBuffers()) {
                    c.slots.dropIdleBuffers(); // about to wait for the client: leave the budget to busy connections
                }
                if (!fill()) {
                    break;
                }
                continue;
            }
            processRequest();
            if (c.replies.inlineReadyBytes >= FLUSH_THRESHOLD) {
                c.replies.flushInline();
            }
        }
        c.replies.flushInline();
    }

    /** Reads whatever the socket has (blocking for at least one byte). @return false at end of stream */
    private boolean fill() throws IOException {
        receive.compact();
        c.readProgress(receive.position() == 0 ? PHASE_AWAITING_REQUEST : PHASE_IN_REQUEST);
        int n = in.read(receive);
        c.readProgress(PHASE_BUSY);
        receive.flip();
        return n >= 0;
    }

    private void processRequest() throws IOException {
        int at = receive.position();
        NbdRequestHeader h = request.wrap(receive, at);
        if (h.magic() != NbdProtocol.REQUEST_MAGIC) {
            throw new NbdHandshake.ProtocolViolation("bad request magic 0x" + Integer.toHexString(h.magic()));
        }
        int type = h.type();
        int flags = h.flags();
        long handle = h.handle();
        long offset = h.offset();
        long length = h.length();
        receive.position(at + NbdRequestHeader.LENGTH);

        if (type == NbdProtocol.CMD_DISC) {
            c.draining = true; // answer everything in flight, then close
            return;
        }
        c.requestReceived();
        NbdRequestSlot s = c.slots.acquire();
        s.handle = handle;
        s.command = type;
        s.offset = offset;
        s.length = (int) length; // meaningful for READ only (at most maxPayload); the others keep the long
        s.dataStart = 0;
        s.fastZero = false;
        s.lending = false;
        DeviceInfo info = device.info();
        int lbs = info.logicalBlockSize();
        // Unaligned requests are ours to make aligned only for a client that did not agree to the constraints.
        boolean unaligned = defaultBlockSizes && ((offset | length) & (lbs - 1)) != 0;
        switch (type) {
            case NbdProtocol.CMD_READ: {
                int status = validate(info, IoOp.READ, flags,
                        NbdProtocol.CMD_FLAG_FUA | (structured ? NbdProtocol.CMD_FLAG_DF : 0), offset, length);
                if (status != IoStatus.OK) {
                    completeLocally(s, status);
                    return;
                }
                if (unaligned) {
                    // Read the covering blocks into the slot's buffer; the reply is sent from the client's offset.
                    long start = offset & -lbs;
                    long cover = alignUp(offset + length, lbs) - start;
                    if (!c.slots.ensureCapacity(s, (int) cover)) {
                        completeLocally(s, IoStatus.ENOMEM);
                        return;
                    }
                    s.dataStart = (int) (offset - start);
                    submitParts(s, IoOp.READ, start, cover, maxIoParts(info), 0, s.data);
                    return;
                }
                if (lender != null && submitLending(s, offset, (int) length)) {
                    return; // answered from the device's own bytes: no request buffer
                }
                if (!c.slots.ensureCapacity(s, (int) length)) {
                    completeLocally(s, IoStatus.ENOMEM);
                    return;
                }
                ByteBuffer data = s.data;
                data.clear().limit((int) length);
                submit(s, IoOp.READ, offset, (int) length, 0, data);
                return;
            }
            case NbdProtocol.CMD_WRITE: {
                int status = validate(info, IoOp.WRITE, flags, NbdProtocol.CMD_FLAG_FUA, offset, length);
                if (status != IoStatus.OK) {
                    // The payload still follows the header: consume it without keeping it.
                    if (!skipPayload(length)) {
                        c.slots.release(s);
                        c.draining = true;
                        return;
                    }
                    completeLocally(s, status);
                    return;
                }
                int at0 = unaligned ? (int) (offset & (lbs - 1)) : 0;
                if (!c.slots.ensureCapacity(s, unaligned ? (int) (alignUp(offset + length, lbs) - (offset - at0))
                        : (int) length)) {
                    if (!skipPayload(length)) {
                        c.slots.release(s);
                        c.draining = true;
                        return;
                    }
                    completeLocally(s, IoStatus.ENOMEM);
                    return;
                }
                if (!readPayload(s, at0, (int) length)) {
                    c.slots.release(s); // the client vanished mid-payload: nothing reaches the device
                    c.draining = true;
                    return;
                }
                if (unaligned) {
                    completeLocally(s, c.unaligned.unalignedWrite(s, info, offset, (int) length, ioFlags(flags)));
                    return;
                }
                submit(s, IoOp.WRITE, offset, (int) length, ioFlags(flags), s.data);
                return;
            }
            case NbdProtocol.CMD_FLUSH: {
                int status = (flags & ~NbdProtocol.CMD_FLAG_FUA) != 0 || offset != 0 || length != 0
                        ? IoStatus.EINVAL : IoRequests.check(info, IoOp.FLUSH, 0, 0, 0);
                if (status != IoStatus.OK) {
                    completeLocally(s, status);
                    return;
                }
                submit(s, IoOp.FLUSH, 0, 0, 0, null);
                return;
            }
            case NbdProtocol.CMD_TRIM: {
                int status = (transmissionFlags & NbdProtocol.TFLAG_SEND_TRIM) == 0 && !info.readOnly()
                        ? IoStatus.EINVAL
                        : validate(info, IoOp.DISCARD, flags, NbdProtocol.CMD_FLAG_FUA, offset, length);
                if (status != IoStatus.OK) {
                    completeLocally(s, status);
                    return;
                }
                // A TRIM may leave data as it was, so an unaligned one trims the whole blocks inside it only.
                long start = unaligned ? alignUp(offset, lbs) : offset;
                long end = unaligned ? (offset + length) & -lbs : offset + length;
                if (end <= start) {
                    completeLocally(s, IoStatus.OK);
                    return;
                }
                submitParts(s, IoOp.DISCARD, start, end - start, ZEROING_PART, ioFlags(flags), null);
                return;
            }
            case NbdProtocol.CMD_WRITE_ZEROES: {
                int allowed = NbdProtocol.CMD_FLAG_FUA | NbdProtocol.CMD_FLAG_NO_HOLE
                        | ((transmissionFlags & NbdProtocol.TFLAG_SEND_FAST_ZERO) != 0
                        ? NbdProtocol.CMD_FLAG_FAST_ZERO : 0);
                int status = (transmissionFlags & NbdProtocol.TFLAG_SEND_WRITE_ZEROES) == 0 && !info.readOnly()
                        ? IoStatus.EINVAL
                        : validate(info, IoOp.WRITE_ZEROES, flags, allowed, offset, length);
                s.fastZero = (flags & NbdProtocol.CMD_FLAG_FAST_ZERO) != 0;
                if (status == IoStatus.OK && unaligned && s.fastZero) {
                    status = IoStatus.ENOTSUP; // a read-modify-write is never fast
                }
                if (status != IoStatus.OK) {
                    completeLocally(s, status);
                    return;
                }
                if (unaligned) {
                    completeLocally(s, c.unaligned.unalignedWriteZeroes(s, info, offset, length, ioFlags(flags)));
                    return;
                }
                submitParts(s, IoOp.WRITE_ZEROES, offset, length, ZEROING_PART, ioFlags(flags), null);
                return;
            }
            case NbdProtocol.CMD_CACHE: {
                // A page-cache hint: checked like a READ but it carries no payload, so no payload limit; the
                // device needs no call.
                int status = (flags & ~NbdProtocol.CMD_FLAG_FUA) != 0 ? IoStatus.EINVAL : checkRange(info, offset,
                        length);
                completeLocally(s, status);
                return;
            }
            case NbdProtocol.CMD_BLOCK_STATUS:
                blockStatus(s, info, flags, offset, length);
                return;
            default:
                // Unknown command: the protocol says EINVAL; we cannot know of a payload, so assume none.
                completeLocally(s, IoStatus.EINVAL);
        }
    }

    /**
     * NBD-level checks, then {@link IoRequests#check}, with the error values the NBD document asks for. For a client
     * on the default block sizes the alignment is ours to handle, so only the range is checked against the block
     * size: the covering blocks are checked instead of the request.
     */
    private int validate(DeviceInfo info, IoOp op, int flags, int allowedFlags, long offset, long length) {
        if ((flags & ~allowedFlags) != 0) {
            return IoStatus.EINVAL;
        }
        if ((op == IoOp.READ || op == IoOp.WRITE) && length > maxPayload) {
            return IoStatus.EINVAL;
        }
        int lbs = info.logicalBlockSize();
        int status;
        if (defaultBlockSizes && ((offset | length) & (lbs - 1)) != 0) {
            // Range first (without adding: offset + length may overflow for hostile input), then everything else on
            // one covering block, which is aligned and, the range being inside the device, inside it too.
            status = offset < 0 || length <= 0 ? IoStatus.EINVAL
                    : offset > info.size() || length > info.size() - offset ? IoStatus.EOVERFLOW
                    : IoRequests.check(info, op, offset & -lbs, lbs, ioFlags(flags));
        } else {
            status = IoRequests.check(info, op, offset, length, ioFlags(flags));
        }
        if (status == IoStatus.EOVERFLOW) {
            // Beyond the end: ENOSPC for writes, EINVAL for the rest (NBD does not use EOVERFLOW here).
            return op == IoOp.WRITE || op == IoOp.WRITE_ZEROES ? IoStatus.ENOSPC : IoStatus.EINVAL;
        }
        return status;
    }

    /** Range and (unless on default block sizes) alignment of a request without payload: CACHE. */
    private int checkRange(DeviceInfo info, long offset, long length) {
        if (offset < 0 || length == 0 || offset > info.size() || length > info.size() - offset) {
            return IoStatus.EINVAL;
        }
        return !defaultBlockSizes && ((offset | length) & (info.logicalBlockSize() - 1)) != 0
                ? IoStatus.EINVAL : IoStatus.OK;
    }

    static long alignUp(long value, int blockSize) {
        return (value + blockSize - 1) & -blockSize;
    }

    /** Largest READ/WRITE part the device takes, whole blocks. */
    static int maxIoParts(DeviceInfo info) {
        int max = info.maxIoSize();
        return max - max % info.logicalBlockSize();
    }

    static int ioFlags(int nbdFlags) {
        int f = 0;
        if ((nbdFlags & NbdProtocol.CMD_FLAG_FUA) != 0) {
            f |= IoFlags.FUA;
        }
        if ((nbdFlags & NbdProtocol.CMD_FLAG_NO_HOLE) != 0) {
            f |= IoFlags.NO_HOLE;
        }
        if ((nbdFlags & NbdProtocol.CMD_FLAG_FAST_ZERO) != 0) {
            f |= IoFlags.FAST_ZERO;
        }
        return f;
    }

    private void blockStatus(NbdRequestSlot s, DeviceInfo info, int flags, long offset, long length)
            throws IOException {
        int lbs = info.logicalBlockSize();
        // On the default block sizes descriptors may be cut anywhere (minimum block size 1).
        int granule = defaultBlockSizes ? 1 : lbs;
        if (!baseAllocation || (flags & ~(NbdProtocol.CMD_FLAG_FUA | NbdProtocol.CMD_FLAG_REQ_ONE)) != 0
                || length == 0 || offset < 0 || offset > info.size() || length > info.size() - offset
                || ((offset | length) & (granule - 1)) != 0) {
            completeLocally(s, IoStatus.EINVAL);
            return;
        }
        if (!c.slots.ensureCapacity(s, MAX_EXTENTS * 8)) {
            completeLocally(s, IoStatus.ENOMEM);
            return;
        }
        boolean one = (flags & NbdProtocol.CMD_FLAG_REQ_ONE) != 0;
        s.data.clear(); // a reused buffer still has the limit of its last request
        extents.begin(s.data, offset, length, granule, one ? 1 : MAX_EXTENTS);
        try {
            device.describeExtents(offset, length, extents);
        } catch (RuntimeException e) {
            LOG.warn("nbd connection {}: describeExtents failed", c.id, e);
            completeLocally(s, IoStatus.EIO);
            return;
        }
        s.extentBytes = extents.finish() * 8;
        completeLocally(s, IoStatus.OK);
    }

    // ---------------------------------------------------------------------------------------------------------
    // Submitting: one request, or parts
    // ---------------------------------------------------------------------------------------------------------

    private void submit(NbdRequestSlot s, IoOp op, long offset, int length, int flags, ByteBuffer buffer) {
        s.begin(1);
        submitPart(s, 0, op, offset, length, flags, buffer);
    }

    /**
     * Submits {@code [offset, offset + length)} as parts of at most {@code partSize} bytes (a multiple of the block
     * size, so every part stays aligned) and completes the request once, when the last part completed, with the
     * first error a part reported. While parts are being submitted the reader holds a guard part of its own, so an
     * early part that completes at once cannot complete the request while later parts are still to go; the guard is
     * released last. {@code buffer} (READ only) holds the whole range from index 0; each part gets its own view.
     */
    private void submitParts(NbdRequestSlot s, IoOp op, long offset, long length, int partSize, int flags,
                             ByteBuffer buffer) {
        if (length <= partSize) {
            if (buffer != null) {
                buffer.clear().limit((int) length);
            }
            submit(s, op, offset, (int) length, flags, buffer);
            return;
        }
        int parts = (int) ((length + partSize - 1) / partSize);
        if (parts > NbdRequestSlot.MAX_PARTS) {
            completeLocally(s, IoStatus.EINVAL); // cannot happen for a request length of 32 bits; never a hang
            return;
        }
        s.begin(((1 << parts) - 1) | NbdRequestSlot.GUARD_BIT);
        for (int k = 0; k < parts; k++) {
            long at = (long) k * partSize;
            int n = (int) Math.min(partSize, length - at);
            submitPart(s, k, op, offset + at, n, flags, buffer == null ? null : s.view(k, (int) at, n));
        }
        c.onComplete(s.tag(NbdRequestSlot.GUARD_PART), IoStatus.OK);
    }

    private void submitPart(NbdRequestSlot s, int part, IoOp op, long offset, int length, int flags,
                            ByteBuffer buffer) {
        try {
            device.submit(op, offset, length, flags, buffer, s.tag(part), c);
        } catch (RuntimeException e) {
            // The contract says submit never throws; if it does, the request fails rather than hangs.
            LOG.warn("nbd connection {}: device submit threw", c.id, e);
            c.onComplete(s.tag(part), IoStatus.EIO);
        }
    }

    /**
     * Submits an aligned READ as a lending READ. @return false if the device does not lend this one (nothing was
     * submitted; the caller copies as usual)
     */
    private boolean submitLending(NbdRequestSlot s, long offset, int length) {
        s.lending = true;
        s.begin(1);
        try {
            if (lender.trySubmitLend(offset, length, 0, s.tag(0), c)) {
                return true;
            }
        } catch (RuntimeException e) {
            // The contract says it never throws; if it does, the request fails rather than hangs.
            LOG.warn("nbd connection {}: device lending submit threw", c.id, e);
            c.onLent(s.tag(0), IoStatus.EIO, null, 0, 0L);
            return true;
        }
        s.lending = false;
        return false;
    }

    /** Completes a request the server answers itself (validation errors, CACHE, BLOCK_STATUS, read-modify-write). */
    private void completeLocally(NbdRequestSlot s, int status) {
        s.begin(1);
        c.onComplete(s.tag(0), status);
    }

    /** Copies the WRITE payload into the slot at {@code at}: the buffered part, then straight from the socket. */
    private boolean readPayload(NbdRequestSlot s, int at, int length) throws IOException {
        ByteBuffer d = s.data;
        d.clear().limit(at + length).position(at);
        int buffered = Math.min(receive.remaining(), length);
        if (buffered > 0) {
            int limit = receive.limit();
            receive.limit(receive.position() + buffered);
            d.put(receive);
            receive.limit(limit);
        }
        if (d.hasRemaining()) {
            c.replies.flushInline();
            while (d.hasRemaining()) {
                c.readProgress(PHASE_IN_REQUEST);
                if (in.read(d) < 0) {
                    return false;
                }
            }
            c.readProgress(PHASE_BUSY);
        }
        d.position(at);
        return true;
    }

    /** Discards {@code length} payload bytes (a refused WRITE) without buffering more than the receive buffer. */
    private boolean skipPayload(long length) throws IOException {
        int buffered = (int) Math.min(receive.remaining(), length);
        receive.position(receive.position() + buffered);
        long left = length - buffered;
        if (left == 0) {
            return true;
        }
        c.replies.flushInline();
        while (left > 0) {
            receive.clear().limit((int) Math.min(receive.capacity(), left));
            c.readProgress(PHASE_IN_REQUEST);
            int n = in.read(receive);
            if (n < 0) {
                receive.clear().flip();
                return false;
            }
            left -= n;
        }
        c.readProgress(PHASE_BUSY);
        receive.clear().flip();
        return true;
    }
}
