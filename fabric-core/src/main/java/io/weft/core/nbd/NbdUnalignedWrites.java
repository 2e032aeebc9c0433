package io.weft.core.nbd;

import io.weft.core.io.DeviceInfo;
import io.weft.core.io.IoCompletion;
import io.weft.core.io.IoFlags;
import io.weft.core.io.IoOp;
import io.weft.core.io.IoStatus;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.concurrent.locks.LockSupport;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Read-modify-write for clients on the protocol's default block sizes (minimum block size 1): an unaligned WRITE or
 * WRITE_ZEROES of one {@link NbdConnection} made aligned, on the reader, as a barrier on the connection (it waits
 * for every other request of the connection and submits nothing else until it is done). docs/nbd.md says what it
 * does not guarantee across connections.
 */
final class NbdUnalignedWrites {
    private static final Logger LOG = LoggerFactory.getLogger(NbdUnalignedWrites.class);
    private static final long AWAIT_COMPLETIONS_NANOS = NbdConnection.AWAIT_COMPLETIONS_NANOS;
    private static final int ZEROING_PART = NbdRequestReader.ZEROING_PART;

    private final NbdConnection c;
    /** Edge blocks of a read-modify-write (reader-owned). */
    private ByteBuffer bounce;
    private final SyncCompletion sync = new SyncCompletion();

    NbdUnalignedWrites(NbdConnection c) {
        this.c = c;
    }

    /**
     * An unaligned WRITE: the payload is at {@code s.data[offset % lbs, + length)}; the head and tail of the
     * covering blocks are read from the device, then the covering blocks are written.
     *
     * <p>Serialisation: this runs on the reader, and only once every other request of this connection has completed
     * ({@link #awaitOthers}); nothing else is submitted until its write completed. So no write of this connection
     * overlaps it, in either direction, and two overlapping unaligned writes never lose each other's bytes. Across
     * connections there is no such guarantee (docs/nbd.md).
     */
    int unalignedWrite(NbdRequestSlot s, DeviceInfo info, long offset, int length, int flags) throws IOException {
        int lbs = info.logicalBlockSize();
        long start = offset & -lbs;
        long end = offset + length;
        long coverEnd = NbdRequestReader.alignUp(end, lbs);
        awaitOthers();
        ByteBuffer data = s.data.clear(); // absolute puts below check against the limit, not the capacity
        ByteBuffer block = bounce(lbs);
        int status = IoStatus.OK;
        boolean headRead = false;
        if (offset != start) {
            status = syncIo(IoOp.READ, start, lbs, 0, block.clear().limit(lbs));
            headRead = true;
            data.put(0, block, 0, (int) (offset - start));
        }
        long tail = coverEnd - lbs;
        if (status == IoStatus.OK && end != coverEnd) {
            if (!headRead || tail != start) {
                status = syncIo(IoOp.READ, tail, lbs, 0, block.clear().limit(lbs));
            }
            data.put((int) (end - start), block, (int) (end - tail), (int) (coverEnd - end));
        }
        if (status != IoStatus.OK) {
            return status;
        }
        return syncWrite(s.data, start, (int) (coverEnd - start), flags, NbdRequestReader.maxIoParts(info));
    }

    /**
     * An unaligned WRITE_ZEROES: the partial blocks at either end by read-modify-write, the whole blocks between by
     * WRITE_ZEROES. Serialised like {@link #unalignedWrite}.
     */
    int unalignedWriteZeroes(NbdRequestSlot s, DeviceInfo info, long offset, long length, int flags)
            throws IOException {
        int lbs = info.logicalBlockSize();
        long end = offset + length;
        long innerStart = NbdRequestReader.alignUp(offset, lbs);
        long innerEnd = end & -lbs;
        awaitOthers();
        int writeFlags = flags & IoFlags.FUA;
        int status = IoStatus.OK;
        long head = offset & -lbs;
        if (offset != head) {
            status = zeroInBlock(head, lbs, offset - head, Math.min(end, head + lbs) - head, writeFlags);
        }
        long tail = (end - 1) & -lbs;
        if (status == IoStatus.OK && end != innerEnd && !(offset != head && tail == head)) {
            status = zeroInBlock(tail, lbs, 0, end - tail, writeFlags);
        }
        for (long at = innerStart; status == IoStatus.OK && at < innerEnd; at += ZEROING_PART) {
            status = syncIo(IoOp.WRITE_ZEROES, at, (int) Math.min(ZEROING_PART, innerEnd - at), flags, null);
        }
        return status;
    }

    /** Reads one block, zeroes {@code [from, to)} of it, writes it back. */
    private int zeroInBlock(long block, int lbs, long from, long to, int flags) throws IOException {
        ByteBuffer b = bounce(lbs);
        int status = syncIo(IoOp.READ, block, lbs, 0, b.clear().limit(lbs));
        if (status != IoStatus.OK) {
            return status;
        }
        for (int i = (int) from; i < to; i++) {
            b.put(i, (byte) 0);
        }
        return syncIo(IoOp.WRITE, block, lbs, flags, b.clear().limit(lbs));
    }

    /** Writes {@code buffer[0, length)} to {@code offset} in parts the device takes, one after the other. */
    private int syncWrite(ByteBuffer buffer, long offset, int length, int flags, int partSize) throws IOException {
        for (int at = 0; at < length; at += partSize) {
            int n = Math.min(partSize, length - at);
            buffer.clear().limit(at + n).position(at);
            int status = syncIo(IoOp.WRITE, offset + at, n, flags, buffer);
            if (status != IoStatus.OK) {
                return status;
            }
        }
        return IoStatus.OK;
    }

    /** The connection's edge-block buffer (read-modify-write only), grown to {@code lbs}. */
    private ByteBuffer bounce(int lbs) {
        if (bounce == null || bounce.capacity() < lbs) {
            bounce = ByteBuffer.allocateDirect(lbs);
        }
        return bounce;
    }

    /**
     * Submits one request of the reader's own and waits for its completion, delivering (and replying to) other
     * requests' inline completions meanwhile. A forced close does not abandon it: the request is cancelled and
     * still waited for, since its buffer (the slot's, or the bounce buffer) is the device's until the completion.
     */
    private int syncIo(IoOp op, long offset, int length, int flags, ByteBuffer buffer) {
        SyncCompletion done = sync;
        long tag = done.arm();
        try {
            c.device.submit(op, offset, length, flags, buffer, tag, done);
        } catch (RuntimeException e) {
            LOG.warn("nbd connection {}: device submit threw", c.id, e);
            return IoStatus.EIO;
        }
        boolean cancelled = false;
        while (!done.done()) {
            c.device.awaitCompletions(AWAIT_COMPLETIONS_NANOS);
            if (done.done()) {
                break;
            }
            if (c.forced && !cancelled) {
                cancelled = true;
                c.device.cancel(tag, done);
                continue;
            }
            // The completion unparks us; the bound only lets a device that delivers in awaitCompletions progress.
            LockSupport.parkNanos(this, AWAIT_COMPLETIONS_NANOS);
        }
        return done.status();
    }

    /** Waits until this request is the connection's only one in flight (every other one answered). */
    private void awaitOthers() throws IOException {
        while (true) {
            c.replies.flushInline();
            c.slots.reclaimReturned();
            if (c.slots.inFlight() <= 1) {
                return;
            }
            c.device.awaitCompletions(AWAIT_COMPLETIONS_NANOS);
            c.replies.flushInline();
            c.slots.reclaimReturned();
            if (c.slots.inFlight() <= 1) {
                return;
            }
            c.slots.awaitReturned();
        }
    }

    /** The completion of the reader's own synchronous requests; a tag per request so a stale one is ignored. */
    private final class SyncCompletion implements IoCompletion {
        /** Written by the reader only; volatile because a late completion of an earlier request reads it. */
        private volatile long tag;
        private volatile long doneTag = -1;
        private volatile int status;

        long arm() {
            long t = tag + 1;
            tag = t;
            return t;
        }

        boolean done() {
            return doneTag == tag;
        }

        int status() {
            return status;
        }

        @Override
        public void onComplete(long tag, int status) {
            if (tag != this.tag) { // an earlier request's late completion: its wait is over
                return;
            }
            this.status = status;
            doneTag = tag;
            LockSupport.unpark(c.readerThread);
        }
    }
}
